#include "runtime/linear_group.hpp"

#include <fmt/format.h>

#include "codegen/variant_space.hpp"
#include "glqjit/error.hpp"
#include "support/log.hpp"

namespace glqjit {
namespace {

// Whether one kernel can hold every linear: one recipe, one bias choice, one Hadamard mode.
bool share_a_kernel(const std::vector<LinearSpec>& linears) {
  for (const LinearSpec& linear : linears) {
    const LinearSpec& first = linears.front();
    if (linear.bpw != first.bpw || linear.has_bias != first.has_bias ||
        linear.legacy_single_block != first.legacy_single_block) {
      return false;
    }
  }
  return true;
}

// The largest batch up to max_batch whose bucket, and every one below, runs as one kernel (0:
// none): up to group_one_kernel_limit's bucket, further where a variant is forced for the bucket
// (it must be legal there, as for any linear).
int one_kernel_batches(Context& context, const LinearSpec& group, const LinearOptions& options) {
  const GroupOneKernelLimit limit = group_one_kernel_limit(group, context.device().arch, context.device().sm_count);
  int served = 0;
  for (int bucket = 1; bucket / 2 < options.max_batch; bucket *= 2) {
    if (!options.variants.contains(bucket) && bucket > limit.bucket) {
      if (!limit.why.empty()) {
        log_line(LogLevel::debug, fmt::format("{}: batches from {} run one linear at a time ({})", group.canonical(),
                                              bucket / 2 + 1, limit.why));
      }
      break;
    }
    served = std::min(bucket, options.max_batch);
  }
  return served;
}

}  // namespace

LinearGroup::LinearGroup(Context& context, const std::vector<LinearSpec>& linears,
                         const std::vector<DeviceWeights>& weights, const LinearOptions& options)
    : context_(context), spec_(group_of(linears)), options_(options) {
  if (weights.size() != linears.size()) {
    throw Error(Status::invalid_argument,
                fmt::format("{} sets of weights for a group of {} linears", weights.size(), linears.size()));
  }
  int64_t column = 0;
  for (const LinearSpec& linear : linears) {
    y_columns_.push_back(column);
    column += linear.out_features;
  }
  const int one_kernel_batch = share_a_kernel(linears) ? one_kernel_batches(context, spec_, options) : 0;
  if (one_kernel_batch > 0) {
    LinearOptions one_kernel = options;
    one_kernel.max_batch = one_kernel_batch;
    one_kernel_ = std::make_unique<Linear>(context, spec_, weights, one_kernel);
  }
  if (one_kernel_batch >= options.max_batch) return;

  LinearOptions separate = options;
  separate.variants.clear();
  for (size_t k = 0; k < linears.size(); ++k) {
    try {
      separate_.push_back(std::make_unique<Linear>(context, linears[k], weights[k], separate));
    } catch (const Error& error) {
      throw Error(error.status(),
                  fmt::format("linear {} of the group ({}): {}", k, linears[k].canonical(), error.what()));
    }
  }
}

void LinearGroup::forward(CUdeviceptr x, CUdeviceptr y, int batch, CUstream stream) {
  if (batch >= 1 && batch <= one_kernel_max_batch()) {
    one_kernel_->forward(x, y, batch, stream);
    return;
  }
  if (batch < 1 || batch > options_.max_batch) {
    throw Error(Status::invalid_argument,
                fmt::format("batch {} is outside 1..{} (the max_batch this group was created with); create it with a "
                            "larger max_batch",
                            batch, options_.max_batch));
  }
  if (y == 0 || y % 16 != 0) {
    throw Error(Status::invalid_argument, fmt::format("y (0x{:x}) must be a 16-byte aligned device pointer", y));
  }
  const size_t element = 2;
  for (size_t k = 0; k < separate_.size(); ++k) {
    separate_[k]->forward(x, y + y_columns_[k] * element, batch, stream, spec_.out_features);
  }
}

}  // namespace glqjit
