// glq-bench's second baseline: FP8 e4m3 weights through cuBLASLt, what a user picks instead of
// glqjit on Ada and Hopper (torch._scaled_mm with per-tensor scales, as BENCHMARK.md compares).
// Opened with dlopen like libcublas (bench_cublas.hpp), so glq-bench runs without the column where
// libcublasLt is missing.
#pragma once

#include <cuda.h>

#include <cstdint>
#include <memory>
#include <string>

namespace glqjit::bench {

class CublasLt {
 public:
  // Opens libcublasLt (.so.13, .so.12, .so), creates a handle and allocates the workspace every
  // matmul gets, so that none allocates during capture. Returns null, with `reason` saying why,
  // when the library cannot be loaded or started.
  static std::unique_ptr<CublasLt> load(std::string& reason);
  ~CublasLt();
  CublasLt(const CublasLt&) = delete;
  CublasLt& operator=(const CublasLt&) = delete;

  const std::string& library() const { return library_; }  // the file name dlopen took
  size_t version() const { return version_; }              // cublasLtGetVersion, e.g. 130100

  // y[batch, out] = weight_scale * input_scale * x[batch, in] * W[out, in]^T with W and x e4m3
  // and row-major, y fp16 and row-major, fp32 accumulation: torch._scaled_mm(x, W.t(), scale_a,
  // scale_b, out_dtype=float16) for a linear layer. The scales are device fp32 scalars (per
  // tensor; cuBLASLt 13.1 refused one that was only 4-byte aligned, 256-byte aligned ones run). The algorithm is
  // cuBLASLt's first heuristic answer for this shape and batch, asked once when the object is
  // made, so run() may be captured in a CUDA graph.
  class Fp8Linear {
   public:
    ~Fp8Linear();
    Fp8Linear(const Fp8Linear&) = delete;
    Fp8Linear& operator=(const Fp8Linear&) = delete;
    // Throws Error(cuda_error) naming cuBLASLt's status on failure.
    void run(CUdeviceptr weight, CUdeviceptr x, CUdeviceptr y, CUstream stream) const;

   private:
    friend class CublasLt;
    struct Descriptors;
    explicit Fp8Linear(const CublasLt& owner);
    const CublasLt& owner_;
    std::unique_ptr<Descriptors> descriptors_;
  };

  // Throws Error(cuda_error) when cuBLASLt refuses the descriptors or has no algorithm for them.
  std::unique_ptr<Fp8Linear> fp8_linear(int64_t out_features, int64_t in_features, int batch,
                                        CUdeviceptr weight_scale, CUdeviceptr input_scale) const;

  struct Functions;

 private:
  CublasLt();
  void check(int status, const char* what) const;

  std::unique_ptr<Functions> f_;
  void* handle_ = nullptr;
  CUdeviceptr workspace_ = 0;
  std::string library_;
  size_t version_ = 0;
};

}  // namespace glqjit::bench
