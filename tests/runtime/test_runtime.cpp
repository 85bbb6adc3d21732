// The runtime's CPU paths: without a driver, driver() and Context explain themselves with
// Error(no_driver); kernel keys and obtain_kernels need no GPU.
#include <dlfcn.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdlib>
#include <string>

#include "codegen/source.hpp"
#include "codegen/variant_space.hpp"
#include "glqjit/error.hpp"
#include "runtime/context.hpp"
#include "runtime/driver.hpp"
#include "test_helpers.hpp"
#include "runtime/kernel_binary.hpp"

using namespace glqjit;
using test::capture_error;
using test::Thrown;

namespace {

// Whether this machine has a CUDA driver that starts, found the way the runtime looks for it.
// The tests below expect no_driver only when it does not; on a GPU machine they check the
// driver instead, so the same program runs in both places.
bool driver_usable() {
  void* library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) return false;
  using Init = int (*)(unsigned);
  auto init = reinterpret_cast<Init>(dlsym(library, "cuInit"));
  const bool ok = init != nullptr && init(0) == 0;
  return ok;
}

bool libcuda_loadable() {
  void* library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  return library != nullptr;
}


bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

}  // namespace

TEST_CASE("driver() without libcuda is a no_driver error that names libcuda", "[driver]") {
  if (driver_usable()) {
    const Driver& d = driver();
    CHECK(d.version >= 12040);
    CHECK(d.cuLaunchKernel != nullptr);
    WARN("a CUDA driver is present: checked that it loads instead of the no-driver path");
    return;
  }
  const Thrown first = capture_error([] { driver(); });
  INFO(first.message);
  REQUIRE(first.threw);
  CHECK(first.status == Status::no_driver);
  if (!libcuda_loadable()) {
    CHECK(contains(first.message, "no CUDA driver"));
    CHECK(contains(first.message, "libcuda.so.1"));
    CHECK(contains(first.message, "glq-dump"));  // what still works without a GPU
  }
  // A failed load is not remembered as success: the second call says the same.
  const Thrown second = capture_error([] { driver(); });
  CHECK(second.threw);
  CHECK(second.status == Status::no_driver);
  CHECK(second.message == first.message);
}

TEST_CASE("check_cuda passes CUDA_SUCCESS through without touching the driver", "[driver]") {
  CHECK_NOTHROW(check_cuda(CUDA_SUCCESS, "nothing"));
}

TEST_CASE("a Context without a driver is a no_driver error, whatever the options", "[context]") {
  if (driver_usable()) {
    WARN("a CUDA driver is present: the no-driver path cannot be checked here");
    const Thrown bad_device = capture_error([] { Context(-1, ContextOptions{}); });
    CHECK(bad_device.status == Status::invalid_argument);
    CHECK(contains(bad_device.message, "device -1"));
    return;
  }
  for (int device : {0, 1, -1}) {
    INFO("device " << device);
    const Thrown c = capture_error([&] { Context context(device, ContextOptions{}); });
    INFO(c.message);
    REQUIRE(c.threw);
    CHECK(c.status == Status::no_driver);
    CHECK_FALSE(c.message.empty());
  }
  // The driver is checked before the store: an unusable cache path still reports no_driver.
  ContextOptions options;
  options.cache_path = "/proc/self/no/such/dir/x.db";
  options.no_jit = true;
  options.read_only_cache = true;
  const Thrown c = capture_error([&] { Context context(0, options); });
  CHECK(c.status == Status::no_driver);
}

TEST_CASE("make_kernel_key is deterministic and independent of the process state", "[key]") {
  const LinearSpec spec{4096, 11008, 3, DType::bf16, true};
  const Arch arch = parse_arch("sm_90a");
  const Variant variant = default_variant(spec, 8, arch, 132);
  const GeneratedKernel g = generate_kernel(spec, variant, 8, arch);
  const KernelKey a = make_kernel_key(g);
  // Changing the environment the library reads elsewhere does not change the key.
  const char* saved = std::getenv("GLQJIT_CACHE");
  const std::string saved_cache = saved ? saved : "";
  setenv("GLQJIT_CACHE", "/somewhere/else.db", 1);
  setenv("GLQJIT_NO_JIT", "1", 1);
  const KernelKey b = make_kernel_key(generate_kernel(spec, variant, 8, arch));
  unsetenv("GLQJIT_NO_JIT");
  if (saved) setenv("GLQJIT_CACHE", saved_cache.c_str(), 1);
  else unsetenv("GLQJIT_CACHE");
  CHECK(a.canonical() == b.canonical());
  CHECK(a.digest() == b.digest());
  CHECK(a.digest().size() == 64);
  CHECK(a.library_version == GLQJIT_TEST_PROJECT_VERSION);
  CHECK(a.schema_version == kStoreSchemaVersion);
  CHECK(a.batch_bucket == 8);
  CHECK(a.variant == variant.canonical());
  CHECK(contains(a.canonical(), "arch=sm_90a\n"));
  CHECK(contains(a.canonical(), "spec=" + spec.canonical() + "\n"));
  // A different bucket is a different key.
  CHECK(make_kernel_key(generate_kernel(spec, default_variant(spec, 16, arch, 132), 16, arch)).digest() != a.digest());
}

TEST_CASE("obtain_kernels needs no GPU", "[kernel_binary]") {
  const LinearSpec spec{1000, 5000, 4};
  const Arch arch = parse_arch("sm_80");
  // Bucket 2, family 2: at bucket 1 this layer runs family 1, whose module holds glq_fused too.
  std::vector<GeneratedKernel> sets = {generate_kernel(spec, default_variant(spec, 2, arch, 108), 2, arch)};
  const std::vector<KernelBinary> b = obtain_kernels(nullptr, sets, {});
  REQUIRE(b.size() == 1);
  CHECK_FALSE(b[0].from_store);
  CHECK(b[0].compiled.cubin.size() > 1000);
  CHECK(b[0].key.digest() == make_kernel_key(sets[0]).digest());
  CHECK(b[0].compiled.key_digest == b[0].key.digest());
  // Six kernels per module: the chunk and strided passes of each side, the matmul, the repack.
  REQUIRE(b[0].resources.size() == 6);
  for (const char* name : {"glq_input_chunks", "glq_input_strided", "glq_matmul", "glq_output_chunks",
                           "glq_output_strided", "glq_repack_e81b"}) {
    INFO(name);
    CHECK(std::count_if(b[0].resources.begin(), b[0].resources.end(),
                        [&](const KernelResources& r) { return r.name == name; }) == 1);
  }
  ObtainOptions no_jit;
  no_jit.no_jit = true;
  const Thrown c = capture_error([&] { obtain_kernels(nullptr, sets, no_jit); });
  CHECK(c.status == Status::no_jit);
  CHECK(contains(c.message, "glq-tune"));
}
