// glq-bench --plan-time: how long a serving process takes to plan every linear of a model from a
// warm kernel store (BENCHMARK.md, Compile and load: a whole Llama-3-70B plan under 0.5 s, a layer
// whose kernels are cached under 1 ms). A pass creates one glqjit::Linear per linear of the model in
// a fresh Context, as glqjit_linear_create does, so that reading the store and loading modules are
// counted; the first pass fills the store where kernels are missing, the others are timed warm.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "codegen/spec.hpp"
#include "runtime/context.hpp"

namespace glqjit::bench {

// BENCHMARK.md's targets.
inline constexpr double kModelPlanTargetSeconds = 0.5;  // a whole Llama-3-70B plan from a warm store
inline constexpr double kLinearPlanTargetMs = 1.0;      // one layer whose kernels are cached

// One kind of linear of the model: a role at one bpw, and how many of its decoder layers have it.
struct PlannedKind {
  std::string role;  // "q_proj"
  LinearSpec spec;
  int count = 0;
};

// What every pass plans, read from a config.json before any GPU work.
struct ModelPlan {
  std::string config_path;
  std::string model_name;  // model_type, else the config's folder
  int decoder_layers = 0;
  std::vector<PlannedKind> kinds;
  bool bpw_from_layer_bpw = false;  // else every linear is at the default bpw read_model_plan was given
  int max_batch = 1;

  int linear_count() const;
  std::vector<int> bpws() const;  // distinct, ascending
  // Indices into `kinds`, one per linear, in the order they are created: in rounds of one linear of
  // each kind, which is layer after layer (q, k, v, o, gate, up, down) when every kind has a linear
  // in every layer, as a serving stack creates them.
  std::vector<size_t> creation_order() const;
  // The positions in creation_order() where a spec comes first: the creates that load its kernel
  // sets from the store (or compile them), while every later linear of the spec shares them.
  std::vector<size_t> first_of_each_spec() const;
};

// The linears read_model_config finds in `config_path` (tuner/model_config.hpp): each at the bpw
// quantization_config.layer_bpw gives it, else at `default_bpw`; biases where the config has them;
// fp16 activations. Throws Error naming the file and the problem, or the unsupported shape or bpw.
ModelPlan read_model_plan(const std::string& config_path, int default_bpw, int max_batch);

// One pass over every linear of the model.
struct PlanPass {
  double seconds = 0;             // from the first create to the last create's return
  double context_ms = 0;          // creating the pass's Context, before the first create
  std::vector<double> create_ms;  // each linear's create, in creation order
  size_t modules_loaded = 0;      // by the pass's Context once every linear is planned
};

// A kernel set the model's linears load: one per distinct spec and batch bucket.
struct PlannedKernelSet {
  std::string spec;
  int bucket = 0;
  std::string variant;
  bool tuned = false;  // the variant came from a tuning record in the store
  std::string key_digest;
  bool in_store = false;  // after the cold pass
  // Stored since the cold pass began: compiled by it (or, on a store other processes fill at the
  // same time, by one of them).
  bool stored_by_cold_pass = false;
};

struct PlanTimes {
  ModelPlan plan;
  PlanPass cold;
  std::vector<PlanPass> warm;
  std::vector<PlannedKernelSet> kernel_sets;

  nlohmann::ordered_json json() const;
  std::string markdown() const;  // a section of glq-bench's report
};

// The cold pass, then `warm_passes` (at least one) timed ones. `context` holds the weights every pass reads (one
// random layer per distinct spec, read in place by every linear of it) and names the store each
// pass's Context opens; its store must not be null. Progress lines go to `progress`. Throws Error
// naming the linear and the pass that failed, and why.
PlanTimes measure_plan_times(Context& context, const ModelPlan& plan, int warm_passes,
                             const std::function<void(const std::string&)>& progress);

}  // namespace glqjit::bench
