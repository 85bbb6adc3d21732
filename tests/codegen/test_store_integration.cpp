// obtain_kernels over a real Store: compile once, then hit; no-JIT and read-only stores; an
// unusable cache path.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <sys/stat.h>

#include "cache/store.hpp"
#include "codegen/variant_space.hpp"
#include "test_helpers.hpp"
#include "runtime/kernel_binary.hpp"

using namespace glqjit;
using glqjit::test::TempDir;

namespace {

std::vector<GeneratedKernel> kernel_sets(const LinearSpec& spec, const char* arch_name, std::vector<int> buckets) {
  const Arch arch = parse_arch(arch_name);
  std::vector<GeneratedKernel> sets;
  for (int bucket : buckets) {
    sets.push_back(generate_kernel(spec, default_variant(spec, bucket, arch, arch.typical_sm_count()), bucket, arch));
  }
  return sets;
}

// The resource report names each of the six kernels of a module exactly once.
bool has_all_kernels(const std::vector<KernelResources>& resources) {
  if (resources.size() != 6) return false;
  for (const char* name : {"glq_input_chunks", "glq_input_strided", "glq_matmul", "glq_output_chunks",
                           "glq_output_strided", "glq_repack_e81b"}) {
    if (std::count_if(resources.begin(), resources.end(), [&](const KernelResources& r) { return r.name == name; }) !=
        1) {
      return false;
    }
  }
  return true;
}

}  // namespace

TEST_CASE("obtain_kernels compiles a miss, stores it, and the next process hits", "[store]") {
  TempDir dir;
  const std::string path = dir.file("kernels.db");
  const LinearSpec spec{14336, 4096, 3, DType::bf16, true};  // family 2 at both buckets: six kernels
  std::vector<KernelBinary> first;
  {
    Store store(StoreOptions{path, false});
    first = obtain_kernels(&store, kernel_sets(spec, "sm_90a", {1, 16}), {});
    REQUIRE(first.size() == 2);
    for (const KernelBinary& b : first) {
      INFO("bucket " << b.generated.batch_bucket);
      CHECK_FALSE(b.from_store);
      CHECK_FALSE(b.compiled.cubin.empty());
      CHECK(b.compiled.key_digest == b.key.digest());
      CHECK(b.compiled.key_text == b.key.canonical());
      CHECK(b.compiled.ptx.empty());
      CHECK(b.compiled.registers > 0);
      CHECK(b.compiled.spill_bytes == 0);
      CHECK(b.compiled.compile_ms > 0);
      CHECK(has_all_kernels(b.resources));
      CHECK(store.find_kernel(b.key.digest()).has_value());
    }
    CHECK(first[0].key.digest() != first[1].key.digest());
  }
  // A second Store on the same file stands for another process.
  Store again(StoreOptions{path, false});
  const std::vector<KernelBinary> second = obtain_kernels(&again, kernel_sets(spec, "sm_90a", {1, 16}), {});
  REQUIRE(second.size() == 2);
  for (size_t i = 0; i < 2; ++i) {
    INFO("bucket " << second[i].generated.batch_bucket);
    CHECK(second[i].from_store);
    CHECK(second[i].key.digest() == first[i].key.digest());
    CHECK(second[i].compiled.cubin == first[i].compiled.cubin);
    CHECK(second[i].compiled.registers == first[i].compiled.registers);
    CHECK(has_all_kernels(second[i].resources));  // from the stored compile log
    CHECK(second[i].generated.source == first[i].generated.source);
  }
  // A different architecture is a different key: a miss.
  const std::vector<KernelBinary> other = obtain_kernels(&again, kernel_sets(spec, "sm_90", {1}), {});
  CHECK_FALSE(other[0].from_store);
  CHECK(other[0].key.digest() != first[0].key.digest());
}

TEST_CASE("want_ptx compiles even when the store has the kernel", "[store]") {
  TempDir dir;
  Store store(StoreOptions{dir.file("kernels.db"), false});
  const LinearSpec spec{1000, 5000, 2};
  obtain_kernels(&store, kernel_sets(spec, "sm_80", {1}), {});
  ObtainOptions options;
  options.want_ptx = true;
  const std::vector<KernelBinary> b = obtain_kernels(&store, kernel_sets(spec, "sm_80", {1}), options);
  CHECK_FALSE(b[0].from_store);
  CHECK(b[0].compiled.ptx.find("mma.sync.aligned.m16n8k16") != std::string::npos);
  // And the PTX is not stored.
  const auto stored = store.find_kernel(b[0].key.digest());
  REQUIRE(stored.has_value());
  CHECK(stored->ptx.empty());
}

