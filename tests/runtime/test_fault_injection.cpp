// The fault injection hook (support/fault_injection.hpp) and the failure it injects on the CPU:
// an NVRTC compile that fails is Error(compile_error), stores nothing, and the next compile of
// the same kernels works. The GPU points (module load, device allocation) are checked through
// the C ABI by c_abi_test on a GPU machine.
#include <catch2/catch.hpp>

#include "cache/store.hpp"
#include "codegen/variant_space.hpp"
#include "runtime/kernel_binary.hpp"
#include "support/fault_injection.hpp"
#include "test_helpers.hpp"

using namespace glqjit;
using test::ScopedEnvironment;

TEST_CASE("GLQJIT_INJECT_FAULT fails every call at a point, or every Nth", "[fault_injection]") {
  ScopedEnvironment inject("GLQJIT_INJECT_FAULT", std::nullopt);
  for (int call = 0; call < 3; ++call) CHECK_FALSE(fault_injected(FaultPoint::device_alloc));

  inject.set("device_alloc");
  for (int call = 0; call < 3; ++call) CHECK(fault_injected(FaultPoint::device_alloc));
  CHECK_FALSE(fault_injected(FaultPoint::module_load));
  CHECK_FALSE(fault_injected(FaultPoint::nvrtc_compile));

  // Counted from when the hook first sees the value: the first three calls above do not count.
  inject.set("module_load@3,nvrtc_compile@1");
  for (int call = 1; call <= 7; ++call) {
    INFO("call " << call);
    CHECK(fault_injected(FaultPoint::module_load) == (call % 3 == 0));
  }
  CHECK(fault_injected(FaultPoint::nvrtc_compile));
  CHECK(fault_injected(FaultPoint::nvrtc_compile));
  CHECK_FALSE(fault_injected(FaultPoint::device_alloc));

  // Parts it cannot read are ignored (with a warning); the readable ones still count.
  inject.set("device_alloc@0,device_allocate,module_load@x,nvrtc_compile@2");
  CHECK_FALSE(fault_injected(FaultPoint::nvrtc_compile));
  CHECK(fault_injected(FaultPoint::nvrtc_compile));
  for (int call = 0; call < 3; ++call) {
    CHECK_FALSE(fault_injected(FaultPoint::device_alloc));
    CHECK_FALSE(fault_injected(FaultPoint::module_load));
  }

  inject.set("");
  CHECK_FALSE(fault_injected(FaultPoint::nvrtc_compile));
}

TEST_CASE("an NVRTC compile that fails is a compile_error, stores nothing, and the next one works",
          "[fault_injection]") {
  test::TempDir dir;
  Store store(StoreOptions{dir.file("kernels.db"), false});
  const Arch arch = parse_arch("sm_90a");
  const LinearSpec spec{1024, 2048, 2};
  const std::vector<GeneratedKernel> sets = {generate_kernel(spec, default_variant(spec, 1, arch, 132), 1, arch),
                                             generate_kernel(spec, default_variant(spec, 16, arch, 132), 16, arch)};
  {
    ScopedEnvironment inject("GLQJIT_INJECT_FAULT", "nvrtc_compile");
    GLQ_REQUIRE_ERROR(obtain_kernels(&store, sets, {}), Status::compile_error, "NVRTC", "could not compile");
  }
  for (const GeneratedKernel& set : sets) CHECK_FALSE(store.find_kernel(make_kernel_key(set).digest()).has_value());

  // One of two compiles failing: the call fails, the other kernel set is still stored whole.
  {
    ScopedEnvironment inject("GLQJIT_INJECT_FAULT", "nvrtc_compile@2");
    GLQ_REQUIRE_ERROR(obtain_kernels(&store, sets, {}), Status::compile_error, "NVRTC");
  }
  int stored = 0;
  for (const GeneratedKernel& set : sets) {
    if (std::optional<CompiledKernel> kernel = store.find_kernel(make_kernel_key(set).digest())) {
      ++stored;
      CHECK(kernel->cubin.size() > 1000);
    }
  }
  CHECK(stored == 1);

  // The compile locks of the failed compiles were let go: without the hook both come back at
  // once, one from the store and one compiled.
  const std::vector<KernelBinary> binaries = obtain_kernels(&store, sets, {});
  REQUIRE(binaries.size() == 2);
  CHECK(binaries[0].from_store != binaries[1].from_store);
  for (const KernelBinary& binary : binaries) {
    CHECK(binary.compiled.cubin.size() > 1000);
    CHECK(store.find_kernel(binary.key.digest()).has_value());
  }
}
