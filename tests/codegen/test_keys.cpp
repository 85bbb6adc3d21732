// Kernel keys (DESIGN.md, Contracts: Cache key): every part that can change the machine code
// changes the digest; the same inputs give the same digest wherever the library was built.
#include <catch2/catch.hpp>

#include <regex>
#include <set>

#include "codegen/nvrtc.hpp"
#include "codegen/source.hpp"
#include "support/sha256.hpp"
#include "templates/embedded.hpp"
#include "test_helpers.hpp"
#include "runtime/kernel_binary.hpp"

using namespace glqjit;

namespace {

const LinearSpec kSpec{4096, 11008, 3};
const Variant kVariant{.warps = 4, .k_warps = 2, .k_split = 8, .batch_tiles = 1, .prefetch = 4, .table_copies = 4,
                       .transform_threads = 256};

// kVariant with one knob changed.
Variant changed(const char* knob) { return parse_variant(knob, kVariant); }

KernelKey key_of(const LinearSpec& spec, const Variant& variant, int bucket, const char* arch) {
  return make_kernel_key(generate_kernel(spec, variant, bucket, parse_arch(arch)));
}

}  // namespace

TEST_CASE("the kernel key holds every part of the specialization", "[key]") {
  const GeneratedKernel g = generate_kernel(kSpec, kVariant, 16, parse_arch("sm_90a"));
  const KernelKey key = make_kernel_key(g);
  CHECK(key.schema_version == kStoreSchemaVersion);
  CHECK(key.library_version == GLQJIT_TEST_PROJECT_VERSION);
  CHECK(std::regex_match(key.source_hash, std::regex("[0-9a-f]{64}")));
  CHECK(key.spec == kSpec.canonical());
  CHECK(key.variant == kVariant.canonical());
  CHECK(key.batch_bucket == 16);
  CHECK(key.arch == "sm_90a");
  CHECK(key.nvrtc_version == nvrtc_version());
  CHECK(key.options == join_options(g.options));
  CHECK(std::regex_match(key.digest(), std::regex("[0-9a-f]{64}")));
  CHECK(std::regex_match(nvrtc_version(), std::regex("[0-9]+\\.[0-9]+")));
}

TEST_CASE("the same inputs give the same key, as in a second build directory", "[key]") {
  // Everything the key is made of comes from generate_kernel, which reads no file, path,
  // clock or environment: two generations stand for two build directories or processes.
  const KernelKey a = key_of(kSpec, kVariant, 16, "sm_90a");
  const KernelKey b = key_of(LinearSpec{4096, 11008, 3}, parse_variant(kVariant.canonical()), 16, "sm_90a");
  CHECK(a.canonical() == b.canonical());
  CHECK(a.digest() == b.digest());
  // canonical() carries no absolute path either.
  CHECK(a.canonical().find(GLQJIT_TEST_SOURCE_DIR) == std::string::npos);
  CHECK(a.canonical().find(GLQJIT_TEST_BINARY_DIR) == std::string::npos);
}

TEST_CASE("the source hash covers every byte of the specialization and of each constant part", "[key]") {
  const std::vector<PartHash> templates = {{"a.cuh", sha256_hex("one")}, {"b.cuh", sha256_hex("two")}};
  const std::string hash = source_hash_of("constexpr int N = 1;", templates);
  CHECK(source_hash_of("constexpr int N = 1;", templates) == hash);
  CHECK(source_hash_of("constexpr int N = 2;", templates) != hash);
  std::vector<PartHash> edited = templates;
  edited[1].sha256 = sha256_hex("twO");
  CHECK(source_hash_of("constexpr int N = 1;", edited) != hash);
  edited = {templates[1], templates[0]};
  CHECK(source_hash_of("constexpr int N = 1;", edited) != hash);
  edited = {templates[0]};
  CHECK(source_hash_of("constexpr int N = 1;", edited) != hash);
  edited = templates;
  edited[0].name = "c.cuh";
  CHECK(source_hash_of("constexpr int N = 1;", edited) != hash);

  // A generated kernel's hash is of exactly the specialization it emitted, the codebook tables
  // and the templates it included (each kernel family includes its own matmul templates).
  for (const Variant& variant : {kVariant, parse_variant("family=3 wgmma=1 warps=8 k_warps=1 batch_tiles=8"),
                                 parse_variant("family=3 wgmma=0 warps=8 k_warps=1 batch_tiles=8")}) {
    const GeneratedKernel g = generate_kernel(kSpec, variant, 64, parse_arch("sm_90a"));
    const size_t tables = g.source.find("// E8P: ABS[a] / 2 as fp16 pairs");
    const size_t first_template = g.source.find("\n// ---- templates/");
    REQUIRE(tables != std::string::npos);
    REQUIRE(first_template != std::string::npos);
    std::vector<PartHash> included = {
        {"codebook tables", sha256_hex(std::string_view(g.source).substr(tables, first_template - tables))}};
    for (const TemplateFile& file : template_files()) {
      if (g.source.find("// ---- templates/" + std::string(file.name) + " ----") != std::string::npos) {
        included.push_back({file.name, sha256_hex(file.text)});
      }
    }
    // Family 2 leaves out matmul_fused.cuh and family 3's four templates; family 3 leaves out
    // matmul.cuh, matmul_fused.cuh and the other multiply.
    CHECK(included.size() == 1 + template_files().size() - (variant.family == 2 ? 5 : 3));
    CHECK(g.source_hash == source_hash_of(std::string_view(g.source).substr(0, tables), included));
  }
}

