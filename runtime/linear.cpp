#include "runtime/linear.hpp"

#include <fmt/format.h>

#include <limits>

#include "codegen/source.hpp"
#include "codegen/variant_space.hpp"
#include "glqjit/error.hpp"
#include "runtime/driver.hpp"
#include "runtime/kernel_binary.hpp"
#include "support/log.hpp"

namespace glqjit {

struct Linear::Bucket {
  int bucket = 1;
  Variant variant;
  bool tuned = false;
  LaunchPlan plan;
  std::shared_ptr<LoadedModule> module;  // shared with the context's other users of its key
  CUfunction input_chunks = nullptr, input_strided = nullptr, matmul = nullptr;
  CUfunction output_chunks = nullptr, output_strided = nullptr, repack_e81b = nullptr;
  bool ready = false;
};

namespace {

Variant choose_variant(Context& context, const LinearSpec& spec, int bucket, const LinearOptions& options,
                       bool& tuned) {
  const Arch& arch = context.device().arch;
  tuned = false;
  if (auto forced = options.variants.find(bucket); forced != options.variants.end()) {
    check_variant(spec, bucket, arch, forced->second);
    return forced->second;
  }
  if (Store* store = context.store()) {
    if (auto record = store->find_tuning(context.device().signature(), spec.canonical(), bucket)) {
      try {
        const Variant variant = parse_variant(record->variant);
        check_variant(spec, bucket, arch, variant);
        tuned = true;
        return variant;
      } catch (const Error& error) {
        log_line(LogLevel::warn, fmt::format("ignoring the tuning record for {} bucket {}: {}; using the default "
                                             "variant (run glq-tune again)",
                                             spec.canonical(), bucket, error.what()));
      }
    }
  }
  return default_variant(spec, bucket, arch, context.device().sm_count);
}

void check_device_pointer(CUdeviceptr pointer, const char* name) {
  if (pointer == 0) {
    throw Error(Status::invalid_argument, fmt::format("weight tensor {} is a null pointer; pass the device address "
                                                      "of the checkpoint tensor",
                                                      name));
  }
  if (pointer % 16 != 0) {
    throw Error(Status::invalid_argument,
                fmt::format("weight tensor {} at 0x{:x} is not 16-byte aligned; allocate it with cudaMalloc or a "
                            "framework allocator",
                            name, pointer));
  }
}

void launch(KernelCall& call, CUstream stream) {
  auto params = call.params();
  CUlaunchAttribute overlap{};
  overlap.id = CU_LAUNCH_ATTRIBUTE_PROGRAMMATIC_STREAM_SERIALIZATION;
  overlap.value.programmaticStreamSerializationAllowed = 1;
  CUlaunchConfig config{};
  call.describe_shape(config);
  config.hStream = stream;
  config.attrs = call.overlaps_previous ? &overlap : nullptr;
  config.numAttrs = call.overlaps_previous ? 1 : 0;
  check_cuda(driver().cuLaunchKernelEx(&config, call.function, params.data(), nullptr), "launching a forward kernel");
}

}  // namespace

Linear::Linear(Context& context, const LinearSpec& spec, const DeviceWeights& weights, const LinearOptions& options)
    : Linear(context, spec, std::vector<DeviceWeights>{weights}, options) {}

Linear::Linear(Context& context, const LinearSpec& spec, const std::vector<DeviceWeights>& shard_weights,
               const LinearOptions& options)
    : context_(context), spec_(spec), options_(options), user_weights_(shard_weights) {
  spec.geometry();  // a group's sums checked
  const Recipe recipe = spec.recipe();
  if (options.max_batch < 1 || options.max_batch > kMaxBatch) {
    throw Error(Status::invalid_argument,
                fmt::format("max_batch {} is out of range: it must be from 1 to {}", options.max_batch, kMaxBatch));
  }
  if (shard_weights.size() != size_t(spec.shard_count())) {
    throw Error(Status::invalid_argument, fmt::format("{} sets of weights for {} linears", shard_weights.size(),
                                                      spec.shard_count()));
  }
  for (size_t k = 0; k < shard_weights.size(); ++k) {
    const DeviceWeights& weights = shard_weights[k];
    const std::string of = spec.is_group() ? fmt::format(" of linear {} of the group", k) : "";
    for (size_t s = 0; s < recipe.stages.size(); ++s) {
      check_device_pointer(weights.stages[s], fmt::format("stages[{}]{}", s, of).c_str());
    }
    check_device_pointer(weights.su, ("SU" + of).c_str());
    check_device_pointer(weights.sv, ("SV" + of).c_str());
    if (spec.has_bias && weights.bias == 0) {
      throw Error(Status::invalid_argument, fmt::format("the layer{} has a bias but its pointer is null", of));
    }
    KernelWeights& kernel = kernel_weights_[k];
    kernel.su = weights.su;
    kernel.sv = weights.sv;
    kernel.bias = spec.has_bias ? weights.bias : 0;
    kernel.wscale = weights.wscale;
    for (size_t s = 0; s < 3; ++s) kernel.inv_resid_scale[s] = weights.inv_resid_scale[s];
    for (size_t s = 0; s < 4; ++s) kernel.stage[s] = s < recipe.stages.size() ? weights.stages[s] : 0;
  }

  for (int bucket = 1;; bucket *= 2) {
    auto b = std::make_unique<Bucket>();
    b->bucket = bucket;
    b->variant = choose_variant(context, spec, bucket, options, b->tuned);
    b->plan = make_launch_plan(spec, b->variant, bucket);
    workspace_bytes_ = std::max(workspace_bytes_, b->plan.workspace_bytes(std::min(bucket, options.max_batch)));
    buckets_.push_back(std::move(b));
    if (bucket >= options.max_batch) break;
  }

  ScopedContext scope(context.cu());
  try {
    check_cuda(allocate_device_memory(&workspace_, workspace_bytes_), fmt::format("allocating {} bytes of workspace", workspace_bytes_));
    // Family 1's arrival counters start at zero (repack_e81b_stages waits for the memset).
    check_cuda(driver().cuMemsetD8(workspace_, 0, kArrivalBytes), "clearing the workspace's arrival counters");
    std::vector<Bucket*> eager;
    for (auto& b : buckets_) {
      if (!options.lazy_buckets || eager.empty()) eager.push_back(b.get());
    }
    prepare(eager);
    repack_e81b_stages(*eager.front());
  } catch (...) {
    release();
    throw;
  }
}

Linear::~Linear() {
  try {
    ScopedContext scope(context_.cu());
    release();
  } catch (const Error&) {
    // The context is gone (driver shutdown); its memory and modules went with it.
  }
}

void Linear::release() {
  const Driver& d = driver();
  for (auto& bucket : buckets_) bucket->module.reset();
  for (CUdeviceptr buffer : owned_buffers_) d.cuMemFree(buffer);
  owned_buffers_.clear();
  if (workspace_ != 0) d.cuMemFree(workspace_);
  workspace_ = 0;
}

void Linear::prepare(const std::vector<Bucket*>& buckets) {
  // Modules this context already holds (other linears of the same kernel set) are shared; only
  // the rest go to the store or NVRTC.
  std::vector<GeneratedKernel> generated;
  std::vector<Bucket*> missing;
  for (Bucket* bucket : buckets) {
    GeneratedKernel kernel = generate_kernel(spec_, bucket->variant, bucket->bucket, context_.device().arch);
    bucket->module = context_.modules().find(make_kernel_key(kernel).digest());
    if (bucket->module == nullptr) {
      generated.push_back(std::move(kernel));
      missing.push_back(bucket);
    }
  }
  if (!missing.empty()) {
    ObtainOptions obtain;
    obtain.no_jit = context_.no_jit();
    const std::vector<KernelBinary> binaries = obtain_kernels(context_.store(), std::move(generated), obtain);
    for (size_t i = 0; i < missing.size(); ++i) {
      missing[i]->module = context_.modules().load(binaries[i].key.digest(), binaries[i].compiled.cubin,
                                                   fmt::format("batch bucket {}", missing[i]->bucket));
    }
  }
  const Driver& d = driver();
  for (Bucket* bucket : buckets) {
    auto function = [&](const KernelLaunch& launch) {
      CUfunction f = nullptr;
      if (launch.name.empty()) return f;
      check_cuda(d.cuModuleGetFunction(&f, bucket->module->get(), launch.name.c_str()), "cuModuleGetFunction " + launch.name);
      if (launch.dynamic_shared_bytes > 48 * 1024) {
        check_cuda(d.cuFuncSetAttribute(f, CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, int(launch.dynamic_shared_bytes)),
                   "allowing " + std::to_string(launch.dynamic_shared_bytes) + " bytes of shared memory for " + launch.name);
      }
      return f;
    };
    bucket->input_chunks = function(bucket->plan.input_chunks);
    bucket->input_strided = function(bucket->plan.input_strided);
    bucket->matmul = function(bucket->plan.matmul);
    bucket->output_chunks = function(bucket->plan.output_chunks);
    bucket->output_strided = function(bucket->plan.output_strided);
    bucket->repack_e81b = function(bucket->plan.repack_e81b);
    bucket->ready = true;
  }
}

void Linear::repack_e81b_stages(const Bucket& bucket) {
  const Recipe recipe = spec_.recipe();
  const Driver& d = driver();
  for (int k = 0; k < spec_.shard_count(); ++k) {
    int row_tiles = int(spec_.shard(k).geometry().m_pad / 16);
    for (size_t s = 0; s < recipe.stages.size(); ++s) {
      if (recipe.stages[s] != StageKind::e81b) continue;
      const size_t bytes = size_t(row_tiles) * bucket.plan.k_tiles * 32 * 4;
      CUdeviceptr tiled = 0;
      check_cuda(allocate_device_memory(&tiled, bytes), fmt::format("allocating {} bytes for the repacked E81B stage", bytes));
      owned_buffers_.push_back(tiled);
      CUdeviceptr packed = user_weights_[k].stages[s];
      void* params[] = {&packed, &tiled, &row_tiles};
      check_cuda(d.cuLaunchKernel(bucket.repack_e81b, bucket.plan.repack_grid(row_tiles).x, 1, 1,
                                  bucket.plan.repack_e81b.threads, 1, 1, 0, /*legacy stream*/ nullptr, params, nullptr),
                 "launching the E81B repack");
      kernel_weights_[k].stage[s] = tiled;
    }
  }
  check_cuda(d.cuStreamSynchronize(nullptr), "waiting for the E81B repack");
}

void Linear::check_forward_arguments(CUdeviceptr x, CUdeviceptr y, int batch, int64_t y_row_stride) const {
  if (batch < 1 || batch > options_.max_batch) {
    throw Error(Status::invalid_argument,
                fmt::format("batch {} is outside 1..{} (the max_batch this linear was created with); create it with a "
                            "larger max_batch",
                            batch, options_.max_batch));
  }
  if (x == 0 || y == 0) throw Error(Status::invalid_argument, "x and y must be device pointers, not null");
  const int y_alignment = y_row_stride == 0 ? 16 : 2;  // a column of a wider y: element-aligned
  if (x % 16 != 0 || y % y_alignment != 0) {
    throw Error(Status::invalid_argument,
                fmt::format("x (0x{:x}) must be 16-byte aligned and y (0x{:x}) {}-byte aligned", x, y, y_alignment));
  }
  if (y_row_stride != 0 && (y_row_stride < spec_.out_features || y_row_stride > std::numeric_limits<int>::max())) {
    throw Error(Status::invalid_argument, fmt::format("y's row stride {} is not between out_features ({}) and 2^31 - 1",
                                                      y_row_stride, spec_.out_features));
  }
}

Linear::Bucket& Linear::ready_bucket(int batch, CUstream stream) {
  const int wanted = bucket_for(batch);
  for (auto& bucket : buckets_) {
    if (bucket->bucket != wanted) continue;
    if (bucket->ready) return *bucket;
    CUstreamCaptureStatus capture = CU_STREAM_CAPTURE_STATUS_NONE;
    check_cuda(driver().cuStreamGetCaptureInfo(stream, &capture, nullptr, nullptr, nullptr, nullptr, nullptr),
               "cuStreamGetCaptureInfo");
    if (capture != CU_STREAM_CAPTURE_STATUS_NONE) {
      throw Error(Status::capture_in_progress,
                  fmt::format("forward with batch {} needs the kernels of batch bucket {}, which are not compiled yet "
                              "(lazy buckets), and compiling is not allowed during stream capture; run one forward "
                              "with this batch size before capturing, or create the linear without lazy buckets",
                              batch, wanted));
    }
    std::lock_guard lock(prepare_mutex_);
    if (!bucket->ready) prepare({bucket.get()});
    return *bucket;
  }
  throw Error(Status::internal, fmt::format("no batch bucket {} planned", wanted));
}

ForwardCalls Linear::forward_calls(CUdeviceptr x, CUdeviceptr y, int batch, CUstream stream, int64_t y_row_stride) {
  check_forward_arguments(x, y, batch, y_row_stride);
  const Bucket& bucket = ready_bucket(batch, stream);
  const LaunchPlan& plan = bucket.plan;
  const uint64_t rows = uint64_t(batch);
  const uint64_t y_stride = uint64_t(y_row_stride != 0 ? y_row_stride : spec_.out_features);
  const bool has_pdl = context_.device().arch.major >= 9;
  ForwardCalls forward;
  auto add = [&](CUfunction function, Dim3 grid, const KernelLaunch& launch, bool takes_weights,
                 std::initializer_list<uint64_t> args) -> KernelCall& {
    KernelCall& call = forward.calls[forward.count++];
    call.function = function;
    call.grid = grid;
    call.threads = launch.threads;
    call.shared_bytes = launch.dynamic_shared_bytes;
    call.takes_weights = takes_weights;
    call.weights = kernel_weights_;  // glq_fused reads a group's every linear; the others the first
    for (uint64_t arg : args) call.args[call.arg_count++] = arg;
    return call;
  };
  if (plan.fused) {
    // One kernel, which waits for the work before it on the stream only once its codebooks are
    // in shared memory and its first weights asked for (templates/matmul_fused.cuh).
    KernelCall& call = add(bucket.matmul, plan.matmul_grid(batch), plan.matmul, true, {x, y, workspace_, rows, y_stride});
    call.reads_x = call.writes_y = true;
    call.y_arg = 1;
    call.overlaps_previous = has_pdl;
    return forward;
  }
  const CUdeviceptr u = workspace_ + plan.arrival_bytes();
  const CUdeviceptr input_staged = u + plan.activation_bytes(batch);
  const CUdeviceptr partial = input_staged + plan.input_staged_bytes(batch);
  const CUdeviceptr output_staged = partial + plan.partial_bytes(batch);
  add(bucket.input_chunks, plan.input_chunks_grid(batch), plan.input_chunks, true, {x, u, input_staged}).reads_x = true;
  if (bucket.input_strided) add(bucket.input_strided, plan.input_strided_grid(batch), plan.input_strided, false, {input_staged, u});
  add(bucket.matmul, plan.matmul_grid(batch), plan.matmul, true, {u, partial, rows});
  KernelCall& chunks = add(bucket.output_chunks, plan.output_chunks_grid(batch), plan.output_chunks, true,
                           {partial, y, output_staged, rows, y_stride});
  if (bucket.output_strided) {
    KernelCall& strided =
        add(bucket.output_strided, plan.output_strided_grid(batch), plan.output_strided, true, {output_staged, y, y_stride});
    strided.writes_y = true;
    strided.y_arg = 1;
  } else {
    chunks.writes_y = true;
    chunks.y_arg = 1;
  }
  // The first call waits for whatever ran before on the stream; with kernel family 2 the rest
  // may overlap the call before them where the GPU has programmatic dependent launch. Measured
  // on an H100 (docs/kernel-notes.md v7): 1.2-1.6 us less per forward at 4096x4096 batch 1, up
  // to 1 us at 8192x28672, but family 3 at batch 256 3-10 % slower, so family 3 launches plainly.
  if (has_pdl && bucket.variant.family == 2) {
    for (int k = 1; k < forward.count; ++k) forward.calls[k].overlaps_previous = true;
  }
  return forward;
}

void Linear::forward(CUdeviceptr x, CUdeviceptr y, int batch, CUstream stream, int64_t y_row_stride) {
  ScopedContext scope(context_.cu());
  ForwardCalls forward = forward_calls(x, y, batch, stream, y_row_stride);
  for (int k = 0; k < forward.count; ++k) launch(forward.calls[k], stream);
}

std::vector<Linear::BucketInfo> Linear::buckets() const {
  std::vector<BucketInfo> info;
  for (const auto& bucket : buckets_) info.push_back({bucket->bucket, bucket->variant, bucket->tuned, bucket->ready});
  return info;
}

}  // namespace glqjit
