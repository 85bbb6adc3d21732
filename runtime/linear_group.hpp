// Linears that read the same input (q, k and v; gate and up), each with its own checkpoint
// tensors (FORMAT.md 7), run as one forward whose outputs sit side by side in y.
#pragma once

#include <cuda.h>

#include <memory>
#include <vector>

#include "codegen/spec.hpp"
#include "runtime/context.hpp"
#include "runtime/linear.hpp"

namespace glqjit {

// Where the linears agree on bpw, bias and Hadamard mode, the batches of the buckets that
// group_one_kernel_limit gives (further where LinearOptions forces a variant) run as one kernel over
// all of them (templates/matmul_fused.cuh: one CTA works for one linear), a Linear of the group's
// spec. Larger batches, and linears that cannot share a kernel, run one forward per linear, each
// writing its columns of y in place (Linear::forward's y_row_stride).
class LinearGroup {
 public:
  // `linears` share in_features and dtype (else Error(invalid_argument)); `weights` holds the
  // tensors of each, in the same order; options as Linear's (forced variants apply to the one
  // kernel). Throws what Linear throws.
  LinearGroup(Context& context, const std::vector<LinearSpec>& linears, const std::vector<DeviceWeights>& weights,
              const LinearOptions& options);
  LinearGroup(const LinearGroup&) = delete;
  LinearGroup& operator=(const LinearGroup&) = delete;

  // One spec for the whole group (LinearSpec::shard_out_features), its out_features the width of y.
  const LinearSpec& spec() const { return spec_; }
  int max_batch() const { return options_.max_batch; }
  // Batches up to this run as one kernel; 0 when none do.
  int one_kernel_max_batch() const { return one_kernel_ != nullptr ? one_kernel_->max_batch() : 0; }
  const Linear* one_kernel() const { return one_kernel_.get(); }

  // y = [linear 0 (x), linear 1 (x), ...] on `stream`: x is [batch, in_features], y is [batch,
  // spec().out_features], in the activation dtype, 16-byte aligned. Like Linear::forward, no
  // allocation, synchronization or compilation (but a lazy bucket's first use), so it may be
  // captured; forwards of one group must not overlap in time.
  void forward(CUdeviceptr x, CUdeviceptr y, int batch, CUstream stream);

 private:
  Context& context_;
  LinearSpec spec_;
  LinearOptions options_;
  std::unique_ptr<Linear> one_kernel_;
  std::vector<std::unique_ptr<Linear>> separate_;  // only where some batch needs them
  std::vector<int64_t> y_columns_;                  // where each linear's outputs start in a row of y
};

}  // namespace glqjit
