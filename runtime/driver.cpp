#include "runtime/driver.hpp"

#include <dlfcn.h>

#include <fmt/format.h>
#include <memory>
#include <mutex>

#include "glqjit/error.hpp"
#include "support/fault_injection.hpp"

namespace glqjit {
namespace {

using GetProcAddress = CUresult (*)(const char*, void**, int, cuuint64_t, CUdriverProcAddressQueryResult*);

Error missing_function(const char* name, CUresult result) {
  if (result == CUDA_ERROR_STUB_LIBRARY) {
    return Error(Status::no_driver, "no CUDA driver: the libcuda.so.1 found is the CUDA toolkit's stub library, not a "
                                    "driver; install the NVIDIA driver, or take the toolkit's stubs folder out of "
                                    "LD_LIBRARY_PATH");
  }
  return Error(Status::no_driver, fmt::format("the CUDA driver has no {} for CUDA {}.{}: update the NVIDIA driver",
                                              name, CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10));
}

Driver load_driver() {
  void* library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    throw Error(Status::no_driver,
                fmt::format("no CUDA driver: libcuda.so.1 could not be loaded ({}); install the NVIDIA driver or run on "
                            "a machine with a GPU (glq-dump works without one)",
                            dlerror()));
  }
  auto get_proc = reinterpret_cast<GetProcAddress>(dlsym(library, "cuGetProcAddress_v2"));
  if (get_proc == nullptr) {
    throw Error(Status::no_driver, "the CUDA driver is too old: libcuda.so.1 has no cuGetProcAddress_v2 (glqjit needs a "
                                   "driver for CUDA 12.4 or newer)");
  }
  Driver d;
#define GLQJIT_RESOLVE(name)                                                                                    \
  {                                                                                                             \
    void* pointer = nullptr;                                                                                    \
    CUdriverProcAddressQueryResult found{};                                                                     \
    const CUresult result = get_proc(#name, &pointer, CUDA_VERSION, CU_GET_PROC_ADDRESS_DEFAULT, &found);      \
    if (result != CUDA_SUCCESS || pointer == nullptr) throw missing_function(#name, result);                    \
    d.name = reinterpret_cast<decltype(d.name)>(pointer);                                                      \
  }
  GLQJIT_DRIVER_FUNCTIONS(GLQJIT_RESOLVE)
#undef GLQJIT_RESOLVE
  const CUresult init = d.cuInit(0);
  if (init != CUDA_SUCCESS) {
    const char* name = nullptr;
    d.cuGetErrorName(init, &name);
    throw Error(Status::no_driver, fmt::format("the CUDA driver did not start (cuInit: {}); check that a GPU is visible "
                                               "(nvidia-smi) and CUDA_VISIBLE_DEVICES",
                                               name ? name : "unknown error"));
  }
  d.cuDriverGetVersion(&d.version);
  return d;
}

}  // namespace

const Driver& driver() {
  // A failed load is retried on the next call rather than remembered, so the message repeats.
  static std::mutex mutex;
  static std::unique_ptr<Driver> loaded;
  std::lock_guard lock(mutex);
  if (!loaded) loaded = std::make_unique<Driver>(load_driver());
  return *loaded;
}

void check_cuda(CUresult result, const std::string& what) {
  if (result == CUDA_SUCCESS) return;
  const char* name = nullptr;
  const char* text = nullptr;
  driver().cuGetErrorName(result, &name);
  driver().cuGetErrorString(result, &text);
  const char* advice = result == CUDA_ERROR_OUT_OF_MEMORY
                           ? "; free device memory (nvidia-smi shows which processes hold it) or plan fewer or "
                             "smaller linears (a lower max_batch needs less workspace)"
                           : "";
  throw Error(Status::cuda_error,
              fmt::format("{} failed: {} ({}){}", what, name ? name : "?", text ? text : "?", advice));
}

CUresult allocate_device_memory(CUdeviceptr* pointer, size_t bytes) {
  if (fault_injected(FaultPoint::device_alloc)) return CUDA_ERROR_OUT_OF_MEMORY;
  return driver().cuMemAlloc(pointer, bytes);
}

ScopedContext::ScopedContext(CUcontext context) { check_cuda(driver().cuCtxPushCurrent(context), "cuCtxPushCurrent"); }

ScopedContext::~ScopedContext() {
  CUcontext previous = nullptr;
  driver().cuCtxPopCurrent(&previous);
}

}  // namespace glqjit
