#include "tuner/gpu_timer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <cmath>

#include "glqjit/error.hpp"
#include "runtime/driver.hpp"
#include "tuner/measurement.hpp"

namespace glqjit {
namespace {

constexpr int kMinCopies = 2;

}  // namespace

GraphTiming time_graph(CUcontext context, CUstream stream, int calls, int replays,
                       const std::function<void()>& enqueue) {
  const CapturedGraph graph(context, stream, enqueue);
  graph.launch(stream);
  {
    ScopedContext scope(context);
    check_cuda(driver().cuStreamSynchronize(stream), "waiting for the warm-up replay");
  }
  EventTimer timer(context);
  GraphTiming timing;
  for (int r = 0; r < replays; ++r) {
    timer.start(stream);
    graph.launch(stream);
    timing.per_call_us.push_back(timer.stop_ms(stream) * 1000.0 / calls);
  }
  Measurement summary;
  summary.samples_us = timing.per_call_us;
  summarize_samples(summary);
  timing.median_us = summary.median_us;
  return timing;
}

int cold_copies(double bytes_per_copy, int64_t l2_bytes) {
  return std::max(kMinCopies, int(std::floor(kColdL2Multiple * double(l2_bytes) / bytes_per_copy)) + 1);
}

LayerTimer::LayerTimer(Context& context, const LinearSpec& spec, std::span<const QuantizedLayer> layers, int max_batch,
                       const LayerTimerOptions& options)
    : context_(context), spec_(spec), max_batch_(max_batch), options_(options), stream_(context.cu(), CU_STREAM_DEFAULT) {
  if (int(layers.size()) != spec.shard_count()) {
    throw Error(Status::invalid_argument, fmt::format("{} layers to time for {}, which has {} linear(s)", layers.size(),
                                                      spec.canonical(), spec.shard_count()));
  }
  if (spec.is_group()) {
    for (int k = 0; k < spec.shard_count(); ++k) shards_.push_back(spec.shard(k));
  }
  for (const QuantizedLayer& layer : layers) {
    for (const auto& stage : layer.stages) weight_bytes_ += double(stage.size() * sizeof(uint64_t));
    weight_bytes_ += double((layer.su.size() + layer.sv.size()) * sizeof(uint16_t));
  }
  std::mt19937_64 rng(uint64_t(spec.in_features) * 1000003 + uint64_t(spec.out_features));
  const Activations x = random_activations(max_batch, spec.in_features, spec.dtype, rng);
  const int count = cold_copies(weight_bytes_, context.device().l2_bytes);
  for (int c = 0; c < count; ++c) {
    LayerCopy copy;
    for (const QuantizedLayer& layer : layers) copy.layers.push_back(upload_layer(context.cu(), layer, spec.dtype));
    copy.x = DeviceBuffer::from(context.cu(), x.bits, "an input batch");
    copy.y = DeviceBuffer(context.cu(), size_t(max_batch) * spec.out_features * 2, "an output batch");
    copies_.push_back(std::move(copy));
  }
}

LayerTimer::~LayerTimer() {
  for (LayerCopy& copy : copies_) {
    copy.linear.reset();
    copy.group.reset();
  }
}

void LayerTimer::LayerCopy::forward(int batch, CUstream stream) {
  if (group) {
    group->forward(x.get(), y.get(), batch, stream);
  } else {
    linear->forward(x.get(), y.get(), batch, stream);
  }
}

void LayerTimer::plan(const LinearOptions& options) {
  for (LayerCopy& copy : copies_) {
    copy.linear.reset();
    copy.group.reset();
    if (spec_.is_group()) {
      std::vector<DeviceWeights> weights;
      for (const UploadedLayer& layer : copy.layers) weights.push_back(layer.weights);
      copy.group = std::make_unique<LinearGroup>(context_, shards_, weights, options);
    } else {
      copy.linear = std::make_unique<Linear>(context_, spec_, copy.layers.front().weights, options);
    }
  }
}

const Linear* LayerTimer::first_linear(int batch) const {
  const LayerCopy& first = copies_.front();
  if (!first.group) return first.linear.get();
  return batch <= first.group->one_kernel_max_batch() ? first.group->one_kernel() : nullptr;
}

double LayerTimer::eager_forwards(int batch) {
  const auto start = std::chrono::steady_clock::now();
  for (LayerCopy& copy : copies_) copy.forward(batch, stream_.get());
  stream_.synchronize(fmt::format("the eager forwards of {} at batch {}", spec_.canonical(), batch));
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

GraphTiming LayerTimer::time(int batch) {
  eager_forwards(batch);
  return time_graph(context_.cu(), stream_.get(), options_.rounds * copies(), options_.replays, [&] {
    for (int r = 0; r < options_.rounds; ++r) {
      for (LayerCopy& copy : copies_) copy.forward(batch, stream_.get());
    }
  });
}

std::vector<double> LayerTimer::time_us(const Variant& variant, int batch) {
  LinearOptions options;
  options.max_batch = batch;
  options.lazy_buckets = true;
  options.variants[bucket_for(batch)] = variant;
  plan(options);
  return time(batch).per_call_us;
}

}  // namespace glqjit
