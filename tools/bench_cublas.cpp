#include "tools/bench_cublas.hpp"

#include <cublas_api.h>
#include <dlfcn.h>
#include <fmt/format.h>

#include <utility>

#include "glqjit/error.hpp"
#include "runtime/driver.hpp"

namespace glqjit::bench {

// The few entry points glq-bench calls. Types are spelled out (cublasGemmEx is overloaded in
// C++ by cublas_api.h, so decltype cannot name it).
struct Cublas::Functions {
  cublasStatus_t (*create)(cublasHandle_t*) = nullptr;
  cublasStatus_t (*destroy)(cublasHandle_t) = nullptr;
  cublasStatus_t (*set_stream)(cublasHandle_t, cudaStream_t) = nullptr;
  cublasStatus_t (*gemm_ex)(cublasHandle_t, cublasOperation_t, cublasOperation_t, int, int, int, const void*,
                            const void*, cudaDataType, int, const void*, cudaDataType, int, const void*, void*,
                            cudaDataType, int, cublasComputeType_t, cublasGemmAlgo_t) = nullptr;
  // Optional: missing ones are skipped.
  cublasStatus_t (*set_workspace)(cublasHandle_t, void*, size_t) = nullptr;
  cublasStatus_t (*get_version)(cublasHandle_t, int*) = nullptr;
  const char* (*status_name)(cublasStatus_t) = nullptr;
};

void* open_first_library(std::initializer_list<const char*> names, std::string& taken, std::string& reason) {
  std::string tried;
  for (const char* name : names) {
    if (void* library = dlopen(name, RTLD_NOW | RTLD_LOCAL)) {
      taken = name;
      return library;
    }
    const char* error = dlerror();
    tried += fmt::format("{}{}: {}", tried.empty() ? "" : "; ", name, error ? error : "not found");
  }
  reason = tried;
  return nullptr;
}

Cublas::Cublas() = default;

std::unique_ptr<Cublas> Cublas::load(std::string& reason) {
  std::string taken, tried;
  void* library = open_first_library({"libcublas.so.13", "libcublas.so.12", "libcublas.so"}, taken, tried);
  if (library == nullptr) {
    reason = "libcublas could not be loaded (" + tried + ")";
    return nullptr;
  }
  std::unique_ptr<Cublas> cublas(new Cublas());
  cublas->library_ = taken;
  cublas->f_ = std::make_unique<Functions>();
  Functions& f = *cublas->f_;
  if (!resolve_symbol(library, "cublasCreate_v2", f.create) ||
      !resolve_symbol(library, "cublasDestroy_v2", f.destroy) ||
      !resolve_symbol(library, "cublasSetStream_v2", f.set_stream) ||
      !resolve_symbol(library, "cublasGemmEx", f.gemm_ex)) {
    reason = fmt::format("{} lacks cublasCreate_v2, cublasDestroy_v2, cublasSetStream_v2 or cublasGemmEx", taken);
    return nullptr;
  }
  resolve_symbol(library, "cublasSetWorkspace_v2", f.set_workspace);
  resolve_symbol(library, "cublasGetVersion_v2", f.get_version);
  resolve_symbol(library, "cublasGetStatusName", f.status_name);

  cublasHandle_t handle = nullptr;
  const cublasStatus_t created = f.create(&handle);
  if (created != CUBLAS_STATUS_SUCCESS || handle == nullptr) {
    const char* name = f.status_name ? f.status_name(created) : nullptr;
    reason = fmt::format("cublasCreate failed ({})", name ? name : std::to_string(int(created)));
    return nullptr;
  }
  cublas->handle_ = handle;
  if (f.get_version != nullptr) {
    int version = 0;
    if (f.get_version(handle, &version) == CUBLAS_STATUS_SUCCESS) cublas->version_ = version;
  }
  if (f.set_workspace != nullptr) {
    try {
      check_cuda(allocate_device_memory(&cublas->workspace_, kCublasWorkspaceBytes), "allocating the cuBLAS workspace");
      cublas->check(f.set_workspace(handle, reinterpret_cast<void*>(cublas->workspace_), kCublasWorkspaceBytes),
                    "cublasSetWorkspace");
    } catch (const Error& error) {
      reason = error.what();
      return nullptr;  // the destructor releases the handle and the workspace
    }
  }
  return cublas;
}

void throw_cublas_status(int status, const char* status_name, const char* what, const std::string& library) {
  const std::string name = status_name ? status_name : fmt::format("status {}", status);
  throw Error(Status::cuda_error, fmt::format("{} failed: {} ({})", what, name, library));
}

Cublas::~Cublas() {
  if (handle_ != nullptr && f_ && f_->destroy != nullptr) f_->destroy(static_cast<cublasHandle_t>(handle_));
  if (workspace_ != 0) driver().cuMemFree(workspace_);
}

void Cublas::check(int status, const char* what) const {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw_cublas_status(status, f_ && f_->status_name ? f_->status_name(static_cast<cublasStatus_t>(status)) : nullptr,
                      what, library_);
}

void Cublas::set_stream(CUstream stream) {
  check(f_->set_stream(static_cast<cublasHandle_t>(handle_), reinterpret_cast<cudaStream_t>(stream)),
        "cublasSetStream");
}

void Cublas::linear_f16(CUdeviceptr weight, CUdeviceptr x, CUdeviceptr y, int64_t out_features, int64_t in_features,
                        int batch) {
  // Column-major view: y^T[out, batch] = W[in, out]^T * x^T[in, batch]; W row-major [out, in] is
  // column-major [in, out] with ld = in.
  const float alpha = 1.0f, beta = 0.0f;
  const int m = int(out_features), n = batch, k = int(in_features);
  check(f_->gemm_ex(static_cast<cublasHandle_t>(handle_), CUBLAS_OP_T, CUBLAS_OP_N, m, n, k, &alpha,
                    reinterpret_cast<const void*>(weight), CUDA_R_16F, k, reinterpret_cast<const void*>(x), CUDA_R_16F,
                    k, &beta, reinterpret_cast<void*>(y), CUDA_R_16F, m, CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
        "cublasGemmEx");
}

}  // namespace glqjit::bench
