// The generated source: specialization constants, the embedded templates, canonical options,
// and nothing machine-local in it.
#include <catch2/catch.hpp>

#include <fstream>
#include <set>
#include <sstream>

#include "codegen/source.hpp"
#include "codegen/variant_space.hpp"
#include "test_helpers.hpp"
#include "templates/embedded.hpp"

using namespace glqjit;

namespace {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("the embedded templates are the files in templates/, byte for byte, in include order", "[source]") {
  const std::vector<std::string> order = {"prelude.cuh",      "hadamard.cuh",      "decode.cuh",     "tile.cuh",
                                          "transforms.cuh",   "matmul.cuh",        "matmul_fused.cuh", "staged.cuh",
                                          "staged_mma.cuh",   "staged_wgmma.cuh",  "matmul_staged.cuh", "repack.cuh"};
  REQUIRE(template_files().size() == order.size());
  for (size_t i = 0; i < order.size(); ++i) {
    INFO(order[i]);
    CHECK(template_files()[i].name == order[i]);
    const std::string on_disk = read_file(std::string(GLQJIT_TEST_SOURCE_DIR) + "/templates/" + order[i]);
    REQUIRE_FALSE(on_disk.empty());
    CHECK(template_files()[i].text == on_disk);
  }
}

TEST_CASE("the generated source holds the specialization and every template of its family", "[source]") {
  const LinearSpec spec{4096, 11008, 3};
  const Variant v{.warps = 8, .k_warps = 2, .k_split = 4, .batch_tiles = 1, .prefetch = 2, .table_copies = 4,
                  .transform_threads = 512};
  const GeneratedKernel k = generate_kernel(spec, v, 1, parse_arch("sm_90a"));
  CHECK(k.spec == spec);
  CHECK(k.variant == v);
  CHECK(k.batch_bucket == 1);
  CHECK(k.arch.name() == "sm_90a");
  CHECK(k.launch.m_pad == 11008);
  CHECK(k.launch.out_chunk_count == 7);
  // in blocks {4096}: two chunks and a strided pass of R = 2; out blocks {8192, 2048, 512, 256}:
  // four chunks of the 8192 block (strided, R = 4), then three whole blocks.
  for (const char* line : {"constexpr int IN_FEATURES = 4096;", "constexpr int OUT_FEATURES = 11008;",
                           "constexpr int N_PAD = 4096;", "constexpr int M_PAD = 11008;", "constexpr int STAGES = 2;",
                           "constexpr int BATCH_BUCKET = 1;", "constexpr int MATMUL_WARPS = 8;",
                           "constexpr int K_WARPS = 2;", "constexpr int K_SPLIT = 4;",
                           "constexpr int K_TILES_PER_SPLIT = 16;", "constexpr int PREFETCH = 2;",
                           "constexpr int TABLE_COPIES = 4;", "constexpr int TABLE_COPIES_LOG2 = 2;",
                           "constexpr int TRANSFORM_THREADS = 512;", "constexpr int TRANSFORM_CHUNK = 2048;",
                           "constexpr bool HAS_E81B = true;", "constexpr bool ACT_IS_BF16 = false;",
                           "// IN side: Hadamard blocks 4096 (FORMAT.md 5)\n",
                           "__constant__ int IN_CHUNK_OFFSET[2] = {0, 2048};",
                           "__constant__ int IN_CHUNK_LOG2[2] = {11, 11};",
                           "__constant__ int IN_CHUNK_FINAL[2] = {0, 0};",
                           "__constant__ int IN_STRIDED_OFFSET[1] = {0};",
                           "__constant__ int IN_STRIDED_LOG2R[1] = {1};",
                           "// OUT side: Hadamard blocks 8192, 2048, 512, 256 (FORMAT.md 5)\n",
                           "__constant__ int OUT_CHUNK_OFFSET[7] = {0, 2048, 4096, 6144, 8192, 10240, 10752};",
                           "__constant__ int OUT_CHUNK_LOG2[7] = {11, 11, 11, 11, 11, 9, 8};",
                           "__constant__ int OUT_CHUNK_FINAL[7] = {0, 0, 0, 0, 1, 1, 1};",
                           "__constant__ int OUT_STRIDED_OFFSET[1] = {0};",
                           "__constant__ int OUT_STRIDED_LOG2R[1] = {2};", "case 1: return StageKind::e81b;"}) {
    INFO(line);
    CHECK(contains(k.source, line));
  }
  // Family 2 has neither family 1's whole-block tables nor the old one-CTA-per-block transforms.
  for (const char* gone : {"IN_BLOCK_OFFSET", "IN_BLOCK_LOG2", "OUT_BLOCK_OFFSET", "OUT_BLOCK_LOG2",
                           "glq_input_transform", "glq_output_transform"}) {
    INFO(gone);
    CHECK_FALSE(contains(k.source, gone));
  }
  // Every shared template, and each family's own: family 2 matmul.cuh, family 1 matmul_fused.cuh
  // over it, family 3 its kernel over staged.cuh with the multiply of wgmma or of mma.sync.
  const Variant staged = parse_variant("family=3 wgmma=1 warps=8 k_warps=1 batch_tiles=8");
  const GeneratedKernel wgmma = generate_kernel(spec, staged, 64, parse_arch("sm_90a"));
  const GeneratedKernel mma = generate_kernel(spec, parse_variant("wgmma=0", staged), 64, parse_arch("sm_86"));
  const GeneratedKernel fused = generate_kernel(spec, parse_variant("family=1 warps=2 k_warps=8"), 1, parse_arch("sm_90a"));
  const std::set<std::string_view> family3 = {"staged.cuh", "staged_mma.cuh", "staged_wgmma.cuh", "matmul_staged.cuh"};
  for (const TemplateFile& file : template_files()) {
    INFO(file.name);
    const bool shared = file.name != "matmul.cuh" && file.name != "matmul_fused.cuh" && !family3.count(file.name);
    CHECK(contains(k.source, std::string(file.text)) == (shared || file.name == "matmul.cuh"));
    CHECK(contains(fused.source, std::string(file.text)) ==
          (shared || file.name == "matmul.cuh" || file.name == "matmul_fused.cuh"));
    CHECK(contains(wgmma.source, std::string(file.text)) == (shared || (family3.count(file.name) && file.name != "staged_mma.cuh")));
    CHECK(contains(mma.source, std::string(file.text)) == (shared || (family3.count(file.name) && file.name != "staged_wgmma.cuh")));
  }
  CHECK(contains(k.source, "constexpr bool U_IN_FRAGMENT_ORDER = false;"));
  for (const GeneratedKernel* g : {&wgmma, &mma}) {
    CHECK(contains(g->source, "constexpr bool U_IN_FRAGMENT_ORDER = true;"));
    CHECK(contains(g->source, "constexpr int CTA_COLUMNS = 64;"));
    CHECK(contains(g->source, "constexpr int WARP_WORD_BYTES = 384;"));
  }
  CHECK(contains(wgmma.source, "constexpr int TILE_BUFFERS = 4;"));  // prefetch 2, and two tiles in the tensor cores
  CHECK(contains(mma.source, "constexpr int TILE_BUFFERS = 3;"));
  CHECK(contains(wgmma.source, "glq_matmul (family 3, wgmma)"));
  CHECK(contains(mma.source, "glq_matmul (family 3, mma.sync)"));
  CHECK(contains(k.source, "glq_matmul (family 2, mma.sync)"));
  for (const std::string* text : {&k.source, &mma.source}) {
    CHECK_FALSE(contains(*text, "wgmma.mma_async"));
    CHECK_FALSE(contains(*text, "wgmma_rs"));
  }
  CHECK_FALSE(contains(k.source, "CTA_COLUMNS"));
  for (const char* kernel : {"glq_input_chunks", "glq_input_strided", "glq_matmul", "glq_output_chunks",
                             "glq_output_strided", "glq_repack_e81b"}) {
    INFO(kernel);
    CHECK(contains(k.source, std::string(kernel) + "("));
  }
}

TEST_CASE("a side without blocks above a chunk still defines its strided tables", "[source]") {
  // 5000 in: 5056 = 4096 + 512 + 256 + 128 + 64; 1000 out: 1008 = 512 + 256 + 128 + 64 + 32 + 16.
  const LinearSpec spec{5000, 1000, 2};
  const Variant v{.warps = 4, .k_warps = 1, .k_split = 1, .batch_tiles = 1, .prefetch = 2, .table_copies = 1,
                  .transform_threads = 32};
  const GeneratedKernel k = generate_kernel(spec, v, 4, parse_arch("sm_86"));
  for (const char* line : {"constexpr int TABLE_COPIES = 1;", "constexpr int TABLE_COPIES_LOG2 = 0;",
                           "constexpr int TRANSFORM_THREADS = 32;", "constexpr int K_WARPS = 1;",
                           "// IN side: Hadamard blocks 4096, 512, 256, 128, 64 (FORMAT.md 5)\n",
                           "__constant__ int IN_CHUNK_OFFSET[6] = {0, 2048, 4096, 4608, 4864, 4992};",
                           "__constant__ int IN_CHUNK_LOG2[6] = {11, 11, 9, 8, 7, 6};",
                           "__constant__ int IN_CHUNK_FINAL[6] = {0, 0, 1, 1, 1, 1};",
                           "__constant__ int IN_STRIDED_OFFSET[1] = {0};",
                           "__constant__ int IN_STRIDED_LOG2R[1] = {1};",
                           "// OUT side: Hadamard blocks 512, 256, 128, 64, 32, 16 (FORMAT.md 5)\n",
                           "__constant__ int OUT_CHUNK_OFFSET[6] = {0, 512, 768, 896, 960, 992};",
                           "__constant__ int OUT_CHUNK_LOG2[6] = {9, 8, 7, 6, 5, 4};",
                           "__constant__ int OUT_CHUNK_FINAL[6] = {1, 1, 1, 1, 1, 1};",
                           // One unused entry: glq_output_strided is compiled but never launched.
                           "__constant__ int OUT_STRIDED_OFFSET[1] = {0};",
                           "__constant__ int OUT_STRIDED_LOG2R[1] = {0};"}) {
    INFO(line);
    CHECK(contains(k.source, line));
  }
  // All six kernels are in every module, launched or not.
  CHECK(k.launch.output_strided.name.empty());
  CHECK(contains(k.source, "glq_output_strided("));
}

TEST_CASE("three blocks above a chunk: 28 chunks and three strided blocks", "[source]") {
  // 57344 out = 32768 + 16384 + 8192: R = 16, 8, 4. It runs on sm_86 now (chunked transforms).
  const LinearSpec spec{8192, 57344, 2};
  const Arch arch = parse_arch("sm_86");
  const GeneratedKernel k = generate_kernel(spec, default_variant(spec, 1, arch, 84), 1, arch);
  std::string offsets, logs, finals;
  for (int c = 0; c < 28; ++c) {
    offsets += (c ? ", " : "") + std::to_string(2048 * c);
    logs += c ? ", 11" : "11";
    finals += c ? ", 0" : "0";
  }
  for (const std::string& line :
       {std::string("// OUT side: Hadamard blocks 32768, 16384, 8192 (FORMAT.md 5)\n"),
        "__constant__ int OUT_CHUNK_OFFSET[28] = {" + offsets + "};",
        "__constant__ int OUT_CHUNK_LOG2[28] = {" + logs + "};",
        "__constant__ int OUT_CHUNK_FINAL[28] = {" + finals + "};",
        std::string("__constant__ int OUT_STRIDED_OFFSET[3] = {0, 32768, 49152};"),
        std::string("__constant__ int OUT_STRIDED_LOG2R[3] = {4, 3, 2};")}) {
    INFO(line);
    CHECK(contains(k.source, line));
  }
  CHECK(k.launch.out_strided_columns == 3 * 2048);
}

TEST_CASE("the NVRTC options are canonical and name the architecture", "[source]") {
  for (const Arch& arch : supported_archs()) {
    const GeneratedKernel k = generate_kernel(LinearSpec{4096, 4096, 2}, Variant{}, 1, arch);
    INFO(arch.name() << ": " << join_options(k.options));
    REQUIRE_FALSE(k.options.empty());
    CHECK(std::count(k.options.begin(), k.options.end(), "--gpu-architecture=" + arch.name()) == 1);
    CHECK(std::count(k.options.begin(), k.options.end(), "-Xptxas=-v") == 1);  // the resource report
    for (const std::string& option : k.options) {
      INFO(option);
      CHECK(option.find('/') == std::string::npos);  // no include paths or other machine-local parts
      CHECK(option.find(' ') == std::string::npos);
    }
  }
  CHECK(join_options({"a", "-b", "--c=d"}) == "a -b --c=d");
  CHECK(join_options({}).empty());
}

TEST_CASE("the generated source holds no absolute path of this build", "[source][key]") {
  const std::string source = generate_kernel(LinearSpec{5000, 1000, 7, DType::bf16, true}, Variant{}, 16,
                                             parse_arch("sm_86"))
                                 .source;
  const std::vector<std::string> local = {GLQJIT_TEST_SOURCE_DIR, GLQJIT_TEST_BINARY_DIR, "/home/", "/root/",
                                          "/tmp/", "/usr/"};
  for (const std::string& path : local) {
    INFO(path);
    CHECK_FALSE(contains(source, path));
  }
  CHECK_FALSE(contains(source, "#line"));
  CHECK_FALSE(contains(source, "__DATE__"));
  CHECK_FALSE(contains(source, "__TIME__"));
}

TEST_CASE("generate_kernel is deterministic", "[source]") {
  const LinearSpec spec{4096, 14336, 5, DType::bf16, true};
  const Arch arch = parse_arch("sm_89");
  const Variant v = default_variant(spec, 64, arch, 128);
  const GeneratedKernel a = generate_kernel(spec, v, 64, arch);
  const GeneratedKernel b = generate_kernel(spec, v, 64, arch);
  CHECK(a.source == b.source);
  CHECK(a.options == b.options);
  CHECK(contains(a.source, "constexpr bool ACT_IS_BF16 = true;"));
  CHECK(contains(a.source, "constexpr bool HAS_BIAS = true;"));
  CHECK(contains(a.source, "constexpr int BATCH_BUCKET = 64;"));
}

TEST_CASE("each spec, variant and bucket gives its own source", "[source]") {
  const Arch arch = parse_arch("sm_90a");
  const LinearSpec base{4096, 4096, 2};
  const std::string s0 = generate_kernel(base, Variant{}, 16, arch).source;
  CHECK(generate_kernel(LinearSpec{4096, 4096, 3}, Variant{}, 16, arch).source != s0);
  CHECK(generate_kernel(LinearSpec{4096, 4160, 2}, Variant{}, 16, arch).source != s0);
  CHECK(generate_kernel(LinearSpec{4096, 4096, 2, DType::bf16}, Variant{}, 16, arch).source != s0);
  CHECK(generate_kernel(LinearSpec{4096, 4096, 2, DType::f16, true}, Variant{}, 16, arch).source != s0);
  CHECK(generate_kernel(LinearSpec{4000, 4096, 2, DType::f16, false, true}, Variant{}, 16, arch).source !=
        generate_kernel(LinearSpec{4000, 4096, 2}, Variant{}, 16, arch).source);
  CHECK(generate_kernel(base, Variant{.warps = 2, .prefetch = 3, .transform_threads = 256}, 16, arch).source != s0);
  CHECK(generate_kernel(base, Variant{.k_warps = 2}, 16, arch).source != s0);
  CHECK(generate_kernel(base, Variant{.table_copies = 4}, 16, arch).source != s0);
  CHECK(generate_kernel(base, Variant{.transform_threads = 1024}, 16, arch).source != s0);
  CHECK(generate_kernel(base, Variant{}, 32, arch).source != s0);
}
