#include "tools/bench_plan_time.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <map>
#include <memory>
#include <numeric>
#include <set>

#include "codegen/source.hpp"
#include "glqjit/error.hpp"
#include "runtime/kernel_binary.hpp"
#include "runtime/linear.hpp"
#include "tools/bench_median.hpp"
#include "tools/tool_main.hpp"
#include "tuner/device_layer.hpp"
#include "tuner/model_config.hpp"

namespace glqjit::bench {
namespace {

using Json = nlohmann::ordered_json;
using Clock = std::chrono::steady_clock;

double ms_between(Clock::time_point start, Clock::time_point end) {
  return std::chrono::duration<double, std::milli>(end - start).count();
}

// "q_proj 8192x8192 x 80"; the bpw too where the model has several, "with bias" where it has one.
std::string kind_label(const PlannedKind& kind, bool several_bpws) {
  return fmt::format("{} {}{}{} x {}", kind.role, Shape{kind.spec.out_features, kind.spec.in_features}.name(),
                     several_bpws ? fmt::format(" at {} bpw", kind.spec.bpw) : "",
                     kind.spec.has_bias ? " with bias" : "", kind.count);
}

// One random layer on the device per distinct spec of the model; every linear of a spec reads its
// stage tensors, SU and SV in place, as a serving stack's linears read their checkpoint's.
class ModelWeights {
 public:
  ModelWeights(const Context& context, const ModelPlan& plan) {
    uint64_t seed = 1;
    for (const PlannedKind& kind : plan.kinds) {
      auto [layer, added] = layer_of_spec_.try_emplace(kind.spec.canonical());
      if (added) {
        layer->second = upload_layer(context.cu(), random_layers(kind.spec, seed++).front(), kind.spec.dtype);
        for (const auto* buffers : {&layer->second.stages, &layer->second.vectors}) {
          for (const DeviceBuffer& buffer : *buffers) bytes_ += double(buffer.bytes());
        }
      }
      weights_of_kind_.push_back(&layer->second.weights);
    }
  }

  const DeviceWeights& of_kind(size_t kind) const { return *weights_of_kind_[kind]; }
  size_t layers() const { return layer_of_spec_.size(); }
  double bytes() const { return bytes_; }

 private:
  std::map<std::string, UploadedLayer> layer_of_spec_;
  std::vector<const DeviceWeights*> weights_of_kind_;  // into layer_of_spec_, whose nodes stay put
  double bytes_ = 0;
};

// Creates every linear of `plan` in a fresh Context over the store at `store_path` and times that;
// `describe_first` then sees the first linear of each spec, before all are destroyed.
PlanPass plan_pass(int device, const std::string& store_path, const ModelPlan& plan, const ModelWeights& weights,
                   const std::string& pass_name, const std::function<void(const Linear&)>& describe_first) {
  const std::vector<size_t> order = plan.creation_order();
  PlanPass pass;
  const Clock::time_point context_start = Clock::now();
  Context context(device, ContextOptions{store_path, false, false});
  pass.context_ms = ms_between(context_start, Clock::now());
  // glqjit_linear_create's options without flags: every batch bucket up to max_batch planned now.
  LinearOptions options;
  options.max_batch = plan.max_batch;
  std::vector<std::unique_ptr<Linear>> linears;  // declared after `context`, so destroyed before it
  linears.reserve(order.size());
  pass.create_ms.reserve(order.size());
  const Clock::time_point start = Clock::now();
  Clock::time_point end = start;
  for (size_t i = 0; i < order.size(); ++i) {
    const PlannedKind& kind = plan.kinds[order[i]];
    const Clock::time_point create_start = Clock::now();
    try {
      linears.push_back(std::make_unique<Linear>(context, kind.spec, weights.of_kind(order[i]), options));
    } catch (const Error& error) {
      throw Error(error.status(), fmt::format("{}: planning linear {} of {} ({}, {}): {}", pass_name, i + 1,
                                              order.size(), kind.role, kind.spec.canonical(), error.what()));
    }
    end = Clock::now();
    pass.create_ms.push_back(ms_between(create_start, end));
  }
  pass.seconds = ms_between(start, end) / 1e3;
  pass.modules_loaded = context.modules().loaded_count();
  if (describe_first) {
    for (size_t position : plan.first_of_each_spec()) describe_first(*linears[position]);
  }
  return pass;
}

// What the report says of the warm passes.
struct WarmSummary {
  double median_s = 0, min_s = 0, max_s = 0;
  std::vector<double> create_ms;        // every warm create
  std::vector<double> first_create_ms;  // those that load a spec's kernel sets
  double context_median_ms = 0;

