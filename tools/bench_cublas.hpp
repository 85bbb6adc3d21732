// glq-bench's baseline: cuBLAS fp16 GEMM with fp32 accumulation, opened with dlopen so that
// glqjit never links cuBLAS and glq-bench runs (without the column) where it is missing.
#pragma once

#include <cuda.h>
#include <dlfcn.h>

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>

namespace glqjit::bench {

// cuBLAS' recommended workspace on Hopper; with it given, no GEMM allocates during capture.
inline constexpr size_t kCublasWorkspaceBytes = size_t(32) << 20;

// How glq-bench opens the cuBLAS libraries (this one and cuBLASLt, bench_cublaslt.hpp): dlopen of
// the first of `names` that loads, RTLD_NOW | RTLD_LOCAL, never closed (unloading cuBLAS and the
// CUDA runtime inside it before exit is not worth the trouble). Sets `taken` to the name that
// loaded; returns null, with `reason` giving each name tried and dlerror's answer, when none does.
void* open_first_library(std::initializer_list<const char*> names, std::string& taken, std::string& reason);

// `function` = the library's `name`; false when the library lacks it.
template <class F>
bool resolve_symbol(void* library, const char* name, F& function) {
  function = reinterpret_cast<F>(dlsym(library, name));
  return function != nullptr;
}

// Throws Error(cuda_error) "WHAT failed: NAME (LIBRARY)" for a cuBLAS or cuBLASLt status that is
// not CUBLAS_STATUS_SUCCESS; NAME is `status_name` (the library's name for it, null where the
// library cannot name it) or the number.
void throw_cublas_status(int status, const char* status_name, const char* what, const std::string& library);

class Cublas {
 public:
  // Opens libcublas (.so.13, .so.12, .so), creates a handle in the current context and gives
  // it a workspace so that GEMMs may be captured in a graph. Returns null, with `reason`
  // saying why, when the library cannot be loaded or started.
  static std::unique_ptr<Cublas> load(std::string& reason);
  ~Cublas();
  Cublas(const Cublas&) = delete;
  Cublas& operator=(const Cublas&) = delete;

  const std::string& library() const { return library_; }  // the file name dlopen took
  int version() const { return version_; }                 // cublasGetVersion, e.g. 130000; 0 unknown

  // Throws Error(cuda_error) naming cuBLAS' status on failure.
  void set_stream(CUstream stream);

  // y[batch, out] = x[batch, in] * W[out, in]^T, all row-major fp16, fp32 accumulation
  // (cublasGemmEx, CUBLAS_COMPUTE_32F): what torch.nn.functional.linear runs for fp16.
  void linear_f16(CUdeviceptr weight, CUdeviceptr x, CUdeviceptr y, int64_t out_features, int64_t in_features,
                  int batch);

  struct Functions;

 private:
  Cublas();
  void check(int status, const char* what) const;

  std::unique_ptr<Functions> f_;
  void* handle_ = nullptr;
  CUdeviceptr workspace_ = 0;
  std::string library_;
  int version_ = 0;
};

}  // namespace glqjit::bench
