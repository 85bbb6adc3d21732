#include "runtime/linear_group.hpp"

#include <fmt/format.h>

#include "codegen/variant_space.hpp"
#include "glqjit/error.hpp"
#include "runtime/driver.hpp"
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
// none): up to kFusedUpToBucket where family 1 can serve the group, further where a variant is
// forced for the bucket (it must be legal there, as for any linear).
int one_kernel_batches(Context& context, const LinearSpec& group, const LinearOptions& options) {
  const Arch& arch = context.device().arch;
  int served = 0;
  for (int bucket = 1; bucket / 2 < options.max_batch; bucket *= 2) {
    if (!options.variants.contains(bucket)) {
      if (bucket > kFusedUpToBucket) break;
      try {
        default_variant(group, bucket, arch, context.device().sm_count);
      } catch (const Error& error) {
        if (error.status() != Status::unsupported_shape) throw;
        log_line(LogLevel::debug, fmt::format("{}: batches from {} run one linear at a time ({})", group.canonical(),
                                              bucket / 2 + 1, error.what()));
        break;
      }
    }
    served = std::min(bucket, options.max_batch);
  }
  return served;
}

size_t round_up_256(size_t bytes) { return (bytes + 255) / 256 * 256; }

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
  size_t staging_bytes = 0;
  for (size_t k = 0; k < linears.size(); ++k) {
    separate_.push_back(std::make_unique<Linear>(context, linears[k], weights[k], separate));
    staging_offsets_.push_back(staging_bytes);
    staging_bytes += round_up_256(size_t(options.max_batch) * linears[k].out_features * 2);
  }
  ScopedContext scope(context.cu());
  check_cuda(allocate_device_memory(&staging_, staging_bytes),
             fmt::format("allocating {} bytes for the group's separate outputs", staging_bytes));
}

LinearGroup::~LinearGroup() {
  if (staging_ == 0) return;
  try {
    ScopedContext scope(context_.cu());
    driver().cuMemFree(staging_);
  } catch (const Error&) {
    // The context is gone (driver shutdown), and its memory with it.
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
  forward_separately(x, y, batch, stream);
}

void LinearGroup::forward_separately(CUdeviceptr x, CUdeviceptr y, int batch, CUstream stream) {
  ScopedContext scope(context_.cu());
  const size_t element = 2;
  const size_t y_pitch = size_t(spec_.out_features) * element;
  for (size_t k = 0; k < separate_.size(); ++k) {
    const size_t width = size_t(separate_[k]->spec().out_features) * element;
    const CUdeviceptr column = y + y_columns_[k] * element;
    // One row lands in place where it stays 16-byte aligned; else the rows are copied over.
    if (batch == 1 && column % 16 == 0) {
      separate_[k]->forward(x, column, batch, stream);
      continue;
    }
    const CUdeviceptr staged = staging_ + staging_offsets_[k];
    separate_[k]->forward(x, staged, batch, stream);
    CUDA_MEMCPY2D copy{};
    copy.srcMemoryType = CU_MEMORYTYPE_DEVICE;
    copy.srcDevice = staged;
    copy.srcPitch = width;
    copy.dstMemoryType = CU_MEMORYTYPE_DEVICE;
    copy.dstDevice = column;
    copy.dstPitch = y_pitch;
    copy.WidthInBytes = width;
    copy.Height = size_t(batch);
    check_cuda(driver().cuMemcpy2DAsync(&copy, stream), "copying a linear's outputs into the group's y");
  }
}

}  // namespace glqjit
