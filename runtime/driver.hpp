// The CUDA Driver API, opened with dlopen so that the library and every tool load and explain
// themselves on machines without a driver.
#pragma once

#include <cuda.h>

#include <string>

namespace glqjit {

// Each entry is resolved with cuGetProcAddress for the CUDA version of cuda.h, so it gets that
// version's ABI. That ABI must be the prototype cuda.h declares under the same name: it is not
// for cuCtxSynchronize (13.0 resolves it to the one that takes a context), so it is absent and
// code synchronizes streams instead.
#define GLQJIT_DRIVER_FUNCTIONS(X)                                                                         \
  X(cuInit) X(cuDriverGetVersion) X(cuGetErrorName) X(cuGetErrorString) X(cuDeviceGetCount) X(cuDeviceGet) \
  X(cuDeviceGetName) X(cuDeviceGetAttribute) X(cuDevicePrimaryCtxRetain) X(cuDevicePrimaryCtxRelease)     \
  X(cuCtxPushCurrent) X(cuCtxPopCurrent) X(cuModuleLoadData) X(cuModuleUnload)                            \
  X(cuModuleGetFunction) X(cuFuncSetAttribute) X(cuFuncGetAttribute) X(cuLaunchKernel) X(cuLaunchKernelEx) \
  X(cuMemAlloc) X(cuMemGetInfo)                                                                           \
  X(cuMemFree) X(cuMemcpyHtoD) X(cuMemcpyDtoH) X(cuMemcpy2DAsync) X(cuMemsetD8) X(cuMemsetD32Async)        \
  X(cuStreamCreate)                                                                                       \
  X(cuStreamDestroy) X(cuStreamSynchronize) X(cuStreamGetCaptureInfo) X(cuStreamBeginCapture)               \
  X(cuStreamEndCapture) X(cuGraphCreate) X(cuGraphDestroy) X(cuGraphAddKernelNode)                        \
  X(cuGraphInstantiateWithFlags)                                                                          \
  X(cuGraphLaunch) X(cuGraphExecDestroy) X(cuGraphExecKernelNodeSetParams) X(cuEventCreate)                 \
  X(cuEventRecord) X(cuEventSynchronize) X(cuEventElapsedTime) X(cuEventDestroy) X(cuPointerGetAttribute)

struct Driver {
#define GLQJIT_DRIVER_MEMBER(name) decltype(&::name) name = nullptr;
  GLQJIT_DRIVER_FUNCTIONS(GLQJIT_DRIVER_MEMBER)
#undef GLQJIT_DRIVER_MEMBER
  int version = 0;  // e.g. 13000
};

// Loads libcuda once and calls cuInit; throws Error(no_driver) saying why it could not.
const Driver& driver();

// Throws Error(cuda_error) naming `what` and the driver's error when result is not CUDA_SUCCESS.
void check_cuda(CUresult result, const std::string& what);

// cuMemAlloc behind the fault injection hook (support/fault_injection.hpp): glqjit allocates
// device memory only through here, so that a test can make any of its allocations fail.
CUresult allocate_device_memory(CUdeviceptr* pointer, size_t bytes);

// Makes a context current on this thread for the scope (and restores the previous one).
class ScopedContext {
 public:
  explicit ScopedContext(CUcontext context);
  ~ScopedContext();
  ScopedContext(const ScopedContext&) = delete;
  ScopedContext& operator=(const ScopedContext&) = delete;
};

}  // namespace glqjit
