// BENCHMARK.md's protocol on the GPU, shared by glq-bench and the tuner: cold weights (enough
// copies of the layer that their weights exceed six times the L2), rounds over all copies
// captured in one CUDA graph, a warm-up replay, then timed replays under CUDA events.
#pragma once

#include <functional>
#include <memory>
#include <span>
#include <vector>

#include "codegen/spec.hpp"
#include "format/layer.hpp"
#include "runtime/context.hpp"
#include "runtime/device_objects.hpp"
#include "runtime/linear.hpp"
#include "runtime/linear_group.hpp"
#include "tuner/device_layer.hpp"
#include "tuner/timer.hpp"

namespace glqjit {

struct GraphTiming {
  double median_us = 0;             // per call
  std::vector<double> per_call_us;  // one per timed replay
};

// `enqueue` puts `calls` calls on `stream`; captured once, replayed once to warm up, then
// `replays` times.
GraphTiming time_graph(CUcontext context, CUstream stream, int calls, int replays, const std::function<void()>& enqueue);

inline constexpr double kColdL2Multiple = 6;  // BENCHMARK.md: the copies exceed six times the L2

// How many copies of `bytes_per_copy` exceed kColdL2Multiple times an L2 of `l2_bytes` (at
// least two).
int cold_copies(double bytes_per_copy, int64_t l2_bytes);

struct LayerTimerOptions {
  int rounds = 20;  // rounds over all copies in one replay (BENCHMARK.md: 20)
  int replays = 5;
};

// Times one linear, or a group of linears that read the same input (LinearSpec::
// shard_out_features) as the LinearGroup a serving stack would run.
class LayerTimer final : public Timer {
 public:
  // Uploads cold_copies of `layers` (one per linear of `spec`, in its order: a group's shards, or
  // the one layer of a single linear) with inputs of `max_batch` random rows each.
  LayerTimer(Context& context, const LinearSpec& spec, std::span<const QuantizedLayer> layers, int max_batch,
             const LayerTimerOptions& options);
  LayerTimer(Context& context, const LinearSpec& spec, const QuantizedLayer& layer, int max_batch,
             const LayerTimerOptions& options)
      : LayerTimer(context, spec, std::span(&layer, 1), max_batch, options) {}
  ~LayerTimer() override;

  int copies() const { return int(copies_.size()); }
  double weight_bytes() const { return weight_bytes_; }  // of one copy: stages, SU and SV of every linear
  CUstream stream() const { return stream_.get(); }

  // A Linear, or for a group spec a LinearGroup, on every copy with these options (replacing the
  // ones before).
  void plan(const LinearOptions& options);
  // The first copy's Linear that runs `batch` as one forward of its own: a single linear's, or a
  // group's one kernel (LinearGroup::one_kernel); null where the group runs that batch one linear
  // at a time.
  const Linear* first_linear(int batch) const;
  const DeviceBuffer& first_output() const { return copies_.front().y; }
  // One forward of every copy outside capture (a lazy bucket is made ready here); seconds taken.
  double eager_forwards(int batch);
  // The protocol over the planned linears (eager_forwards first).
  GraphTiming time(int batch);

  // Plans the variant at bucket_for(batch) and times it; for a group the variant is its one
  // kernel's (which must then serve that bucket).
  std::vector<double> time_us(const Variant& variant, int batch) override;

 private:
  struct LayerCopy {
    std::vector<UploadedLayer> layers;  // one per linear
    DeviceBuffer x, y;
    // Last: destroyed before the memory they point at. `group` for a group spec, else `linear`.
    std::unique_ptr<Linear> linear;
    std::unique_ptr<LinearGroup> group;

    void forward(int batch, CUstream stream);
  };
  Context& context_;
  LinearSpec spec_;
  std::vector<LinearSpec> shards_;  // a group's linears alone (spec_.shard(k))
  int max_batch_;
  LayerTimerOptions options_;
  Stream stream_;
  double weight_bytes_ = 0;
  std::vector<LayerCopy> copies_;
};

}  // namespace glqjit
