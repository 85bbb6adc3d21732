#include "tuner/reference_gate.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "format/reference.hpp"
#include "runtime/driver.hpp"
#include "tuner/context_lost.hpp"

namespace glqjit {
namespace {

// All rows of small batches and small layers; else the first, the last and six random rows
// (every row is still checked to be finite).
std::vector<int> rows_to_check(int batch, const LinearSpec& spec, std::mt19937_64& rng) {
  std::vector<int> rows;
  if (batch <= 8 || spec.in_features * spec.out_features <= (int64_t(1) << 22)) {
    for (int r = 0; r < batch; ++r) rows.push_back(r);
    return rows;
  }
  std::set<int> chosen = {0, batch - 1};
  std::uniform_int_distribution<int> any_row(1, batch - 2);
  while (chosen.size() < 8) chosen.insert(any_row(rng));
  return {chosen.begin(), chosen.end()};
}

// A fault in a kernel is sticky: the legacy stream then fails too, and so does everything after.
void check_context_alive(const Error& error) {
  if (driver().cuStreamSynchronize(nullptr) != CUDA_SUCCESS) {
    throw ContextLost(fmt::format("the CUDA context is unusable after a failed forward ({}); stopping", error.what()));
  }
}

}  // namespace

ReferenceCase::ReferenceCase(Context& context, const LinearSpec& spec, const std::vector<int>& batches, uint64_t seed)
    : context_(context), spec_(spec) {
  std::mt19937_64 rng(seed);
  layers_ = random_layers(spec, rng());
  for (const QuantizedLayer& layer : layers_) {
    uploaded_.push_back(upload_layer(context.cu(), layer, spec.dtype));
    weights_.push_back(uploaded_.back().weights);
  }
  std::vector<double> gathered_x;
  for (int batch : batches) {
    Batch b;
    b.batch = batch;
    b.x = random_activations(batch, spec.in_features, spec.dtype, rng);
    b.rows = rows_to_check(batch, spec, rng);
    for (int r : b.rows) {
      gathered_x.insert(gathered_x.end(), b.x.values.begin() + size_t(r) * spec.in_features,
                        b.x.values.begin() + size_t(r + 1) * spec.in_features);
    }
    batches_.push_back(std::move(b));
  }
  const int total_rows = int(gathered_x.size() / spec.in_features);
  std::vector<std::vector<double>> references;  // per linear: [total_rows][its out_features]
  for (const QuantizedLayer& layer : layers_) references.push_back(reference_forward_fp64(layer, gathered_x, total_rows));
  int first_row = 0;
  for (Batch& b : batches_) {
    for (size_t r = 0; r < b.rows.size(); ++r) {
      for (size_t k = 0; k < layers_.size(); ++k) {
        const size_t out = size_t(layers_[k].geometry.out_features);
        const auto row = references[k].begin() + (first_row + r) * out;
        b.reference.insert(b.reference.end(), row, row + out);
      }
    }
    first_row += int(b.rows.size());
  }
}

std::vector<BatchCheck> ReferenceCase::check(Linear& linear) const {
  std::vector<BatchCheck> checks;
  for (const Batch& b : batches_) {
    BatchCheck check;
    check.batch = b.batch;
    check.tolerance = output_tolerance(spec_.dtype);
    const DeviceBuffer x = DeviceBuffer::from(context_.cu(), b.x.bits, "the gate's input");
    const DeviceBuffer y(context_.cu(), size_t(b.batch) * spec_.out_features * 2, "the gate's output");
    std::vector<uint16_t> y_bits(size_t(b.batch) * spec_.out_features);
    try {
      y.poison();
      linear.forward(x.get(), y.get(), b.batch, nullptr);
      y.download(y_bits.data(), y_bits.size() * 2);
    } catch (const Error& error) {
      check_context_alive(error);
      throw;
    }
    const std::vector<double> values = to_doubles(y_bits, spec_.dtype);
    check.not_finite = size_t(std::count_if(values.begin(), values.end(), [](double v) { return !std::isfinite(v); }));
    std::vector<double> checked;
    for (int r : b.rows) {
      checked.insert(checked.end(), values.begin() + size_t(r) * spec_.out_features,
                     values.begin() + size_t(r + 1) * spec_.out_features);
    }
    check.error = relative_l2_error(checked, b.reference);
    checks.push_back(check);
  }
  return checks;
}

ReferenceGate::ReferenceGate(Context& context, const LinearSpec& spec, int batch_bucket, uint64_t seed)
    : context_(context),
      spec_(spec),
      batch_bucket_(batch_bucket),
      case_(context, spec, batch_bucket > 1 ? std::vector<int>{batch_bucket, batch_bucket / 2 + 1} : std::vector<int>{1},
            seed) {}

GateResult ReferenceGate::check(const Variant& variant) {
  GateResult result;
  try {
    LinearOptions options;
    options.max_batch = batch_bucket_;
    options.lazy_buckets = true;
    options.variants[batch_bucket_] = variant;
    Linear linear(context_, spec_, case_.weights(), options);
    for (const BatchCheck& check : case_.check(linear)) {
      result.worst_error = std::max(result.worst_error, check.error);
      if (check.passed()) continue;
      result.status = MeasurementStatus::wrong_result;
      result.reason = check.not_finite > 0
                          ? fmt::format("{} outputs of batch {} are not finite", check.not_finite, check.batch)
                          : fmt::format("batch {}: relative L2 error {:.3g} against the fp64 reference (FORMAT.md "
                                        "section 8 allows {:.0e})",
                                        check.batch, check.error, check.tolerance);
    }
  } catch (const ContextLost&) {
    throw;
  } catch (const Error& error) {
    result.status = MeasurementStatus::launch_failed;
    result.reason = error.what();
  }
  return result;
}

}  // namespace glqjit
