// glq-bench: times glqjit's whole linear layers against cuBLAS fp16, cuBLASLt FP8 and the memory
// roofline under the protocol of BENCHMARK.md: cold weights (copies over six times the L2), 20 rounds
// over all copies captured in one CUDA graph, a warm-up replay, the median of 5 timed replays. With
// --model, the shapes are a model's linears and the groups of them that read the same input (q+k+v,
// gate+up: one glqjit::LinearGroup each), and decoder-layer rows sum one layer's seven linears, once
// launched separately and once grouped. With --model and --plan-time it times no kernels but how long
// planning every linear of the model takes (tools/bench_plan_time.hpp).
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "codegen/nvrtc.hpp"
#include "codegen/spec.hpp"
#include "codegen/variant.hpp"
#include "codegen/variant_space.hpp"
#include "format/geometry.hpp"
#include "format/layer.hpp"
#include "runtime/context.hpp"
#include "runtime/driver.hpp"
#include "runtime/linear.hpp"
#include "runtime/linear_group.hpp"
#include "tools/bench_card.hpp"
#include "tools/bench_cublas.hpp"
#include "tools/bench_cublaslt.hpp"
#include "tools/bench_median.hpp"
#include "tools/bench_nvml.hpp"
#include "tools/bench_plan_time.hpp"
#include "tools/fp8_e4m3.hpp"
#include "tools/tool_main.hpp"
#include "tuner/gpu_timer.hpp"
#include "tuner/input_groups.hpp"
#include "tuner/model_config.hpp"

namespace glqjit {
namespace {

using Json = nlohmann::ordered_json;

constexpr size_t kProbeBytes = size_t(1) << 30;  // the streaming-read probe reads 1 GiB
constexpr int kProbeWarmups = 2;
constexpr int kProbeRuns = 10;
constexpr size_t kFiniteCheckValues = size_t(4) << 20;  // outputs checked for NaN/Inf after the eager run
const double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---------------------------------------------------------------------------------------------
// Command line

// The shapes of BENCHMARK.md's reference table (those with published numbers to compare to).
const std::vector<Shape> kDefaultShapes = {{4096, 4096}, {6144, 4096},  {28672, 4096}, {4096, 14336},
                                           {8192, 8192}, {8192, 28672}, {57344, 8192}, {2048, 2048}};

// BENCHMARK.md's whole shape set: every projection of the three models, then the merged shapes.
const std::vector<Shape> kBenchmarkShapes = {
    {4096, 4096}, {1024, 4096},  {14336, 4096}, {4096, 14336},  // Llama-3-8B q/o, k/v, gate/up, down
    {8192, 8192}, {1024, 8192},  {28672, 8192}, {8192, 28672},  // Llama-3-70B
    {2048, 2048}, {512, 2048},   {11008, 2048}, {2048, 11008},  // SmolLM3-3B
    {6144, 4096}, {28672, 4096}, {57344, 8192}};                // merged qkv, gate_up (8B), gate_up (70B)

struct Options {
  std::string model;  // a config.json whose linears are the shapes
  std::vector<std::string> shapes;
  std::string shape_set = "default";
  std::vector<int> bpw = {2, 3, 4};
  std::vector<int> batches = {1};
  int device = 0;
  std::string cache, json, csv;
  bool no_cublas = false;
  bool no_fp8 = false;
  int rounds = 20;
  int replays = 5;
  std::string variant;  // parts over each bucket's default variant
  bool plan_time = false;  // plan the whole --model instead of timing kernels (tools/bench_plan_time.hpp)
};

template <class T>
std::vector<T> unique_in_order(const std::vector<T>& values) {
  std::vector<T> unique;
  for (const T& value : values) {
    if (std::find(unique.begin(), unique.end(), value) == unique.end()) unique.push_back(value);
  }
  return unique;
}

// "6144x4096 (grouped: q_proj+k_proj+v_proj)", "4096x4096 (q_proj+o_proj)", "4096x4096"
std::string shape_label(const Shape& shape, const std::string& linears, bool grouped) {
  if (linears.empty()) return shape.name();
  return fmt::format("{} ({}{})", shape.name(), grouped ? "grouped: " : "", linears);
}

// One shape to measure and the bpws to measure it at; with --model, the model's linears of that
// shape ("q_proj", "o_proj"), or of a group.
struct ShapeWork {
  Shape shape;
  std::vector<int> bpws;
  std::vector<std::string> linears;
  // With --model, a group of linears that read the same input (`linears`, in layer order): their
  // shapes, timed as one LinearGroup with outputs side by side; `shape` is the merged one (the out
  // features summed), the dense GEMM a serving stack runs for them. Empty for one linear's shape.
  std::vector<Shape> group;

  bool grouped() const { return !group.empty(); }

  std::string linear_names() const {
    std::string names;
    for (const std::string& name : linears) names += (names.empty() ? "" : "+") + name;
    return names;
  }
  std::string label() const { return shape_label(shape, linear_names(), grouped()); }
};

// One part of a decoder layer as it is timed: a linear alone, or a group's linears; a group's
// shape is the merged one.
Shape part_shape(const std::vector<ModelLinear>& part) {
  Shape shape{0, part.front().in_features};
  for (const ModelLinear& linear : part) shape.out += linear.out_features;
  return shape;
}

// "q+k+v", "o": the part's roles without their "_proj".
std::string part_name(const std::vector<ModelLinear>& part) {
  const std::string suffix = "_proj";
  std::string name;
  for (const ModelLinear& linear : part) {
    const std::string& role = linear.name;
    name += (name.empty() ? "" : "+") + (role.ends_with(suffix) ? role.substr(0, role.size() - suffix.size()) : role);
  }
  return name;
}

// With --model, what a decoder-layer row sums: the seven linears of one decoder layer (q, k, v, o,
// gate, up, down; a shape the layer has twice counts twice), at each bpw the model has all seven;
// the grouped row sums its parts (q+k+v, o, gate+up, down) instead.
struct DecoderLayer {
  std::vector<ModelLinear> linears;
  // group_by_input's parts: q+k+v and gate+up each as one, every other linear alone.
  std::vector<std::vector<ModelLinear>> grouped_parts;
  std::vector<int> bpws;
  std::vector<std::string> notes;  // why a bpw the run measures has no decoder-layer row