TEST_CASE("changing any part of the specialization changes the digest", "[key]") {
  const GeneratedKernel base = generate_kernel(kSpec, kVariant, 16, parse_arch("sm_90a"));
  const std::string digest = make_kernel_key(base).digest();
  std::set<std::string> digests = {digest};
  auto differs = [&](const KernelKey& key, const char* what) {
    INFO(what);
    CHECK(key.digest() != digest);
    CHECK(digests.insert(key.digest()).second);  // and from every other change
  };

  // Generated or template text, through the source hash (which the next test case covers).
  GeneratedKernel edited = base;
  edited.source_hash = source_hash_of("another specialization", {});
  differs(make_kernel_key(edited), "source hash");

  // An NVRTC option.
  GeneratedKernel with_option = base;
  with_option.options.push_back("-lineinfo");
  differs(make_kernel_key(with_option), "an extra option");
  GeneratedKernel reordered = base;
  std::swap(reordered.options.front(), reordered.options.back());
  differs(make_kernel_key(reordered), "option order");

  // Architecture (sm_90 differs from sm_90a), spec, variant, bucket.
  differs(key_of(kSpec, kVariant, 16, "sm_90"), "arch sm_90");
  differs(key_of(kSpec, kVariant, 16, "sm_100a"), "arch sm_100a");
  differs(key_of(LinearSpec{4096, 11008, 4}, kVariant, 16, "sm_90a"), "bpw");
  differs(key_of(LinearSpec{4096, 11024, 3}, kVariant, 16, "sm_90a"), "out_features");
  differs(key_of(LinearSpec{4160, 11008, 3}, kVariant, 16, "sm_90a"), "in_features");
  differs(key_of(LinearSpec{4096, 11008, 3, DType::bf16}, kVariant, 16, "sm_90a"), "dtype");
  differs(key_of(LinearSpec{4096, 11008, 3, DType::f16, true}, kVariant, 16, "sm_90a"), "bias");
  differs(key_of(LinearSpec{4096, 11008, 3, DType::f16, false, true}, kVariant, 16, "sm_90a"), "legacy RHT");
  differs(key_of(kSpec, changed("warps=8"), 16, "sm_90a"), "warps");
  differs(key_of(kSpec, changed("k_warps=1"), 16, "sm_90a"), "k_warps");
  differs(key_of(kSpec, changed("k_split=4"), 16, "sm_90a"), "k_split");
  differs(key_of(kSpec, changed("batch_tiles=2"), 16, "sm_90a"), "batch_tiles");
  differs(key_of(kSpec, changed("prefetch=2"), 16, "sm_90a"), "prefetch");
  differs(key_of(kSpec, changed("table_copies=8"), 16, "sm_90a"), "table_copies");
  differs(key_of(kSpec, changed("transform_threads=512"), 16, "sm_90a"), "transform_threads");
  differs(key_of(kSpec, kVariant, 32, "sm_90a"), "bucket");

  // Parts make_kernel_key fills from the library and NVRTC.
  KernelKey key = make_kernel_key(base);
  key.nvrtc_version = "12.4";
  differs(key, "NVRTC version");
  key = make_kernel_key(base);
  key.library_version = "0.0.1";
  differs(key, "library version");
  key = make_kernel_key(base);
  key.schema_version += 1;
  differs(key, "schema version");
}
