#include "tools/bench_cublaslt.hpp"

// Types, enums and prototypes only: the functions are called through pointers from dlsym. The
// header ships beside cublas_api.h (which bench_cublas.cpp includes) in the toolkit's cuBLAS
// package, so its enum values are the library's own rather than copies that could drift.
#include <cublasLt.h>
#include <fmt/format.h>

#include "glqjit/error.hpp"
#include "runtime/driver.hpp"
#include "tools/bench_cublas.hpp"

namespace glqjit::bench {

// The entry points glq-bench calls (none is overloaded, so decltype names their types).
struct CublasLt::Functions {
  decltype(&cublasLtCreate) create = nullptr;
  decltype(&cublasLtDestroy) destroy = nullptr;
  decltype(&cublasLtMatmulDescCreate) matmul_desc_create = nullptr;
  decltype(&cublasLtMatmulDescDestroy) matmul_desc_destroy = nullptr;
  decltype(&cublasLtMatmulDescSetAttribute) matmul_desc_set_attribute = nullptr;
  decltype(&cublasLtMatrixLayoutCreate) matrix_layout_create = nullptr;
  decltype(&cublasLtMatrixLayoutDestroy) matrix_layout_destroy = nullptr;
  decltype(&cublasLtMatmulPreferenceCreate) preference_create = nullptr;
  decltype(&cublasLtMatmulPreferenceDestroy) preference_destroy = nullptr;
  decltype(&cublasLtMatmulPreferenceSetAttribute) preference_set_attribute = nullptr;
  decltype(&cublasLtMatmulAlgoGetHeuristic) algo_get_heuristic = nullptr;
  decltype(&cublasLtMatmul) matmul = nullptr;
  // Optional: missing ones are skipped.
  decltype(&cublasLtGetVersion) get_version = nullptr;
  decltype(&cublasLtGetStatusName) status_name = nullptr;
};

struct CublasLt::Fp8Linear::Descriptors {
  cublasLtMatmulDesc_t matmul = nullptr;
  cublasLtMatrixLayout_t weight = nullptr;  // cuBLASLt's A
  cublasLtMatrixLayout_t input = nullptr;   // B
  cublasLtMatrixLayout_t output = nullptr;  // C and D
  cublasLtMatmulPreference_t preference = nullptr;
  cublasLtMatmulAlgo_t algo{};
};

CublasLt::CublasLt() = default;

std::unique_ptr<CublasLt> CublasLt::load(std::string& reason) {
  std::string taken, tried;
  void* library = open_first_library({"libcublasLt.so.13", "libcublasLt.so.12", "libcublasLt.so"}, taken, tried);
  if (library == nullptr) {
    reason = "libcublasLt could not be loaded (" + tried + ")";
    return nullptr;
  }
  std::unique_ptr<CublasLt> lt(new CublasLt());
  lt->library_ = taken;
  lt->f_ = std::make_unique<Functions>();
  Functions& f = *lt->f_;
  const bool complete = resolve_symbol(library, "cublasLtCreate", f.create) &&
                        resolve_symbol(library, "cublasLtDestroy", f.destroy) &&
                        resolve_symbol(library, "cublasLtMatmulDescCreate", f.matmul_desc_create) &&
                        resolve_symbol(library, "cublasLtMatmulDescDestroy", f.matmul_desc_destroy) &&
                        resolve_symbol(library, "cublasLtMatmulDescSetAttribute", f.matmul_desc_set_attribute) &&
                        resolve_symbol(library, "cublasLtMatrixLayoutCreate", f.matrix_layout_create) &&
                        resolve_symbol(library, "cublasLtMatrixLayoutDestroy", f.matrix_layout_destroy) &&
                        resolve_symbol(library, "cublasLtMatmulPreferenceCreate", f.preference_create) &&
                        resolve_symbol(library, "cublasLtMatmulPreferenceDestroy", f.preference_destroy) &&
                        resolve_symbol(library, "cublasLtMatmulPreferenceSetAttribute", f.preference_set_attribute) &&
                        resolve_symbol(library, "cublasLtMatmulAlgoGetHeuristic", f.algo_get_heuristic) &&
                        resolve_symbol(library, "cublasLtMatmul", f.matmul);
  if (!complete) {
    reason = fmt::format("{} lacks one of the cublasLt matmul, descriptor, layout, preference or heuristic functions",
                         taken);
    return nullptr;
  }
  resolve_symbol(library, "cublasLtGetVersion", f.get_version);
  resolve_symbol(library, "cublasLtGetStatusName", f.status_name);
  if (f.get_version != nullptr) lt->version_ = f.get_version();

  cublasLtHandle_t handle = nullptr;
  const cublasStatus_t created = f.create(&handle);
  if (created != CUBLAS_STATUS_SUCCESS || handle == nullptr) {
    const char* name = f.status_name ? f.status_name(created) : nullptr;
    reason = fmt::format("cublasLtCreate failed ({})", name ? name : std::to_string(int(created)));
    return nullptr;
  }
  lt->handle_ = handle;
  try {
    check_cuda(allocate_device_memory(&lt->workspace_, kCublasWorkspaceBytes), "allocating the cuBLASLt workspace");
  } catch (const Error& error) {
    reason = error.what();
    return nullptr;  // the destructor releases the handle
  }
  return lt;
}

CublasLt::~CublasLt() {
  if (handle_ != nullptr && f_ && f_->destroy != nullptr) f_->destroy(static_cast<cublasLtHandle_t>(handle_));
  if (workspace_ != 0) driver().cuMemFree(workspace_);
}

void CublasLt::check(int status, const char* what) const {
  if (status == CUBLAS_STATUS_SUCCESS) return;
  throw_cublas_status(status, f_ && f_->status_name ? f_->status_name(static_cast<cublasStatus_t>(status)) : nullptr,
                      what, library_);
}

CublasLt::Fp8Linear::Fp8Linear(const CublasLt& owner)
    : owner_(owner), descriptors_(std::make_unique<Descriptors>()) {}

CublasLt::Fp8Linear::~Fp8Linear() {
  const Functions& f = *owner_.f_;
  const Descriptors& d = *descriptors_;
  if (d.preference != nullptr) f.preference_destroy(d.preference);
  for (cublasLtMatrixLayout_t layout : {d.weight, d.input, d.output}) {
    if (layout != nullptr) f.matrix_layout_destroy(layout);
  }
  if (d.matmul != nullptr) f.matmul_desc_destroy(d.matmul);
}

std::unique_ptr<CublasLt::Fp8Linear> CublasLt::fp8_linear(int64_t out_features, int64_t in_features, int batch,
                                                          CUdeviceptr weight_scale, CUdeviceptr input_scale) const {
  const Functions& f = *f_;
  std::unique_ptr<Fp8Linear> linear(new Fp8Linear(*this));
  Fp8Linear::Descriptors& d = *linear->descriptors_;  // released by ~Fp8Linear, also when this throws

  // D = alpha * (scale_A * op(A)) (scale_B * op(B)) + beta * C, accumulated and scaled in fp32
  // (cuBLAS documentation, cublasLtMatmul, "FP8 ... data types": A and B CUDA_R_8F_E4M3 with C and D
  // CUDA_R_16F take CUBLAS_COMPUTE_32F and scale type CUDA_R_32F).
  check(f.matmul_desc_create(&d.matmul, CUBLAS_COMPUTE_32F, CUDA_R_32F), "cublasLtMatmulDescCreate");
  auto set = [&](cublasLtMatmulDescAttributes_t attribute, const auto& value, const char* what) {
    check(f.matmul_desc_set_attribute(d.matmul, attribute, &value, sizeof(value)), what);
  };
  // cuBLASLt is column-major. W row-major [out, in] is column-major [in, out] with ld = in, so
  // op(A) = A^T is the [out, in] weight; x row-major [batch, in] is column-major [in, batch] = B,
  // untransposed; y row-major [batch, out] is column-major [out, batch] = D with ld = out. That is
  // the "TN" form, the only one FP8 has on Hopper and Ada (cublasLtMatmul's FP8 requirements: "A
  // must be transposed and B non-transposed"), and what torch._scaled_mm hands cuBLASLt.
  const cublasOperation_t transposed = CUBLAS_OP_T, not_transposed = CUBLAS_OP_N;
  set(CUBLASLT_MATMUL_DESC_TRANSA, transposed, "setting CUBLASLT_MATMUL_DESC_TRANSA");
  set(CUBLASLT_MATMUL_DESC_TRANSB, not_transposed, "setting CUBLASLT_MATMUL_DESC_TRANSB");
  // The attribute's value is the device pointer itself (const void*), one fp32 scalar per tensor.
  const void* a_scale = reinterpret_cast<const void*>(weight_scale);
  const void* b_scale = reinterpret_cast<const void*>(input_scale);
  set(CUBLASLT_MATMUL_DESC_A_SCALE_POINTER, a_scale, "setting CUBLASLT_MATMUL_DESC_A_SCALE_POINTER");
  set(CUBLASLT_MATMUL_DESC_B_SCALE_POINTER, b_scale, "setting CUBLASLT_MATMUL_DESC_B_SCALE_POINTER");

  const auto in = uint64_t(in_features), out = uint64_t(out_features), columns = uint64_t(batch);
  check(f.matrix_layout_create(&d.weight, CUDA_R_8F_E4M3, in, out, int64_t(in)), "cublasLtMatrixLayoutCreate (A)");
  check(f.matrix_layout_create(&d.input, CUDA_R_8F_E4M3, in, columns, int64_t(in)), "cublasLtMatrixLayoutCreate (B)");
  check(f.matrix_layout_create(&d.output, CUDA_R_16F, out, columns, int64_t(out)), "cublasLtMatrixLayoutCreate (D)");

  check(f.preference_create(&d.preference), "cublasLtMatmulPreferenceCreate");
  const uint64_t workspace_bytes = kCublasWorkspaceBytes;
  check(f.preference_set_attribute(d.preference, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &workspace_bytes,
                                   sizeof(workspace_bytes)),
        "setting CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES");
  cublasLtMatmulHeuristicResult_t heuristic{};
  int found = 0;
  check(f.algo_get_heuristic(static_cast<cublasLtHandle_t>(handle_), d.matmul, d.weight, d.input, d.output, d.output,
                             d.preference, 1, &heuristic, &found),
        "cublasLtMatmulAlgoGetHeuristic");
  if (found < 1) {
    throw Error(Status::cuda_error,
                fmt::format("cuBLASLt ({}) has no FP8 algorithm for {}x{} at batch {}", library_, out_features,
                            in_features, batch));
  }
  d.algo = heuristic.algo;
  return linear;
}

void CublasLt::Fp8Linear::run(CUdeviceptr weight, CUdeviceptr x, CUdeviceptr y, CUstream stream) const {
  const Functions& f = *owner_.f_;
  const Descriptors& d = *descriptors_;
  const float alpha = 1.0f, beta = 0.0f;
  void* output = reinterpret_cast<void*>(y);
  // No C: beta is 0, and torch._scaled_mm passes none either.
  owner_.check(f.matmul(static_cast<cublasLtHandle_t>(owner_.handle_), d.matmul, &alpha,
                        reinterpret_cast<const void*>(weight), d.weight, reinterpret_cast<const void*>(x), d.input,
                        &beta, nullptr, d.output, output, d.output, &d.algo, reinterpret_cast<void*>(owner_.workspace_),
                        kCublasWorkspaceBytes, reinterpret_cast<cudaStream_t>(stream)),
               "cublasLtMatmul");
}

}  // namespace glqjit::bench
