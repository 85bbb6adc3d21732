// One quantized linear layer on one device: planned once (kernels compiled or loaded, workspace
// allocated, E81B stages repacked), then forward only launches, so it may be captured in a graph.
#pragma once

#include <cuda.h>

#include <array>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "codegen/launch.hpp"
#include "codegen/spec.hpp"
#include "codegen/variant.hpp"
#include "runtime/context.hpp"

namespace glqjit {

// Device pointers to the checkpoint tensors of FORMAT.md section 7.
struct DeviceWeights {
  std::array<CUdeviceptr, 4> stages{};
  CUdeviceptr su = 0, sv = 0, bias = 0;
  float wscale = 1.0f;
  std::array<float, 3> inv_resid_scale{};
};

struct LinearOptions {
  int max_batch = 1;
  bool lazy_buckets = false;  // compile a batch bucket's kernels at its first forward, not at plan
  bool allow_nondeterministic = false;  // accepted; every variant is deterministic today
  // Batch bucket -> the variant to run there, over tuning records and the default (the GPU
  // suite and glq-bench --variant use it); an illegal one fails the plan with the reason.
  std::map<int, Variant> variants;
};

// Mirrors glq::Weights in templates/prelude.cuh: passed by value to every kernel.
struct KernelWeights {
  CUdeviceptr stage[4];
  CUdeviceptr su, sv, bias;
  float wscale;
  float inv_resid_scale[3];
};
static_assert(sizeof(KernelWeights) == 72, "KernelWeights must match glq::Weights");

// One kernel launch of a forward, with its parameter values (kept here so that graph nodes
// can be added and updated from it): the weights first where the kernel takes them (glq_fused
// takes those of every linear of a group, one after another), then pointers and the batch, each
// in a 64-bit slot (an int parameter reads the low half).
struct KernelCall {
  CUfunction function = nullptr;
  Dim3 grid;
  unsigned threads = 0;
  unsigned shared_bytes = 0;
  bool takes_weights = true;
  std::array<KernelWeights, kMaxGroupShards> weights{};
  std::array<uint64_t, 5> args{};
  int arg_count = 0;
  bool reads_x = false;   // args[0] is the forward's x
  bool writes_y = false;  // args[y_arg] is the forward's y
  int y_arg = 0;
  // Launched as a programmatic dependent of the call before it (sm_90+): it may start while
  // that one runs, and waits for it in the kernel (templates/prelude.cuh).
  bool overlaps_previous = false;

  // Where each kernel parameter's value is, as cuLaunchKernelEx and graph nodes take them.
  using Params = std::array<void*, 6>;
  Params params() {
    Params p{};
    int n = 0;
    if (takes_weights) p[n++] = weights.data();
    for (int i = 0; i < arg_count; ++i) p[n++] = &args[i];
    return p;
  }

  // Grid, block and shared memory into a driver launch description (CUlaunchConfig for a
  // launch, CUDA_KERNEL_NODE_PARAMS for a graph node: the fields share their names).
  template <class Launch>
  void describe_shape(Launch& launch) const {
    launch.gridDimX = grid.x;
    launch.gridDimY = grid.y;
    launch.gridDimZ = grid.z;
    launch.blockDimX = threads;
    launch.blockDimY = 1;
    launch.blockDimZ = 1;
    launch.sharedMemBytes = shared_bytes;
  }
};

// The launches of one forward, in order (three to five kernels).
struct ForwardCalls {
  std::array<KernelCall, 5> calls;
  int count = 0;
};

class Linear {
 public:
  // Throws Error naming the problem: unsupported spec, bad max batch, null weight pointers,
  // compile failures (with NVRTC's log), no JIT with a cold store, CUDA errors.
  Linear(Context& context, const LinearSpec& spec, const DeviceWeights& weights, const LinearOptions& options);
  // A group of linears that read the same input (spec.shard_out_features), one kernel per
  // forward (kernel family 1 at every batch bucket up to max_batch, else Error), writing their
  // outputs side by side: the tensors of each, in the spec's order. runtime/linear_group.hpp
  // serves any batch.
  Linear(Context& context, const LinearSpec& spec, const std::vector<DeviceWeights>& shard_weights,
         const LinearOptions& options);
  ~Linear();
  Linear(const Linear&) = delete;
  Linear& operator=(const Linear&) = delete;

  const LinearSpec& spec() const { return spec_; }
  int max_batch() const { return options_.max_batch; }
  Context& context() const { return context_; }

  // y = layer(x) on `stream`: x is [batch, in_features], y is [batch, out_features] (a group's
  // outputs side by side), both in the activation dtype, 16-byte aligned. With y_row_stride
  // (elements, at least out_features) y is instead the first column of a wider output whose rows
  // lie that far apart, as a LinearGroup writes its linears' columns: then y needs only element
  // alignment, since every kernel stores y one element at a time. No allocation,
  // synchronization or compilation, except a lazy bucket's first use, which fails with
  // Error(capture_in_progress) inside stream capture. Forwards of one linear must not overlap in
  // time (they share a workspace).
  void forward(CUdeviceptr x, CUdeviceptr y, int batch, CUstream stream, int64_t y_row_stride = 0);

  // The launches forward would make, for graph building (ensures the bucket is ready).
  ForwardCalls forward_calls(CUdeviceptr x, CUdeviceptr y, int batch, CUstream stream, int64_t y_row_stride = 0);

  // The variant each batch bucket runs, and whether it came from a tuning record.
  struct BucketInfo {
    int bucket;
    Variant variant;
    bool tuned;
    bool ready;
  };
  std::vector<BucketInfo> buckets() const;

 private:
  struct Bucket;
  void check_forward_arguments(CUdeviceptr x, CUdeviceptr y, int batch, int64_t y_row_stride) const;
  void prepare(const std::vector<Bucket*>& buckets);
  Bucket& ready_bucket(int batch, CUstream stream);
  void repack_e81b_stages(const Bucket& bucket);  // of every linear of a group
  void release();  // frees what the plan made; the context must be current

  Context& context_;
  LinearSpec spec_;
  LinearOptions options_;
  std::vector<DeviceWeights> user_weights_;  // one per linear of a group
  std::array<KernelWeights, kMaxGroupShards> kernel_weights_{};
  std::vector<std::unique_ptr<Bucket>> buckets_;
  std::vector<CUdeviceptr> owned_buffers_;  // repacked E81B stages
  CUdeviceptr workspace_ = 0;
  size_t workspace_bytes_ = 0;
  std::mutex prepare_mutex_;
};

}  // namespace glqjit