  double linear_mean_ms() const {
    return std::accumulate(create_ms.begin(), create_ms.end(), 0.0) / double(create_ms.size());
  }
};

WarmSummary summarize(const PlanTimes& times) {
  WarmSummary summary;
  std::vector<double> seconds, context_ms;
  const std::vector<size_t> firsts = times.plan.first_of_each_spec();
  for (const PlanPass& pass : times.warm) {
    seconds.push_back(pass.seconds);
    context_ms.push_back(pass.context_ms);
    summary.create_ms.insert(summary.create_ms.end(), pass.create_ms.begin(), pass.create_ms.end());
    for (size_t position : firsts) summary.first_create_ms.push_back(pass.create_ms[position]);
  }
  summary.median_s = median(seconds);
  summary.min_s = *std::min_element(seconds.begin(), seconds.end());
  summary.max_s = *std::max_element(seconds.begin(), seconds.end());
  summary.context_median_ms = median(context_ms);
  return summary;
}

double max_of(const std::vector<double>& values) { return *std::max_element(values.begin(), values.end()); }

size_t compiled_count(const std::vector<PlannedKernelSet>& sets) {
  return size_t(
      std::count_if(sets.begin(), sets.end(), [](const PlannedKernelSet& set) { return set.stored_by_cold_pass; }));
}

size_t missing_count(const std::vector<PlannedKernelSet>& sets) {
  return size_t(std::count_if(sets.begin(), sets.end(), [](const PlannedKernelSet& set) { return !set.in_store; }));
}

std::vector<int> buckets_of(const std::vector<PlannedKernelSet>& sets) {
  std::set<int> buckets;
  for (const PlannedKernelSet& set : sets) buckets.insert(set.bucket);
  return {buckets.begin(), buckets.end()};
}

std::string joined(const std::vector<int>& values) {
  std::string text;
  for (int value : values) text += (text.empty() ? "" : ", ") + std::to_string(value);
  return text;
}

const char* met(bool is_met) { return is_met ? "met" : "not met"; }

}  // namespace

int ModelPlan::linear_count() const {
  int count = 0;
  for (const PlannedKind& kind : kinds) count += kind.count;
  return count;
}

std::vector<int> ModelPlan::bpws() const {
  std::set<int> bpws;
  for (const PlannedKind& kind : kinds) bpws.insert(kind.spec.bpw);
  return {bpws.begin(), bpws.end()};
}

std::vector<size_t> ModelPlan::creation_order() const {
  std::vector<size_t> order;
  std::vector<int> left;
  for (const PlannedKind& kind : kinds) left.push_back(kind.count);
  for (bool created = true; created;) {
    created = false;
    for (size_t k = 0; k < kinds.size(); ++k) {
      if (left[k] == 0) continue;
      order.push_back(k);
      --left[k];
      created = true;
    }
  }
  return order;
}

std::vector<size_t> ModelPlan::first_of_each_spec() const {
  const std::vector<size_t> order = creation_order();
  std::set<std::string> seen;
  std::vector<size_t> firsts;
  for (size_t position = 0; position < order.size(); ++position) {
    if (seen.insert(kinds[order[position]].spec.canonical()).second) firsts.push_back(position);
  }
  return firsts;
}

ModelPlan read_model_plan(const std::string& config_path, int default_bpw, int max_batch) {
  const ModelConfig config = parse_model_config(config_path);
  const ModelShapes shapes = model_shapes(config, config_path);
  if (shapes.linears.empty()) {
    throw Error(Status::invalid_argument,
                fmt::format("--model {}: nothing to plan: its quantization_config.layer_bpw names no linear",
                            config_path));
  }
  ModelPlan plan;
  plan.config_path = config_path;
  plan.model_name = shapes.name;
  plan.decoder_layers = config.num_hidden_layers;
  plan.max_batch = max_batch;
  for (const ModelLinear& linear : shapes.linears) {
    PlannedKind kind;
    kind.role = linear.name;
    kind.count = linear.count;
    kind.spec.in_features = linear.in_features;
    kind.spec.out_features = linear.out_features;
    kind.spec.bpw = linear.bpw != 0 ? linear.bpw : default_bpw;
    kind.spec.dtype = DType::f16;
    kind.spec.has_bias = linear.has_bias;
    kind.spec.legacy_single_block = shapes.legacy_single_block;
    try {
      kind.spec.geometry();
      kind.spec.recipe();
    } catch (const Error& error) {
      throw Error(error.status(), fmt::format("--model {}: {}: {}", config_path, linear.name, error.what()));
    }
    plan.bpw_from_layer_bpw = plan.bpw_from_layer_bpw || linear.bpw != 0;
    plan.kinds.push_back(std::move(kind));
  }
  return plan;
}

PlanTimes measure_plan_times(Context& context, const ModelPlan& plan, int warm_passes,
                             const std::function<void(const std::string&)>& progress) {
  Store* store = context.store();
  if (store == nullptr) throw Error(Status::internal, "--plan-time was given a context without a kernel store");
  if (warm_passes < 1) throw Error(Status::invalid_argument, "--plan-time needs at least one warm pass (--replays)");
  const int device = context.device().ordinal;
  const int linears = plan.linear_count();

  const Clock::time_point start = Clock::now();
  const ModelWeights weights(context, plan);
  progress(fmt::format("weights: {} random layer(s), one per distinct shape x bpw, {:.1f} MB on the device, made in "
                       "{:.1f} s",
                       weights.layers(), weights.bytes() / 1e6, ms_between(start, Clock::now()) / 1e3));

  PlanTimes times;
  times.plan = plan;
  progress(fmt::format("cold pass: planning {} linears (kernel sets the store lacks are compiled)", linears));
  const std::time_t cold_start = std::time(nullptr);
  times.cold = plan_pass(device, store->path(), plan, weights, "the cold pass", [&](const Linear& first) {
    for (const Linear::BucketInfo& bucket : first.buckets()) {
      const GeneratedKernel kernel =
          generate_kernel(first.spec(), bucket.variant, bucket.bucket, context.device().arch);
      PlannedKernelSet set;
      set.spec = first.spec().canonical();
      set.bucket = bucket.bucket;
      set.variant = bucket.variant.canonical();
      set.tuned = bucket.tuned;
      set.key_digest = make_kernel_key(kernel).digest();
      times.kernel_sets.push_back(std::move(set));
    }
  });
  for (PlannedKernelSet& set : times.kernel_sets) {
    const std::optional<CompiledKernel> stored = store->find_kernel(set.key_digest);
    set.in_store = stored.has_value();
    set.stored_by_cold_pass = stored && stored->created_at >= int64_t(cold_start);
  }
  progress(fmt::format("cold pass: {:.3f} s; {} of {} kernel set(s) compiled into the store; {} module(s) loaded",
                       times.cold.seconds, compiled_count(times.kernel_sets), times.kernel_sets.size(),
                       times.cold.modules_loaded));
  if (const size_t missing = missing_count(times.kernel_sets); missing > 0) {
    progress(fmt::format("{} kernel set(s) are not in the store {} after the cold pass (is it read-only?): every warm "
                         "pass compiles them again",
                         missing, store->path()));
  }

  for (int p = 1; p <= warm_passes; ++p) {
    times.warm.push_back(plan_pass(device, store->path(), plan, weights, fmt::format("warm pass {}", p), nullptr));
    const PlanPass& pass = times.warm.back();
    progress(fmt::format("warm pass {}/{}: {:.3f} s ({:.3f} ms per linear), {} module(s) loaded", p, warm_passes,
                         pass.seconds, pass.seconds * 1e3 / linears, pass.modules_loaded));
  }
  return times;
}

Json PlanTimes::json() const {
  const WarmSummary summary = summarize(*this);
  const int linears = plan.linear_count();
  auto pass_json = [&](const PlanPass& pass) {
    return Json{{"seconds", pass.seconds},
                {"per_linear_ms", pass.seconds * 1e3 / linears},
                {"slowest_linear_ms", max_of(pass.create_ms)},
                {"context_ms", pass.context_ms},
                {"modules_loaded", pass.modules_loaded}};
  };
  Json kinds = Json::array();
  for (const PlannedKind& kind : plan.kinds) {
    kinds.push_back({{"role", kind.role},
                     {"shape", Shape{kind.spec.out_features, kind.spec.in_features}.name()},
                     {"bpw", kind.spec.bpw},
                     {"bias", kind.spec.has_bias},
                     {"count", kind.count},
                     {"spec", kind.spec.canonical()}});
  }
  Json cold_json = pass_json(cold);
  cold_json["kernel_sets_compiled"] = compiled_count(kernel_sets);
  Json warm_json = Json::array();
  for (const PlanPass& pass : warm) warm_json.push_back(pass_json(pass));
  Json sets = Json::array();
  for (const PlannedKernelSet& set : kernel_sets) {
    sets.push_back({{"spec", set.spec},
                    {"batch_bucket", set.bucket},
                    {"variant", set.variant},
                    {"tuned", set.tuned},
                    {"key_digest", set.key_digest},
                    {"in_store", set.in_store},
                    {"stored_by_cold_pass", set.stored_by_cold_pass}});
  }
  const double linear_median_ms = median(summary.create_ms);
  const double first_median_ms = median(summary.first_create_ms);
  Json document;
  document["config"] = plan.config_path;
  document["model"] = plan.model_name;
  document["decoder_layers"] = plan.decoder_layers;
  document["linears"] = linears;
  document["kinds"] = kinds;
  document["bpw"] = plan.bpws();
  document["bpw_from"] = plan.bpw_from_layer_bpw ? "quantization_config.layer_bpw" : "--bpw";
  document["dtype"] = "fp16";
  document["max_batch"] = plan.max_batch;
  document["batch_buckets"] = buckets_of(kernel_sets);
  document["timing"] =
      "each pass creates one glqjit::Linear per linear (every batch bucket planned at create) in a fresh Context; "
      "seconds run from the first create to the last create's return (steady clock); creating the Context is "
      "context_ms, not counted";
  document["cold_pass"] = cold_json;
  document["warm_passes"] = warm_json;
  document["warm_seconds"] = {{"median", summary.median_s}, {"min", summary.min_s}, {"max", summary.max_s}};
  document["warm_linear_ms"] = {{"median", linear_median_ms},
                                {"mean", summary.linear_mean_ms()},
                                {"max", max_of(summary.create_ms)},
                                {"creates", summary.create_ms.size()}};
  document["warm_first_of_each_spec_ms"] = {{"median", first_median_ms},
                                            {"max", max_of(summary.first_create_ms)},
                                            {"creates", summary.first_create_ms.size()}};
  document["kernel_sets"] = sets;
  document["targets"] = {{"model_seconds", kModelPlanTargetSeconds},
                         {"model_seconds_met", summary.median_s <= kModelPlanTargetSeconds},
                         {"linear_ms", kLinearPlanTargetMs},
                         {"linear_ms_met", linear_median_ms <= kLinearPlanTargetMs},
                         {"first_of_each_spec_ms_met", first_median_ms <= kLinearPlanTargetMs}};
  return document;
}

std::string PlanTimes::markdown() const {
  const WarmSummary summary = summarize(*this);
  const int linears = plan.linear_count();
  const std::vector<int> bpws = plan.bpws();
  std::string kinds_text;
  for (const PlannedKind& kind : plan.kinds) {
    kinds_text += (kinds_text.empty() ? "" : ", ") + kind_label(kind, bpws.size() > 1);
  }
  std::set<size_t> modules_per_pass;
  for (const PlanPass& pass : warm) modules_per_pass.insert(pass.modules_loaded);
  std::string modules_text;
  for (size_t count : modules_per_pass) modules_text += (modules_text.empty() ? "" : " or ") + std::to_string(count);
  std::string warm_seconds;
  for (const PlanPass& pass : warm) {
    warm_seconds += fmt::format("{}{:.3f}", warm_seconds.empty() ? "" : ", ", pass.seconds);
  }
  const double linear_median_ms = median(summary.create_ms);
  const double first_median_ms = median(summary.first_create_ms);

  std::string text = "\n## Plan time: every linear of the model, planned as a serving process does at start\n\n";
  text += "| | value | BENCHMARK.md target |\n|---|---|---|\n";
  text += fmt::format("| model | {} ({}), {} decoder layers | |\n", plan.model_name, plan.config_path,
                      plan.decoder_layers);
  text += fmt::format("| linears | {}: {} | |\n", linears, kinds_text);
  text += fmt::format("| bpw | {} ({}) | |\n", joined(bpws),
                      plan.bpw_from_layer_bpw ? "quantization_config.layer_bpw"
                                              : "the first --bpw: the config has no quantization_config.layer_bpw");
  text += fmt::format("| max_batch | {}: batch bucket(s) {}, each planned at create | |\n", plan.max_batch,
                      joined(buckets_of(kernel_sets)));
  text += fmt::format("| cold pass | {:.3f} s ({:.2f} ms per linear); {} of {} kernel set(s) compiled into the "
                      "store | |\n",
                      cold.seconds, cold.seconds * 1e3 / linears, compiled_count(kernel_sets), kernel_sets.size());
  text += fmt::format("| warm passes ({}) | median {:.3f} s, min {:.3f} s, max {:.3f} s | {} s for Llama-3-70B: {} |\n",
                      warm.size(), summary.median_s, summary.min_s, summary.max_s, kModelPlanTargetSeconds,
                      met(summary.median_s <= kModelPlanTargetSeconds));
  text += fmt::format("| one linear, warm | median {:.3f} ms, mean {:.3f} ms, max {:.3f} ms ({} creates) | {} ms: "
                      "{} |\n",
                      linear_median_ms, summary.linear_mean_ms(), max_of(summary.create_ms), summary.create_ms.size(),
                      kLinearPlanTargetMs, met(linear_median_ms <= kLinearPlanTargetMs));
  text += fmt::format(
      "| the first linear of each spec, warm (loads its kernel sets from the store) | median {:.3f} ms, max {:.3f} ms "
      "({} creates) | {} ms: {} |\n",
      first_median_ms, max_of(summary.first_create_ms), summary.first_create_ms.size(), kLinearPlanTargetMs,
      met(first_median_ms <= kLinearPlanTargetMs));
  const size_t tuned = size_t(
      std::count_if(kernel_sets.begin(), kernel_sets.end(), [](const PlannedKernelSet& set) { return set.tuned; }));
  text += fmt::format("| modules loaded per pass | {} for {} linears (the model's {} kernel set(s), {} of them "
                      "tuned) | |\n",
                      modules_text, linears, kernel_sets.size(), tuned);
  text += fmt::format(
      "\nEach pass creates one glqjit::Linear per linear (fp16; every batch bucket up to max_batch planned at create, "
      "as glqjit_linear_create does without GLQJIT_LINEAR_LAZY_BUCKETS) in a fresh Context over the store, in rounds "
      "of one linear of each kind (layer after layer), and is timed from the first create to the last create's "
      "return (steady clock); creating the Context (median {:.2f} ms: its store opened, the CUDA context already "
      "there, since the weights live in it) is not counted. The weights are one random layer per distinct shape x "
      "bpw, read in place by every linear of it. Warm passes: {} s.\n",
      summary.context_median_ms, warm_seconds);
  if (const size_t missing = missing_count(kernel_sets); missing > 0) {
    text += fmt::format("\nNote: {} kernel set(s) were not in the store after the cold pass (a read-only store?), so "
                        "every warm pass compiled them again: these times are not from a warm store.\n",
                        missing);
  }
  return text;
}

}  // namespace glqjit::bench