  bool has_groups() const { return grouped_parts.size() < linears.size(); }
  std::vector<std::vector<ModelLinear>> parts(bool grouped) const {
    if (grouped) return grouped_parts;
    std::vector<std::vector<ModelLinear>> alone;
    for (const ModelLinear& linear : linears) alone.push_back({linear});
    return alone;
  }
  // "decoder layer (7 separate linears)", "decoder layer (grouped: q+k+v, o, gate+up, down)"
  std::string label(bool grouped) const {
    if (!grouped) return fmt::format("decoder layer ({} separate linears)", linears.size());
    std::string parts_text;
    for (const std::vector<ModelLinear>& part : grouped_parts) {
      parts_text += (parts_text.empty() ? "" : ", ") + part_name(part);
    }
    return "decoder layer (grouped: " + parts_text + ")";
  }
};

struct Workload {
  std::vector<ShapeWork> shapes;
  std::optional<DecoderLayer> decoder_layer;  // with --model
  std::string model_line;                     // the report's line about --model; "" without it
};

std::string joined(const std::vector<int>& values) {
  std::string text;
  for (int value : values) text += (text.empty() ? "" : ", ") + std::to_string(value);
  return text;
}

Workload shapes_workload(const Options& options) {
  std::vector<Shape> shapes = options.shape_set == "benchmark" ? kBenchmarkShapes : kDefaultShapes;
  if (!options.shapes.empty()) {
    shapes.clear();
    for (const std::string& text : options.shapes) {
      std::string why;
      const auto shape = parse_shape(text, why);
      if (!shape) throw Error(Status::invalid_argument, why);  // the validator already refused it
      shapes.push_back(*shape);
    }
  }
  Workload workload;
  for (const Shape& shape : unique_in_order(shapes)) {
    workload.shapes.push_back({shape, unique_in_order(options.bpw), {}, {}});
  }
  return workload;
}

// --model: each distinct shape of the model's linears, at the bpw its quantization_config.layer_bpw
// gives each linear, else at every --bpw (the (shape, bpw) pairs glq-tune tunes), then each group of
// a decoder layer's linears that read the same input at each of those bpws where it has all its
// linears; read before any GPU work, so that a bad config is reported without one.
Workload model_workload(const Options& options) {
  const ModelShapes model = read_model_config(options.model);
  const ModelConfig config = parse_model_config(options.model);
  if (model.linears.empty()) {
    throw Error(Status::invalid_argument,
                fmt::format("--model {}: nothing to measure: its quantization_config.layer_bpw names no linear",
                            options.model));
  }
  const std::vector<int> requested_bpws = unique_in_order(options.bpw);
  Workload workload;
  bool has_bias = false, from_layer_bpw = false;
  for (const ModelLinear& linear : model.linears) {
    has_bias = has_bias || linear.has_bias;
    from_layer_bpw = from_layer_bpw || linear.bpw != 0;
    const Shape shape{linear.out_features, linear.in_features};
    auto work = std::find_if(workload.shapes.begin(), workload.shapes.end(),
                             [&](const ShapeWork& other) { return other.shape == shape; });
    if (work == workload.shapes.end()) work = workload.shapes.insert(work, ShapeWork{shape, {}, {}, {}});
    for (int bpw : linear.bpw != 0 ? std::vector<int>{linear.bpw} : requested_bpws) {
      if (std::find(work->bpws.begin(), work->bpws.end(), bpw) == work->bpws.end()) work->bpws.push_back(bpw);
    }
    if (std::find(work->linears.begin(), work->linears.end(), linear.name) == work->linears.end()) {
      work->linears.push_back(linear.name);
    }
  }
  std::set<int> measured_bpws;
  for (ShapeWork& work : workload.shapes) {
    std::sort(work.bpws.begin(), work.bpws.end());
    measured_bpws.insert(work.bpws.begin(), work.bpws.end());
  }

  // Whether the model quantizes the linear of `role` at `bpw` (layer_bpw may give a role another
  // bpw, or leave it unquantized).
  auto quantized_at = [&](const std::string& role, int bpw) {
    return std::any_of(model.linears.begin(), model.linears.end(), [&](const ModelLinear& linear) {
      return linear.name == role && (linear.bpw == bpw || linear.bpw == 0);
    });
  };
  DecoderLayer layer;
  layer.linears = config.layer_linears;
  layer.grouped_parts = group_by_input(config.layer_linears);
  const size_t linear_shapes = workload.shapes.size();
  std::string group_names;
  for (const std::vector<ModelLinear>& part : layer.grouped_parts) {
    if (part.size() < 2) continue;
    ShapeWork work{part_shape(part), {}, {}, {}};
    for (const ModelLinear& linear : part) {
      work.linears.push_back(linear.name);
      work.group.push_back(Shape{linear.out_features, linear.in_features});
    }
    for (int bpw : measured_bpws) {
      const bool quantized = std::all_of(part.begin(), part.end(),
                                         [&](const ModelLinear& linear) { return quantized_at(linear.name, bpw); });
      if (quantized) work.bpws.push_back(bpw);
    }
    if (!work.bpws.empty()) {
      workload.shapes.push_back(std::move(work));
      group_names += (group_names.empty() ? "" : ", ") + part_name(part);
    }
  }

  // A decoder-layer row at a bpw needs each of the seven linears at that bpw.
  for (int bpw : measured_bpws) {
    std::string missing;
    for (const ModelLinear& role : config.layer_linears) {
      if (!quantized_at(role.name, bpw)) missing += (missing.empty() ? "" : ", ") + role.name;
    }
    if (missing.empty()) {
      layer.bpws.push_back(bpw);
    } else {
      layer.notes.push_back(fmt::format("no decoder-layer row at {} bpw: quantization_config.layer_bpw quantizes no {} "
                                        "at that bpw",
                                        bpw, missing));
    }
  }
  const size_t groups = workload.shapes.size() - linear_shapes;
  workload.model_line = fmt::format(
      "model: {} ({}), {} decoder layers; {} distinct linear shapes{} at bpw {} ({}){}", model.name, options.model,
      config.num_hidden_layers, linear_shapes,
      groups == 0 ? ""
                  : fmt::format(" and {} {} of linears that read the same input ({}: each timed as one grouped "
                                "forward)",
                                groups, groups == 1 ? "group" : "groups", group_names),
      joined({measured_bpws.begin(), measured_bpws.end()}), from_layer_bpw ? "quantization_config.layer_bpw" : "--bpw",
      has_bias ? "; its biases are left out (glq-bench times linears without bias)" : "");
  workload.decoder_layer = std::move(layer);
  return workload;
}

// ---------------------------------------------------------------------------------------------
// Small things

void progress(const std::string& line) {
  std::fprintf(stderr, "glq-bench: %s\n", line.c_str());
  std::fflush(stderr);
}

std::string format_bytes(double bytes) {
  if (bytes >= 1e9) return fmt::format("{:.2f} GB", bytes / 1e9);
  if (bytes >= 1e6) return fmt::format("{:.1f} MB", bytes / 1e6);
  if (bytes >= 1e3) return fmt::format("{:.1f} kB", bytes / 1e3);
  return fmt::format("{:.0f} B", bytes);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Whether the first values of a fp16 output are all finite (a broken kernel or layer shows).
bool finite_f16(const DeviceBuffer& y, size_t count) {
  count = std::min(count, kFiniteCheckValues);
  std::vector<uint16_t> host(count);
  y.download(host.data(), count * sizeof(uint16_t));
  return std::all_of(host.begin(), host.end(), [](uint16_t bits) { return (bits & 0x7c00u) != 0x7c00u; });
}

// If a failed measurement left the context broken (a fault in a kernel), nothing after it
// can be trusted: stop the run. (The driver table has no cuCtxSynchronize: the run's stream and
// the legacy stream, where uploads go, hold all the work there is.)
void check_context_alive(CUstream stream, const std::string& after) {
  for (CUstream s : {stream, CUstream(nullptr)}) {
    const CUresult result = driver().cuStreamSynchronize(s);
    if (result == CUDA_SUCCESS) continue;
    try {
      check_cuda(result, "cuStreamSynchronize");
    } catch (const Error& error) {
      throw Error(Status::cuda_error,
                  fmt::format("the CUDA context is unusable after {}: {}; stopping the run", after, error.what()));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The probe module: a random fp16 fill, and the streaming-read kernel of the roofline

const char* const kProbeSource = R"(
__device__ unsigned long long glqb_mix(unsigned long long z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

// Random finite fp16 values with magnitudes in [1/8, 1) and random signs.
extern "C" __global__ void glqb_fill_f16(unsigned short* __restrict__ data, unsigned long long count,
                                         unsigned long long seed) {
  const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
  for (unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x; i < count; i += stride) {
    const unsigned long long h = glqb_mix(i + seed * 0x632BE59BD9B4E019ull);
    const unsigned exponent = 12u + (unsigned)((h >> 20) % 3u);
    data[i] = (unsigned short)(((h >> 40) & 0x8000u) | (exponent << 10) | (h & 0x3FFu));
  }
}

// Streams `count` 16-byte words with four loads in flight per thread; one value per block
// goes out so that no load can be optimized away.
extern "C" __global__ void glqb_read(const uint4* __restrict__ data, unsigned long long count,
                                     unsigned* __restrict__ out) {
  const unsigned long long stride = (unsigned long long)gridDim.x * blockDim.x;
  unsigned long long i = (unsigned long long)blockIdx.x * blockDim.x + threadIdx.x;
  unsigned acc = 0;
  for (; i + 3 * stride < count; i += 4 * stride) {
    const uint4 a = data[i];
    const uint4 b = data[i + stride];
    const uint4 c = data[i + 2 * stride];
    const uint4 d = data[i + 3 * stride];
    acc ^= a.x ^ a.y ^ a.z ^ a.w ^ b.x ^ b.y ^ b.z ^ b.w ^ c.x ^ c.y ^ c.z ^ c.w ^ d.x ^ d.y ^ d.z ^ d.w;
  }
  for (; i < count; i += stride) {
    const uint4 a = data[i];
    acc ^= a.x ^ a.y ^ a.z ^ a.w;
  }
  for (int offset = 16; offset > 0; offset /= 2) acc ^= __shfl_xor_sync(0xffffffffu, acc, offset);
  __shared__ unsigned warp_acc[32];
  if ((threadIdx.x & 31u) == 0) warp_acc[threadIdx.x >> 5] = acc;
  __syncthreads();
  if (threadIdx.x == 0) {
    unsigned total = 0;
    for (unsigned w = 0; w < (blockDim.x + 31u) / 32u; ++w) total ^= warp_acc[w];
    out[blockIdx.x] = total;
  }
}
)";

class Probe {
 public:
  explicit Probe(const Context& context) : sm_count_(std::max(1, context.device().sm_count)) {
    const std::string arch = context.device().arch.name();
    const CompileOutput compiled =
        compile_kernel(kProbeSource, {"--gpu-architecture=" + arch, "--std=c++17"}, false, "glq_bench_probe.cu");
    const Driver& d = driver();
    check_cuda(d.cuModuleLoadData(&module_, compiled.cubin.data()), "loading glq-bench's probe kernels");
    check_cuda(d.cuModuleGetFunction(&fill_, module_, "glqb_fill_f16"), "cuModuleGetFunction glqb_fill_f16");
    check_cuda(d.cuModuleGetFunction(&read_, module_, "glqb_read"), "cuModuleGetFunction glqb_read");
  }
  ~Probe() {
    if (module_ != nullptr) driver().cuModuleUnload(module_);
  }
  Probe(const Probe&) = delete;
  Probe& operator=(const Probe&) = delete;

  int sm_count() const { return sm_count_; }

  void fill_f16(CUdeviceptr data, size_t count, uint64_t seed, CUstream stream) const {
    unsigned long long n = count, s = seed;
    void* params[] = {&data, &n, &s};
    check_cuda(driver().cuLaunchKernel(fill_, unsigned(sm_count_ * 8), 1, 1, 256, 1, 1, 0, stream, params, nullptr),
               "launching glqb_fill_f16");
  }

  void read(CUdeviceptr data, size_t words, CUdeviceptr out, unsigned blocks, unsigned threads, CUstream stream) const {
    unsigned long long n = words;
    void* params[] = {&data, &n, &out};
    check_cuda(driver().cuLaunchKernel(read_, blocks, 1, 1, threads, 1, 1, 0, stream, params, nullptr),
               "launching glqb_read");
  }

 private:
  int sm_count_;
  CUmodule module_ = nullptr;
  CUfunction fill_ = nullptr, read_ = nullptr;
};

struct Bandwidth {
  double bytes_per_second = 0;
  unsigned blocks = 0, threads = 0;
  std::vector<double> samples_gbps;  // the timed runs of the configuration taken
  Json configurations = Json::array();
};

// The card's streaming read bandwidth: the read kernel over 1 GiB, at full occupancy with a few
// block sizes; each timed kProbeRuns times; the best median is taken.
Bandwidth measure_read_bandwidth(CUcontext context, const Probe& probe, CUstream stream) {
  DeviceBuffer data(context, kProbeBytes, "the 1 GiB bandwidth probe");
  probe.fill_f16(data.get(), kProbeBytes / 2, 0x5eed, stream);
  const unsigned configurations[][2] = {{256, 8}, {512, 4}, {1024, 2}};  // threads, blocks per SM
  const unsigned max_blocks = unsigned(probe.sm_count()) * 8;
  DeviceBuffer sink(context, max_blocks * sizeof(unsigned), "the bandwidth probe's output");
  EventTimer timer(context);
  Bandwidth best;
  for (const auto& [threads, per_sm] : configurations) {
    const unsigned blocks = unsigned(probe.sm_count()) * per_sm;
    for (int w = 0; w < kProbeWarmups; ++w)
      probe.read(data.get(), kProbeBytes / 16, sink.get(), blocks, threads, stream);
    std::vector<double> gbps;
    for (int r = 0; r < kProbeRuns; ++r) {
      timer.start(stream);
      probe.read(data.get(), kProbeBytes / 16, sink.get(), blocks, threads, stream);
      const double ms = timer.stop_ms(stream);
      gbps.push_back(ms > 0 ? double(kProbeBytes) / (ms * 1e-3) / 1e9 : 0.0);
    }
    const double median_gbps = bench::median(gbps);
    best.configurations.push_back({{"threads", threads}, {"blocks", blocks}, {"median_gbps", median_gbps}});
    if (median_gbps * 1e9 > best.bytes_per_second) {
      best.bytes_per_second = median_gbps * 1e9;
      best.blocks = blocks;
      best.threads = threads;
      best.samples_gbps = gbps;
    }
  }
  if (!(best.bytes_per_second > 0)) {
    throw Error(Status::cuda_error, "the bandwidth probe measured no time; the CUDA events do not work on this device");
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Results

// What one row records of a dense baseline (cuBLAS fp16, cuBLASLt FP8).
struct BaselineResult {
  double us = kNaN;
  std::vector<double> replays_us;
  int copies = 0;
  bool finite = true;
  std::string error;
  std::string not_measured;  // why the baseline, though it ran, cannot run this shape; not a failure
};

struct Row {
  Shape shape;
  std::string linears;   // with --model, the model's linears of this shape ("q_proj+o_proj") or of the group
  bool grouped = false;  // a group of linears (ShapeWork::group) timed as one LinearGroup; `shape` the merged one
  int bpw = 0;
  int batch = 0;
  // glqjit
  double glq_us = kNaN;
  std::vector<double> glq_replays_us;
  int copies = 0;
  double layer_bytes = 0;     // stage tensors + SU + SV of one copy
  double roofline_bytes = 0;  // layer_bytes + activations in + output out
  double roofline_us = kNaN;
  double target_us = kNaN;  // BENCHMARK.md's batch-1 target, max(roofline / 0.8, roofline + 3)
  std::string variant;
  bool tuned = false;
  bool finite = true;
  std::string error;
  // The baselines
  BaselineResult cublas;  // cuBLAS fp16
  BaselineResult fp8;     // cuBLASLt FP8 e4m3

  double efficiency() const { return roofline_us / glq_us; }
  double speedup_over(const BaselineResult& baseline) const { return baseline.us / glq_us; }
  std::string label() const { return shape_label(shape, linears, grouped); }
};

// A decoder-layer row: the times of one decoder layer's parts summed, each linear launched on its
// own or (grouped) each group of linears as one grouped forward. NaN where a part has no time.
struct LayerSum {
  int bpw = 0;
  int batch = 0;
  bool grouped = false;
  double glq_us = 0, roofline_us = 0, cublas_us = 0, fp8_us = 0;

  double efficiency() const { return roofline_us / glq_us; }
};

Json number_or_null(double value) { return std::isfinite(value) ? Json(value) : Json(nullptr); }
Json text_or_null(const std::string& text) { return text.empty() ? Json(nullptr) : Json(text); }

struct Report {
  Json header;  // card, driver, clocks, date, versions, bandwidth, protocol
  std::vector<Row> rows;
  std::optional<DecoderLayer> decoder_layer;  // with --model
  std::vector<int> batches;
  bool cublas_ran = false, fp8_ran = false;  // whether the baselines were loaded (else their columns say n/a)
  int failures = 0;

  const Row* find(const Shape& shape, bool grouped, int bpw, int batch) const {
    for (const Row& row : rows) {
      if (row.shape == shape && row.grouped == grouped && row.bpw == bpw && row.batch == batch) return &row;
    }
    return nullptr;
  }
  Row* find(const Shape& shape, bool grouped, int bpw, int batch) {
    return const_cast<Row*>(std::as_const(*this).find(shape, grouped, bpw, batch));
  }

  // Per bpw and batch, the separate row, then the grouped one where the layer has groups.
  std::vector<LayerSum> layer_sums() const {
    std::vector<LayerSum> sums;
    if (!decoder_layer) return sums;
    for (int bpw : decoder_layer->bpws) {
      for (int batch : batches) {
        for (bool grouped : {false, true}) {
          if (grouped && !decoder_layer->has_groups()) continue;
          LayerSum sum{bpw, batch, grouped};
          for (const std::vector<ModelLinear>& part : decoder_layer->parts(grouped)) {
            const Row* row = find(part_shape(part), part.size() > 1, bpw, batch);
            sum.glq_us += row ? row->glq_us : kNaN;
            sum.roofline_us += row ? row->roofline_us : kNaN;
            sum.cublas_us += row ? row->cublas.us : kNaN;
            sum.fp8_us += row ? row->fp8.us : kNaN;
          }
          sums.push_back(sum);
        }
      }
    }
    return sums;
  }

  Json json() const {
    Json document = header;
    Json& rows_json = document["rows"] = Json::array();
    for (const Row& row : rows) {
      Json r;
      r["shape"] = row.shape.name();
      r["out_features"] = row.shape.out;
      r["in_features"] = row.shape.in;
      r["linears"] = text_or_null(row.linears);
      r["grouped"] = row.grouped;
      r["bpw"] = row.bpw;
      r["batch"] = row.batch;
      r["glqjit_us"] = number_or_null(row.glq_us);
      r["roofline_us"] = number_or_null(row.roofline_us);
      r["efficiency_pct"] = number_or_null(100.0 * row.efficiency());
      r["cublas_us"] = number_or_null(row.cublas.us);
      r["speedup_vs_cublas"] = number_or_null(row.speedup_over(row.cublas));
      r["fp8_us"] = number_or_null(row.fp8.us);
      r["speedup_vs_fp8"] = number_or_null(row.speedup_over(row.fp8));
      r["target_us"] = number_or_null(row.target_us);
      r["meets_target"] =
          std::isfinite(row.target_us) && std::isfinite(row.glq_us) ? Json(row.glq_us <= row.target_us) : Json(nullptr);
      r["layer_bytes"] = int64_t(row.layer_bytes);
      r["roofline_bytes"] = int64_t(row.roofline_bytes);
      r["copies"] = row.copies;
      r["cublas_copies"] = row.cublas.copies;
      r["fp8_copies"] = row.fp8.copies;
      r["variant"] = row.variant;
      r["tuned"] = row.tuned;
      r["glqjit_replays_us"] = row.glq_replays_us;
      r["cublas_replays_us"] = row.cublas.replays_us;
      r["fp8_replays_us"] = row.fp8.replays_us;
      r["outputs_finite"] = row.finite;
      r["cublas_outputs_finite"] = row.cublas.finite;
      r["fp8_outputs_finite"] = row.fp8.finite;
      r["error"] = text_or_null(row.error);
      r["cublas_error"] = text_or_null(row.cublas.error);
      r["fp8_error"] = text_or_null(row.fp8.error);
      r["fp8_not_measured"] = text_or_null(row.fp8.not_measured);
      rows_json.push_back(std::move(r));
    }
    if (decoder_layer) {
      Json linears = Json::array();
      for (const ModelLinear& linear : decoder_layer->linears) {
        linears.push_back({{"name", linear.name}, {"shape", Shape{linear.out_features, linear.in_features}.name()}});
      }
      // What each call of the row was: a linear alone, or a group's linears as one grouped forward.
      auto parts_json = [&](bool grouped) {
        Json parts = Json::array();
        for (const std::vector<ModelLinear>& part : decoder_layer->parts(grouped)) {
          Json names = Json::array();
          for (const ModelLinear& linear : part) names.push_back(linear.name);
          parts.push_back({{"linears", names}, {"shape", part_shape(part).name()}, {"grouped", part.size() > 1}});
        }
        return parts;
      };
      Json& sums_json = document["decoder_layer_rows"] = Json::array();
      for (const LayerSum& sum : layer_sums()) {
        sums_json.push_back({{"label", decoder_layer->label(sum.grouped)},
                             {"grouped", sum.grouped},
                             {"linears", linears},
                             {"parts", parts_json(sum.grouped)},
                             {"bpw", sum.bpw},
                             {"batch", sum.batch},
                             {"glqjit_us", number_or_null(sum.glq_us)},
                             {"roofline_us", number_or_null(sum.roofline_us)},
                             {"efficiency_pct", number_or_null(100.0 * sum.efficiency())},
                             {"cublas_us", number_or_null(sum.cublas_us)},
                             {"speedup_vs_cublas", number_or_null(sum.cublas_us / sum.glq_us)},
                             {"fp8_us", number_or_null(sum.fp8_us)},
                             {"speedup_vs_fp8", number_or_null(sum.fp8_us / sum.glq_us)}});
      }
    }
    return document;
  }

  std::string csv() const {
    auto field = [](const std::string& text) {
      if (text.find_first_of(",\"\n") == std::string::npos) return text;
      std::string quoted = "\"";
      for (char c : text) quoted += c == '"' ? std::string("\"\"") : std::string(1, c == '\n' ? ' ' : c);
      return quoted + "\"";
    };
    auto number = [](double value, int digits) {
      return std::isfinite(value) ? fmt::format("{:.{}f}", value, digits) : std::string();
    };
    std::string text =
        "shape,out_features,in_features,bpw,batch,glqjit_us,roofline_us,efficiency_pct,cublas_us,speedup_vs_cublas,"
        "fp8_us,speedup_vs_fp8,target_us,meets_target,layer_bytes,roofline_bytes,copies,cublas_copies,fp8_copies,"
        "variant,tuned,error,cublas_error,fp8_error,linears,grouped\n";
    for (const Row& row : rows) {
      const bool judged = std::isfinite(row.target_us) && std::isfinite(row.glq_us);
      text += fmt::format(
          "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{:.0f},{:.0f},{},{},{},{},{},{},{},{},{},{}\n", row.shape.name(),
          row.shape.out, row.shape.in, row.bpw, row.batch, number(row.glq_us, 3), number(row.roofline_us, 3),
          number(100.0 * row.efficiency(), 2), number(row.cublas.us, 3), number(row.speedup_over(row.cublas), 3),
          number(row.fp8.us, 3), number(row.speedup_over(row.fp8), 3), number(row.target_us, 3),
          judged ? (row.glq_us <= row.target_us ? "yes" : "no") : "", row.layer_bytes, row.roofline_bytes, row.copies,
          row.cublas.copies, row.fp8.copies, field(row.variant), row.variant.empty() ? "" : (row.tuned ? "yes" : "no"),
          field(row.error), field(row.cublas.error), field(row.fp8.error), field(row.linears),
          row.grouped ? "yes" : "no");
    }
    return text;
  }

  std::string markdown() const {
    auto number = [](double value, const char* format_suffix) {
      return std::isfinite(value) ? fmt::format("{:.2f}{}", value, format_suffix) : std::string("-");
    };
    auto baseline_time = [&](const BaselineResult& result, bool ran) {
      if (!ran || !result.not_measured.empty()) return std::string("n/a");
      if (!result.error.empty()) return std::string("error");
      return number(result.us, "") + (result.finite ? "" : " (non-finite output!)");
    };
    auto speedup = [&](double baseline_us, double glq_us, bool shown) {
      return shown ? number(baseline_us / glq_us, "x") : std::string("n/a");
    };
    std::string text = bench::markdown_heading(header);
    text +=
        "\n| shape (out x in) | bpw | batch | glqjit µs | roofline µs | efficiency | cuBLAS µs | speedup vs cuBLAS "
        "| FP8 µs | vs FP8 |\n";
    text += "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n";
    for (const Row& row : rows) {
      std::string glq = row.error.empty() ? number(row.glq_us, "") : std::string("error");
      if (row.error.empty() && !row.finite) glq += " (non-finite output!)";
      text += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", row.label(), row.bpw, row.batch,
                          glq, number(row.roofline_us, ""), number(100.0 * row.efficiency(), " %"),
                          baseline_time(row.cublas, cublas_ran),
                          speedup(row.cublas.us, row.glq_us, cublas_ran && row.cublas.not_measured.empty()),
                          baseline_time(row.fp8, fp8_ran),
                          speedup(row.fp8.us, row.glq_us, fp8_ran && row.fp8.not_measured.empty()));
    }
    for (const LayerSum& sum : layer_sums()) {
      text += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} | {} | {} |\n", decoder_layer->label(sum.grouped),
                          sum.bpw, sum.batch, number(sum.glq_us, ""), number(sum.roofline_us, ""),
                          number(100.0 * sum.efficiency(), " %"), cublas_ran ? number(sum.cublas_us, "") : "n/a",
                          speedup(sum.cublas_us, sum.glq_us, cublas_ran), fp8_ran ? number(sum.fp8_us, "") : "n/a",
                          speedup(sum.fp8_us, sum.glq_us, fp8_ran));
    }
    std::string errors, notes;
    for (const Row& row : rows) {
      const std::string where =
          fmt::format("{}{} bpw {} batch {}", row.shape.name(), row.grouped ? " (grouped)" : "", row.bpw, row.batch);
      // The first line only (an NVRTC log follows it); standard error and --json have the rest.
      auto first_line = [](const std::string& text) { return text.substr(0, text.find('\n')); };
      if (!row.error.empty()) errors += fmt::format("- {}: {}\n", where, first_line(row.error));
      if (!row.cublas.error.empty()) errors += fmt::format("- {} (cuBLAS): {}\n", where, first_line(row.cublas.error));
      if (!row.fp8.error.empty()) errors += fmt::format("- {} (FP8): {}\n", where, first_line(row.fp8.error));
      const std::string note = fmt::format("- {}: FP8 not measured ({})\n", row.shape.name(), row.fp8.not_measured);
      if (!row.fp8.not_measured.empty() && notes.find(note) == std::string::npos) notes += note;
    }
    if (!errors.empty()) text += "\nErrors:\n" + errors;
    if (!notes.empty()) text += "\nNotes:\n" + notes;
    return text;
  }
};

void write_json(const std::string& path, const Json& document) {
  // NVRTC logs in error messages need not be UTF-8: replace what is not rather than throw.
  write_output_file(path, document.dump(2, ' ', false, Json::error_handler_t::replace) + "\n", "--json");
}

void write_outputs(const Options& options, const Report& report) {
  if (!options.json.empty()) write_json(options.json, report.json());
  if (!options.csv.empty()) write_output_file(options.csv, report.csv(), "--csv");
}

// ---------------------------------------------------------------------------------------------
// The measurements

uint64_t shape_seed(const Shape& shape, int bpw) {
  return uint64_t(shape.out) * 1000003u + uint64_t(shape.in) * 7919u + uint64_t(bpw);
}

// A dense GEMM baseline on a weight of the layer's logical shape, as bench_baseline times it.
struct DenseBaseline {
  std::string name;             // "cuBLAS fp16"
  BaselineResult Row::*result;  // the columns it fills
  size_t weight_bytes = 0;      // of one copy's weight
  size_t input_row_bytes = 0;   // of one row of a copy's input
  // Gives copy `index` its weight and its input (max_batch rows).
  std::function<void(int index, const DeviceBuffer& weight, const DeviceBuffer& x)> fill;
  // y = x W^T at one batch, readied outside any capture (where cuBLASLt asks its heuristic).
  using Call = std::function<void(CUdeviceptr weight, CUdeviceptr x, CUdeviceptr y)>;
  std::function<Call(int batch)> call_at;
};

// A baseline under the protocol: cold copies of its weight, one uncaptured call per copy, then the
// graph of rounds over every copy; fills the baseline's columns of every row of the shape. Errors
// are recorded per batch; the run goes on.
void bench_baseline(const Context& context, const DenseBaseline& baseline, const Stream& stream, const Shape& shape,
                    const std::vector<int>& batches, const Options& options, Report& report) {
  const int max_batch = *std::max_element(batches.begin(), batches.end());
  const double dense_bytes = double(baseline.weight_bytes);
  const int copies = cold_copies(dense_bytes, context.device().l2_bytes);
  auto record = [&](int batch, const std::function<void(BaselineResult&)>& set) {
    for (Row& row : report.rows) {
      if (row.shape == shape && row.batch == batch) set(row.*baseline.result);
    }
  };
  struct DenseCopy {
    DeviceBuffer weight, x, y;
  };
  std::vector<DenseCopy> dense;
  try {
    const auto start = std::chrono::steady_clock::now();
    for (int c = 0; c < copies; ++c) {
      DenseCopy copy;
      copy.weight = DeviceBuffer(context.cu(), baseline.weight_bytes,
                                 fmt::format("a dense {} {} weight", baseline.name, shape.name()));
      copy.x = DeviceBuffer(context.cu(), size_t(max_batch) * baseline.input_row_bytes, "an input batch");
      copy.y = DeviceBuffer(context.cu(), size_t(max_batch) * shape.out * 2, "an output batch");
      baseline.fill(c, copy.weight, copy.x);
      dense.push_back(std::move(copy));
    }
    stream.synchronize("filling the dense weights");
    progress(fmt::format("{} {}: {} copies of {} ({} in all), ready in {:.1f} s", shape.name(), baseline.name, copies,
                         format_bytes(dense_bytes), format_bytes(dense_bytes * copies), seconds_since(start)));
  } catch (const Error& error) {
    progress(fmt::format("error: {} {}: {}", baseline.name, shape.name(), error.what()));
    for (int batch : batches) record(batch, [&](BaselineResult& result) { result.error = error.what(); });
    ++report.failures;
    dense.clear();
    check_context_alive(stream.get(), fmt::format("the {} setup of {}", baseline.name, shape.name()));
    return;
  }
  for (int batch : batches) {
    try {
      const DenseBaseline::Call call = baseline.call_at(batch);
      // One uncaptured call per copy first: the library picks and loads its kernel outside the graph.
      for (const DenseCopy& copy : dense) call(copy.weight.get(), copy.x.get(), copy.y.get());
      stream.synchronize(fmt::format("the {} warm-up", baseline.name));
      const bool finite = finite_f16(dense.front().y, size_t(batch) * shape.out);
      const GraphTiming timing = time_graph(context.cu(), stream.get(), options.rounds * copies, options.replays, [&] {
        for (int r = 0; r < options.rounds; ++r) {
          for (const DenseCopy& copy : dense) call(copy.weight.get(), copy.x.get(), copy.y.get());
        }
      });
      record(batch, [&](BaselineResult& result) {
        result.us = timing.median_us;
        result.replays_us = timing.per_call_us;
        result.copies = copies;
        result.finite = finite;
      });
      progress(fmt::format("{} batch {}: {} {:.2f} µs{}", shape.name(), batch, baseline.name, timing.median_us,
                           finite ? "" : " (non-finite outputs!)"));
    } catch (const Error& error) {
      progress(fmt::format("error: {} {} batch {}: {}", baseline.name, shape.name(), batch, error.what()));
      record(batch, [&](BaselineResult& result) { result.error = error.what(); });
      ++report.failures;
      check_context_alive(stream.get(), fmt::format("{} {} batch {}", baseline.name, shape.name(), batch));
    }
  }
}

// cuBLAS fp16 (cublasGemmEx, fp32 accumulation) on random fp16 weights and inputs made on the GPU.
DenseBaseline cublas_fp16_baseline(bench::Cublas& cublas, const Probe& probe, const Stream& stream,
                                   const Shape& shape) {
  DenseBaseline baseline;
  baseline.name = "cuBLAS fp16";
  baseline.result = &Row::cublas;
  baseline.weight_bytes = size_t(shape.out) * size_t(shape.in) * 2;
  baseline.input_row_bytes = size_t(shape.in) * 2;
  baseline.fill = [&probe, &stream](int index, const DeviceBuffer& weight, const DeviceBuffer& x) {
    probe.fill_f16(weight.get(), weight.bytes() / 2, 1000 + index, stream.get());
    probe.fill_f16(x.get(), x.bytes() / 2, 2000 + index, stream.get());
  };
  baseline.call_at = [&cublas, shape](int batch) -> DenseBaseline::Call {
    return [&cublas, shape, batch](CUdeviceptr weight, CUdeviceptr x, CUdeviceptr y) {
      cublas.linear_f16(weight, x, y, shape.out, shape.in, batch);
    };
  };
  return baseline;
}

// The FP8 baseline's data, made on the host: random fp16 values as the fp16 baseline's fill makes
// them (exponents 2^-3..2^-1, random mantissas and signs: magnitudes in [1/8, 1)), quantized per
// tensor as a serving stack quantizes: multiplied by 448 / amax (amax taken as 1) so that the largest
// magnitudes meet e4m3's largest, then rounded; the scale amax / 448 dequantizes. One weight serves
// every copy: what keeps the weights cold is that each copy is its own memory, not its bytes.
struct Fp8Data {
  static constexpr float kScale = 1.0f / bench::kE4m3Max;
  std::vector<uint8_t> weight, input;
  // The weight scale at float 0 and the input scale at float kInputScaleIndex, device fp32
  // scalars 256 bytes apart: cuBLASLt's FP8 kernels refused (CUBLAS_STATUS_NOT_SUPPORTED) a scale
  // pointer that was only 4-byte aligned.
  static constexpr size_t kInputScaleIndex = 64;
  DeviceBuffer scales;

  static std::vector<uint8_t> random_e4m3(size_t count, uint64_t seed) {
    // The quantized value of every 16 random bits (sign, exponent choice, 10 mantissa bits), worked
    // out once: a 57344x8192 weight then costs one table look-up per value, not one conversion.
    static const std::vector<uint8_t> quantized_of_bits = [] {
      std::vector<uint8_t> table(size_t(1) << 16);
      for (uint32_t bits = 0; bits < table.size(); ++bits) {
        const uint32_t f16_exponent = 12 + ((bits >> 10) & 0x1F) % 3;  // fp16 bias 15: 2^-3, 2^-2, 2^-1
        const uint32_t f32_bits = (bits & 0x8000) << 16 | (f16_exponent - 15 + 127) << 23 | (bits & 0x3FF) << 13;
        table[bits] = bench::e4m3_from_float(std::bit_cast<float>(f32_bits) * bench::kE4m3Max);
      }
      return table;
    }();
    std::vector<uint8_t> values(count);
    std::mt19937_64 random(seed);
    for (size_t i = 0; i < count; i += 4) {
      const uint64_t bits = random();
      for (size_t j = 0; j < 4 && i + j < count; ++j) values[i + j] = quantized_of_bits[(bits >> (16 * j)) & 0xFFFF];
    }
    return values;
  }
};

// cuBLASLt FP8 (bench_cublaslt.hpp) on the e4m3 data of `data`.
DenseBaseline cublaslt_fp8_baseline(const bench::CublasLt& lt, const Fp8Data& data, const Stream& stream,
                                    const Shape& shape) {
  DenseBaseline baseline;
  baseline.name = "cuBLASLt FP8";
  baseline.result = &Row::fp8;
  baseline.weight_bytes = data.weight.size();
  baseline.input_row_bytes = size_t(shape.in);
  baseline.fill = [&data](int, const DeviceBuffer& weight, const DeviceBuffer& x) {
    weight.upload(data.weight.data(), data.weight.size());
    x.upload(data.input.data(), x.bytes());
  };
  baseline.call_at = [&lt, &data, &stream, shape](int batch) -> DenseBaseline::Call {
    const CUdeviceptr weight_scale = data.scales.get();
    const CUdeviceptr input_scale = data.scales.get() + Fp8Data::kInputScaleIndex * sizeof(float);
    std::shared_ptr<const bench::CublasLt::Fp8Linear> linear =
        lt.fp8_linear(shape.out, shape.in, batch, weight_scale, input_scale);
    return [linear, &stream](CUdeviceptr weight, CUdeviceptr x, CUdeviceptr y) {
      linear->run(weight, x, y, stream.get());
    };
  };
  return baseline;
}

// torch._scaled_mm's rule for FP8 shapes: in and out features multiples of 16 (cuBLASLt's FP8
// kernels want 16-byte leading dimensions). A shape that breaks it has no FP8 time, which is not a
// failure.
std::optional<std::string> fp8_shape_problem(const Shape& shape) {
  if (shape.in % 16 == 0 && shape.out % 16 == 0) return std::nullopt;
  return std::string("FP8 GEMMs need in and out features that are multiples of 16, as torch._scaled_mm does");
}

void bench_fp8(const Context& context, const bench::CublasLt& lt, const Stream& stream, const Shape& shape,
               const std::vector<int>& batches, const Options& options, Report& report) {
  if (const auto problem = fp8_shape_problem(shape)) {
    progress(fmt::format("{} FP8: not measured ({})", shape.name(), *problem));
    for (Row& row : report.rows) {
      if (row.shape == shape) row.fp8.not_measured = *problem;
    }
    return;
  }
  const int max_batch = *std::max_element(batches.begin(), batches.end());
  Fp8Data data;
  // "bpw" 0 and 1 belong to no glqjit layer, so these seeds are the FP8 data's alone.
  data.weight = Fp8Data::random_e4m3(size_t(shape.out) * size_t(shape.in), shape_seed(shape, 0));
  data.input = Fp8Data::random_e4m3(size_t(max_batch) * size_t(shape.in), shape_seed(shape, 1));
  std::vector<float> scales(Fp8Data::kInputScaleIndex + 1, Fp8Data::kScale);
  data.scales = DeviceBuffer::from(context.cu(), scales, "the FP8 scales");
  bench_baseline(context, cublaslt_fp8_baseline(lt, data, stream, shape), stream, shape, batches, options, report);
}

// --variant over the default variant of each batch's bucket (for a group, of its one kernel);
// where that is not legal the bucket keeps its default and a progress line says why.
std::map<int, Variant> chosen_variants(const Context& context, const LinearSpec& spec, const std::vector<int>& batches,
                                       const std::string& parts) {
  const DeviceInfo& device = context.device();
  std::map<int, Variant> variants;
  for (int batch : batches) {
    const int bucket = bucket_for(batch);
    Variant variant;
    std::optional<std::string> violation;
    try {
      variant = variant_over_default(parts, spec, bucket, device.arch, device.sm_count);
      violation = variant_violation(spec, bucket, device.arch, variant);
    } catch (const Error& error) {
      // Where the parts' family cannot run the group as one kernel (only family 1 can, up to
      // its largest bucket), the group has no such default: the bucket keeps the group's own.
      if (!spec.is_group() || error.status() != Status::unsupported_shape) throw;
      violation = error.what();
    }
    if (violation) {
      progress(fmt::format("--variant \"{}\" at batch bucket {} of {}: {}; timing the default variant", parts, bucket,
                           spec.canonical(), *violation));
    } else {
      variants[bucket] = variant;
    }
  }
  return variants;
}

// glqjit on one random layer of (shape, bpw), or for a group one per linear, uploaded to enough
// distinct copies (the tuner's LayerTimer, so that both measure the same way); fills the glqjit
// columns of the rows of (work, bpw).
void bench_glqjit(Context& context, const ShapeWork& work, int bpw, const std::vector<int>& batches,
                  const Options& options, double bandwidth, Report& report) {
  const Shape& shape = work.shape;
  const std::string what = fmt::format("{}{} bpw {}", shape.name(), work.grouped() ? " (grouped)" : "", bpw);
  const int max_batch = *std::max_element(batches.begin(), batches.end());
  std::unique_ptr<LayerTimer> timer;
  double layer_bytes = 0;
  try {
    LinearSpec spec;
    spec.in_features = shape.in;
    spec.out_features = shape.out;
    spec.bpw = bpw;
    spec.dtype = DType::f16;
    for (const Shape& linear : work.group) spec.shard_out_features.push_back(linear.out);
    spec.recipe();  // unsupported bpw or shape: say so before generating anything
    spec.geometry();
    auto start = std::chrono::steady_clock::now();
    // A group's linears are the layers their own rows time (the same seeds).
    std::vector<QuantizedLayer> layers;
    for (const Shape& linear : work.grouped() ? work.group : std::vector<Shape>{shape}) {
      layers.push_back(random_layer(linear.in, linear.out, bpw, shape_seed(linear, bpw)));
    }
    progress(fmt::format("{}: random layer{} made in {:.1f} s; uploading the copies", what,
                         layers.size() > 1 ? "s" : "", seconds_since(start)));
    start = std::chrono::steady_clock::now();
    timer = std::make_unique<LayerTimer>(context, spec, layers, max_batch,
                                         LayerTimerOptions{options.rounds, options.replays});
    layer_bytes = timer->weight_bytes();
    LinearOptions linear_options;
    linear_options.max_batch = max_batch;
    linear_options.lazy_buckets = true;
    if (!options.variant.empty()) linear_options.variants = chosen_variants(context, spec, batches, options.variant);
    timer->plan(linear_options);
    progress(fmt::format("{}: {} copies of {} ({} in all) uploaded and planned in {:.1f} s", what, timer->copies(),
                         format_bytes(layer_bytes), format_bytes(layer_bytes * timer->copies()), seconds_since(start)));
  } catch (const Error& error) {
    progress(fmt::format("error: {}: {}", what, error.what()));
    for (int batch : batches) {
      if (Row* row = report.find(shape, work.grouped(), bpw, batch)) row->error = error.what();
    }
    ++report.failures;
    timer.reset();
    check_context_alive(nullptr, what);
    return;
  }

  for (int batch : batches) {
    Row* row = report.find(shape, work.grouped(), bpw, batch);
    if (row == nullptr) continue;
    row->copies = timer->copies();
    row->layer_bytes = layer_bytes;
    row->roofline_bytes = layer_bytes + double(batch) * double(shape.in + shape.out) * 2;
    row->roofline_us = row->roofline_bytes / bandwidth * 1e6;
    if (batch == 1) row->target_us = std::max(row->roofline_us / 0.8, row->roofline_us + 3.0);
    try {
      // A lazy bucket is compiled (first copy) or loaded (the others) here, never during capture.
      const double ready_s = timer->eager_forwards(batch);
      row->finite = finite_f16(timer->first_output(), size_t(batch) * shape.out);
      if (const Linear* linear = timer->first_linear(batch)) {
        for (const Linear::BucketInfo& bucket : linear->buckets()) {
          if (bucket.bucket == bucket_for(batch)) {
            row->variant = bucket.variant.canonical();
            row->tuned = bucket.tuned;
          }
        }
      } else {
        row->variant = "one linear at a time";  // the group's linears, each at its bucket's variant
      }
      const GraphTiming timing = timer->time(batch);
      row->glq_us = timing.median_us;
      row->glq_replays_us = timing.per_call_us;
      std::string line = fmt::format("{} batch {}: glqjit {:.2f} µs, roofline {:.2f} µs ({:.1f} %)", what, batch,
                                     row->glq_us, row->roofline_us, 100.0 * row->efficiency());
      if (std::isfinite(row->cublas.us))
        line += fmt::format(", cuBLAS {:.2f} µs ({:.2f}x)", row->cublas.us, row->speedup_over(row->cublas));
      if (std::isfinite(row->fp8.us))
        line += fmt::format(", FP8 {:.2f} µs ({:.2f}x)", row->fp8.us, row->speedup_over(row->fp8));
      if (ready_s > 1.0) line += fmt::format("; kernels ready in {:.1f} s", ready_s);
      if (!row->finite) line += "; NON-FINITE OUTPUTS (the kernels or the layer are broken)";
      progress(line);
    } catch (const Error& error) {
      progress(fmt::format("error: {} batch {}: {}", what, batch, error.what()));
      row->error = error.what();
      ++report.failures;
      check_context_alive(timer->stream(), fmt::format("{} batch {}", what, batch));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The run

// A kernel store in a fresh temporary folder, for when the default store cannot be opened:
// without a store every one of the many copies of a layer would compile its kernels again.
class TemporaryStore {
 public:
  ~TemporaryStore() {
    if (!dir_.empty()) {
      std::error_code error;
      std::filesystem::remove_all(dir_, error);
    }
  }
  std::string create() {
    std::string pattern = (std::filesystem::temp_directory_path() / "glq-bench-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) {
      throw Error(Status::cache_error,
                  "no kernel store could be opened and no temporary one created; pass --cache PATH");
    }
    dir_ = pattern;
    return dir_ + "/glqjit.db";
  }

 private:
  std::string dir_;
};

// Whether cuBLASLt can run FP8 here, and with what: the report's "FP8:" line.
std::unique_ptr<bench::CublasLt> load_fp8_baseline(const Options& options, const DeviceInfo& info, std::string& note) {
  if (options.no_fp8) {
    note = "not measured (--no-fp8)";
    return nullptr;
  }
  if (info.cc_major * 10 + info.cc_minor < 89) {
    note = fmt::format("not measured: compute capability {}.{} has no FP8 tensor cores (8.9 or newer has)",
                       info.cc_major, info.cc_minor);
    progress("FP8: " + note);
    return nullptr;
  }
  std::string reason;
  std::unique_ptr<bench::CublasLt> lt = bench::CublasLt::load(reason);
  if (!lt) {
    note = "not available (" + reason + ")";
    progress("FP8: " + note);
    return nullptr;
  }
  note = fmt::format("{}{}: cublasLtMatmul, e4m3 weight and activation with per-tensor fp32 scales, fp16 output, fp32 "
                     "accumulation, the heuristic's first algorithm (torch._scaled_mm's GEMM; quantizing the "
                     "activation is not timed)",
                     lt->library(), lt->version() ? fmt::format(" (version {})", lt->version()) : "");
  progress("FP8: " + note);
  return lt;
}

// The run's context over the kernel store --cache names, else the default one, else (when that
// cannot be opened) a temporary one; so its store() is never null.
std::unique_ptr<Context> open_context(const Options& options, TemporaryStore& temporary_store) {
  auto context = std::make_unique<Context>(options.device, ContextOptions{options.cache, false, false});
  if (context->store() == nullptr) {
    const std::string path = temporary_store.create();
    progress("no kernel store could be opened; using a temporary one at " + path + " (pass --cache PATH to keep it)");
    context.reset();
    context = std::make_unique<Context>(options.device, ContextOptions{path, false, false});
  }
  return context;
}

void progress_device(Context& context) {
  const DeviceInfo& info = context.device();
  progress(fmt::format("{} (device {}, {}, {} SMs); store {}", info.name, info.ordinal, info.arch.name(), info.sm_count,
                       context.store()->path()));
}

// --plan-time: the card, then how long planning every linear of --model takes.
void run_plan_time(const Options& options) {
  // As in run(): the command line and the config are checked before the GPU is looked for.
  if (options.bpw.empty() || options.batches.empty()) {
    throw Error(Status::invalid_argument, "nothing to plan: --bpw and --batch need at least one value each");
  }
  const int max_batch = *std::max_element(options.batches.begin(), options.batches.end());
  const bench::ModelPlan plan = bench::read_model_plan(options.model, options.bpw.front(), max_batch);
  check_output_writable(options.json, "--json");
  TemporaryStore temporary_store;
  const std::unique_ptr<Context> context = open_context(options, temporary_store);
  ScopedContext scope(context->cu());
  const bench::Card card(context->device());
  progress_device(*context);

  const bench::PlanTimes times = bench::measure_plan_times(*context, plan, options.replays, progress);
  const bench::Clocks clocks_at_end = card.clocks_now();
  Json document = card.header(&clocks_at_end);
  document["kernel_store"] = context->store()->path();
  document["model"] = options.model;
  std::vector<std::string> lines = card.lines(&clocks_at_end);
  lines.push_back("kernel store: " + context->store()->path());
  document["report_lines"] = lines;
  document["plan_time"] = times.json();
  if (!options.json.empty()) write_json(options.json, document);
  write_stdout(bench::markdown_heading(document) + times.markdown());
}

void run(const Options& options) {
  // Everything the command line and a --model config can get wrong is reported before the GPU is
  // looked for, so that those errors are the same on a machine without one.
  const Workload workload = options.model.empty() ? shapes_workload(options) : model_workload(options);
  const std::vector<int> batches = unique_in_order(options.batches);
  const bool no_bpw = std::any_of(workload.shapes.begin(), workload.shapes.end(),
                                  [](const ShapeWork& work) { return work.bpws.empty(); });
  if (workload.shapes.empty() || no_bpw || batches.empty()) {
    throw Error(Status::invalid_argument,
                "nothing to measure: --shapes, --bpw and --batch need at least one value each");
  }
  check_output_writable(options.json, "--json");
  check_output_writable(options.csv, "--csv");
  TemporaryStore temporary_store;
  const std::unique_ptr<Context> context = open_context(options, temporary_store);
  ScopedContext scope(context->cu());
  const DeviceInfo& info = context->device();
  const bench::Card card(info);
  progress_device(*context);

  Stream stream(context->cu(), CU_STREAM_DEFAULT);
  progress("measuring the streaming read bandwidth (1 GiB, 16-byte loads)");
  const Probe probe(*context);
  const Bandwidth bandwidth = measure_read_bandwidth(context->cu(), probe, stream.get());
  progress(fmt::format("streaming read bandwidth {:.1f} GB/s", bandwidth.bytes_per_second / 1e9));

  std::unique_ptr<bench::Cublas> cublas;
  std::string cublas_note;
  if (options.no_cublas) {
    cublas_note = "not measured (--no-cublas)";
  } else {
    std::string reason;
    cublas = bench::Cublas::load(reason);
    if (cublas) {
      cublas->set_stream(stream.get());
      cublas_note = cublas->library() + (cublas->version() ? fmt::format(" (version {})", cublas->version()) : "");
      progress("cuBLAS: " + cublas_note);
    } else {
      cublas_note = "not available (" + reason + ")";
      std::fprintf(stderr, "cuBLAS: not available (%s)\n", reason.c_str());
      std::fflush(stderr);
    }
  }
  std::string fp8_note;
  const std::unique_ptr<bench::CublasLt> cublaslt = load_fp8_baseline(options, info, fp8_note);

  Report report;
  report.decoder_layer = workload.decoder_layer;
  report.batches = batches;
  report.cublas_ran = cublas != nullptr;
  report.fp8_ran = cublaslt != nullptr;
  for (const ShapeWork& work : workload.shapes) {
    for (int bpw : work.bpws) {
      for (int batch : batches) {
        Row row;
        row.shape = work.shape;
        row.linears = work.linear_names();
        row.grouped = work.grouped();
        row.bpw = bpw;
        row.batch = batch;
        report.rows.push_back(std::move(row));
      }
    }
  }

  auto make_header = [&](const bench::Clocks* clocks_at_end) {
    Json h = card.header(clocks_at_end);
    h["kernel_store"] = context->store()->path();
    h["cublas"] = cublas_note;
    h["fp8"] = fp8_note;
    h["model"] = options.model.empty() ? Json(nullptr) : Json(options.model);
    h["read_bandwidth_gbps"] = bandwidth.bytes_per_second / 1e9;
    h["read_bandwidth_probe"] = {{"bytes", kProbeBytes},
                                 {"blocks", bandwidth.blocks},
                                 {"threads", bandwidth.threads},
                                 {"samples_gbps", bandwidth.samples_gbps},
                                 {"configurations", bandwidth.configurations}};
    h["protocol"] = {{"cold_bytes", kColdL2Multiple * double(info.l2_bytes)}, {"l2_bytes", info.l2_bytes},
                     {"rounds", options.rounds}, {"replays", options.replays},
                     {"warmup_replays", 1},      {"time", "median over replays of replay time / (rounds * copies)"},
                     {"dtype", "fp16"}};
    std::vector<std::string> lines = card.lines(clocks_at_end);
    lines.push_back("cuBLAS: " + cublas_note);
    lines.push_back("FP8: " + fp8_note);
    if (!workload.model_line.empty()) lines.push_back(workload.model_line);
    if (workload.decoder_layer) {
      for (const std::string& note : workload.decoder_layer->notes) lines.push_back(note);
    }
    lines.push_back(
        fmt::format("streaming read bandwidth: {:.1f} GB/s (1 GiB, 16-byte loads, {} blocks x {} threads, "
                    "median of {})",
                    bandwidth.bytes_per_second / 1e9, bandwidth.blocks, bandwidth.threads, kProbeRuns));
    lines.push_back(
        fmt::format("protocol: copies of each layer over {:.0f} MB ({:.0f} times the L2), {} rounds over all "
                    "copies in one CUDA graph, one warm-up replay, median of {} replays; time per call",
                    kColdL2Multiple * double(info.l2_bytes) / 1e6, kColdL2Multiple, options.rounds, options.replays));
    h["report_lines"] = lines;
    return h;
  };
  report.header = make_header(nullptr);
  write_outputs(options, report);

  try {
    for (size_t i = 0; i < workload.shapes.size(); ++i) {
      const ShapeWork& work = workload.shapes[i];
      const Shape& shape = work.shape;
      progress(fmt::format("[{}/{}] {}", i + 1, workload.shapes.size(), work.label()));
      // The baselines fill every row of their dense shape, so a group whose merged shape is also a
      // linear's measured before has its baselines already.
      const bool dense_measured = std::any_of(workload.shapes.begin(), workload.shapes.begin() + i,
                                              [&](const ShapeWork& other) { return other.shape == shape; });
      if (cublas && !dense_measured) {
        bench_baseline(*context, cublas_fp16_baseline(*cublas, probe, stream, shape), stream, shape, batches, options,
                       report);
      }
      if (cublaslt && !dense_measured) bench_fp8(*context, *cublaslt, stream, shape, batches, options, report);
      for (int bpw : work.bpws) {
        bench_glqjit(*context, work, bpw, batches, options, bandwidth.bytes_per_second, report);
      }
      write_outputs(options, report);  // a long run that is stopped keeps what it measured
    }
  } catch (const Error&) {
    // A fatal error (the context broke): show and keep what was measured, then say why.
    std::fputs(report.markdown().c_str(), stdout);
    std::fflush(stdout);
    try {
      write_outputs(options, report);
    } catch (const Error&) {
    }
    throw;
  }

  const bench::Clocks clocks_at_end = card.clocks_now();
  report.header = make_header(&clocks_at_end);
  write_outputs(options, report);
  std::fputs(report.markdown().c_str(), stdout);
  std::fflush(stdout);
  if (report.failures > 0) {
    throw Error(Status::cuda_error,
                fmt::format("{} measurement(s) failed; their rows say error (see the lines above)", report.failures));
  }
}

}  // namespace
}  // namespace glqjit

int main(int argc, char** argv) {
  using namespace glqjit;
  Options options;
  CLI::App app{
      "glq-bench: times glqjit's whole quantized linear layers (input transform, every residual stage, output "
      "transform; fp16 in and out) against cuBLAS fp16, cuBLASLt FP8 and the memory roofline, under the protocol "
      "of BENCHMARK.md. For each shape x bpw x batch: one random layer uploaded to enough distinct device copies "
      "that their weights exceed six times the L2 (at least 2), so weights come from HBM; --rounds rounds over all "
      "copies captured in one CUDA graph; one warm-up replay; --replays timed replays; the time per call is the "
      "median replay time divided by rounds x copies. Two baselines on a dense weight of the same shape run the "
      "same protocol: cuBLAS fp16 (cublasGemmEx, fp32 accumulation) and, on compute capability 8.9 or newer, FP8 "
      "(cublasLtMatmul: e4m3 weight and activation with per-tensor scales, fp16 output, fp32 accumulation, what "
      "torch._scaled_mm runs; the activation's quantization is not timed). The roofline is the bytes the layer "
      "must read (stage tensors, SU, SV, input, output) over the streaming read bandwidth measured at the start "
      "(16-byte loads over 1 GiB); efficiency = roofline / time. Needs an NVIDIA GPU of compute capability 8.0 or "
      "newer.",
      "glq-bench"};
  app.footer(
      "Output: a Markdown report on standard output (card, driver, clocks, date, versions, read bandwidth, then one "
      "row per shape x bpw x batch with glqjit, roofline, cuBLAS fp16 and FP8 times and glqjit's speedups; with "
      "--model, then two decoder-layer rows per bpw x batch, separate and grouped); progress on standard error. "
      "--json writes the same rows (the decoder-layer ones under decoder_layer_rows, each with \"grouped\"), --csv "
      "the shape rows; both are rewritten after each shape. With --plan-time: the card, then a table of the plan "
      "times (--json: the same under \"plan_time\"), written once at the end. Exit status: 0 success, 1 failure (a "
      "line says why), 2 bad command line.");
  auto* model = app.add_option("--model", options.model,
                               "a Hugging Face config.json (e.g. models/llama-3-8b.json), read as glq-tune reads it: "
                               "one row per distinct linear shape of the model, at the bpw its "
                               "quantization_config.layer_bpw gives (else at each --bpw); one grouped row per group "
                               "of linears that read the same input (q+k+v, gate+up), timed as one grouped forward "
                               "(glqjit::LinearGroup: one kernel launch up to batch 4, else "
                               "one linear at a time), its shape the merged one (out features summed), against "
                               "cuBLAS fp16 and FP8 on that dense merged shape (its roofline: the linears' tensors, "
                               "the input once, the outputs); then per bpw and batch two decoder-layer rows: the sum "
                               "of the seven linears of one decoder layer (q, k, v, o, gate, up, down) each launched "
                               "separately, and the grouped sum (q+k+v, o, gate+up, down); biases are left out. With "
                               "--plan-time, the model whose every linear is planned instead (see there)")
                    ->type_name("FILE");
  app.add_option("--shapes", options.shapes,
                 "comma-separated OUTxIN shapes (out_features x in_features), e.g. 4096x4096,28672x4096 "
                 "(default: the shapes of BENCHMARK.md's reference table)")
      ->delimiter(',')
      ->check(shape_validator());
  auto* shape_set =
      app.add_option("--shape-set", options.shape_set,
                     "default: BENCHMARK.md's reference-table shapes (4096x4096, 6144x4096, 28672x4096, 4096x14336, "
                     "8192x8192, 8192x28672, 57344x8192, 2048x2048); benchmark: its whole shape set (every projection "
                     "of Llama-3-8B, Llama-3-70B and SmolLM3-3B and the merged qkv/gate_up shapes, 15 shapes)")
          ->check(CLI::IsMember({"default", "benchmark"}));
  app.get_option("--shapes")->excludes(shape_set);
  model->excludes(app.get_option("--shapes"));
  model->excludes(shape_set);
  app.add_option("--bpw", options.bpw,
                 "comma-separated bits per weight, 2..8 (default: 2,3,4); with --model, used where the config has no "
                 "quantization_config.layer_bpw (with --plan-time, only the first)")
      ->delimiter(',')
      ->check(CLI::Range(kMinBpw, kMaxBpw));
  app.add_option("--batch", options.batches,
                 "comma-separated batch sizes, 1..65535 (default: 1; BENCHMARK.md's set is "
                 "1,2,4,8,16,32,64,128,256,1024); with --plan-time, the largest is every linear's max_batch")
      ->delimiter(',')
      ->check(CLI::Range(1, kMaxBatch));
  app.add_option("--device", options.device, "CUDA device ordinal (default: 0)")->check(CLI::Range(0, 1023));
  app.add_option("--cache", options.cache,
                 "kernel store to read and fill (default: $GLQJIT_CACHE, else $XDG_CACHE_HOME/glqjit/glqjit.db, else "
                 "~/.cache/glqjit/glqjit.db); tuning records in it choose the variants")
      ->type_name("PATH");
  app.add_option("--json", options.json, "also write the header and rows as JSON to FILE")->type_name("FILE");
  app.add_option("--csv", options.csv, "also write the rows as CSV to FILE")->type_name("FILE");
  app.add_flag("--no-cublas", options.no_cublas, "skip the cuBLAS fp16 baseline");
  app.add_flag("--no-fp8", options.no_fp8, "skip the cuBLASLt FP8 baseline");
  app.add_option("--rounds", options.rounds, "rounds over all copies in the captured graph (default: 20)")
      ->check(CLI::Range(1, 100000));
  app.add_option("--replays", options.replays,
                 "timed replays of the graph; the median is reported (default: 5); with --plan-time, the warm passes")
      ->check(CLI::Range(1, 100000));
  app.add_option("--variant", options.variant,
                 "variant parts over the default variant of each batch's bucket (over that kernel family's default "
                 "when the parts say family=1, 2 or 3), e.g. \"family=2\", \"family=3 wgmma=0\" or \"batch_tiles=8 "
                 "k_split=2\" (glq-dump "
                 "kernel --emit info shows the defaults); for a --model group, the variant of its one kernel (which "
                 "must be family=1); a bucket where the result is not legal keeps its default, with a line saying "
                 "why")
      ->check(CLI::Validator(
          [](std::string& text) -> std::string {
            try {
              parse_variant(text);
              return {};
            } catch (const Error& error) {
              return error.what();
            }
          },
          "PARTS", "VARIANT"));
  app.add_flag("--plan-time", options.plan_time,
               "with --model, time no kernels: plan the whole model as a serving process does at start, one "
               "glqjit::Linear per linear in a fresh Context (as glqjit_linear_create makes them, every batch bucket "
               "up to max_batch planned at create): each decoder layer's q, k, v, o, gate, up and down "
               "(num_hidden_layers x 7) at the first --bpw or, where the config has quantization_config.layer_bpw, "
               "the linears it names at their bpw; fp16, biases where the config has them, max_batch the largest "
               "--batch; the weights one random layer per distinct shape x bpw on the device, which every linear of "
               "it reads in place. Without a store to open, a temporary one serves the run. A cold "
               "pass first fills the kernel store where kernels are missing (its time and how many kernel sets it "
               "compiled are reported); then --replays warm passes, each timed from the first create to the last "
               "create's return: their median, min and max, the time per linear (median, mean, max, and of the first "
               "linear of each spec, which loads its kernel sets from the store) and the modules each pass loaded, "
               "against BENCHMARK.md's targets (a whole Llama-3-70B plan under 0.5 s, one linear under 1 ms). Refuses "
               "--csv and --variant; --rounds, --no-cublas and --no-fp8 do nothing here")
      ->needs(model)
      ->excludes(app.get_option("--csv"))
      ->excludes(app.get_option("--variant"));
  return run_tool("glq-bench", app, argc, argv, [&] { options.plan_time ? run_plan_time(options) : run(options); });
}