TEST_CASE("obtain_kernels without a store compiles every time", "[store]") {
  const std::vector<KernelBinary> b = obtain_kernels(nullptr, kernel_sets(LinearSpec{64, 16, 8}, "sm_120", {1}), {});
  REQUIRE(b.size() == 1);
  CHECK_FALSE(b[0].from_store);
  CHECK_FALSE(b[0].compiled.cubin.empty());
  CHECK(obtain_kernels(nullptr, {}, {}).empty());
}

TEST_CASE("no_jit with a cold store is a no_jit error that says to run glq-tune", "[store][errors]") {
  TempDir dir;
  const std::string path = dir.file("empty.db");
  Store store(StoreOptions{path, false});
  ObtainOptions options;
  options.no_jit = true;
  const LinearSpec spec{4096, 11008, 2};
  GLQ_REQUIRE_ERROR(obtain_kernels(&store, kernel_sets(spec, "sm_86", {1, 2}), options), Status::no_jit, "glq-tune",
                    "2 kernel(s)", spec.canonical().c_str(), "sm_86", path.c_str());
  GLQ_REQUIRE_ERROR(obtain_kernels(nullptr, kernel_sets(spec, "sm_86", {1}), options), Status::no_jit, "glq-tune");
  // Nothing was compiled or stored on the way.
  for (const GeneratedKernel& g : kernel_sets(spec, "sm_86", {1, 2})) {
    CHECK_FALSE(store.find_kernel(make_kernel_key(g).digest()).has_value());
  }
  // Once the store holds them, no_jit serves them.
  obtain_kernels(&store, kernel_sets(spec, "sm_86", {1, 2}), {});
  const std::vector<KernelBinary> served = obtain_kernels(&store, kernel_sets(spec, "sm_86", {1, 2}), options);
  CHECK(served[0].from_store);
  CHECK(served[1].from_store);
  // One hit and one miss is still an error naming the miss.
  GLQ_REQUIRE_ERROR(obtain_kernels(&store, kernel_sets(spec, "sm_86", {1, 4}), options), Status::no_jit,
                    "1 kernel(s)", "batch bucket 4");
}

TEST_CASE("a read-only store is read but never written", "[store]") {
  TempDir dir;
  const std::string path = dir.file("shipped.db");
  const LinearSpec spec{4096, 4096, 4};
  { Store create(StoreOptions{path, false}); }  // an empty store file, as shipped
  struct stat before {};
  REQUIRE(::stat(path.c_str(), &before) == 0);
  std::string digest;
  {
    Store readonly(StoreOptions{path, true});
    REQUIRE(readonly.read_only());
    const std::vector<KernelBinary> b = obtain_kernels(&readonly, kernel_sets(spec, "sm_89", {1}), {});
    CHECK_FALSE(b[0].from_store);
    CHECK_FALSE(b[0].compiled.cubin.empty());
    digest = b[0].key.digest();
    CHECK_FALSE(readonly.find_kernel(digest).has_value());
  }
  Store writable(StoreOptions{path, false});
  CHECK_FALSE(writable.find_kernel(digest).has_value());
  struct stat after {};
  REQUIRE(::stat(path.c_str(), &after) == 0);
  CHECK(after.st_size == before.st_size);
}

TEST_CASE("a cache path that cannot be used is a cache_error naming it", "[store][errors]") {
  TempDir dir;
  const std::string plain = dir.file("plain-file");
  std::ofstream(plain) << "not a folder\n";
  // Under a regular file no folder can be made, whoever runs the test (root included).
  GLQ_REQUIRE_ERROR(Store(StoreOptions{plain + "/x.db", false}), Status::cache_error, plain.c_str());
  GLQ_REQUIRE_ERROR(Store(StoreOptions{plain + "/sub/x.db", false}), Status::cache_error, plain.c_str());
  GLQ_REQUIRE_ERROR(Store(StoreOptions{plain + "/x.db", true}), Status::cache_error, plain.c_str());
  if (std::ifstream("/etc/hostname").good()) {
    GLQ_REQUIRE_ERROR(Store(StoreOptions{"/etc/hostname/x.db", false}), Status::cache_error, "/etc/hostname");
  }
  // A folder where the file should be.
  GLQ_REQUIRE_ERROR(Store(StoreOptions{dir.file(""), false}), Status::cache_error);
}
