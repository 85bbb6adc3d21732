// glq-tune: the offline sweep a deployer runs once per GPU model. For every quantized linear a
// model needs, at every batch bucket, and for its groups of linears that read one input (q+k+v,
// gate+up) at the buckets they run as one kernel, it builds the legal variants (NVRTC, in parallel), checks
// each against the fp64 reference, times the correct ones under BENCHMARK.md's protocol, and
// keeps the winners and their cubins in the kernel store that plan() reads. Without a GPU,
// --compile-only fills a store with the default kernels for a named card.
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <random>
#include <set>

#include "cache/transfer.hpp"
#include "codegen/variant_space.hpp"
#include "format/layer.hpp"
#include "runtime/context.hpp"
#include "runtime/driver.hpp"
#include "runtime/kernel_binary.hpp"
#include "support/log.hpp"
#include "tools/tool_main.hpp"
#include "tools/tune_workers.hpp"
#include "tuner/checkpoint.hpp"
#include "tuner/device_layer.hpp"
#include "tuner/gpu_timer.hpp"
#include "tuner/gpus.hpp"
#include "tuner/input_groups.hpp"
#include "tuner/model_config.hpp"
#include "tuner/prefetch.hpp"
#include "tuner/reference_gate.hpp"
#include "tuner/shared_run.hpp"
#include "tuner/tune.hpp"

namespace glqjit {
namespace {

using Json = nlohmann::ordered_json;

// The tuner's timing: BENCHMARK.md's cold copies and replays, but two rounds over the copies
// per replay instead of twenty: a candidate then costs tens of milliseconds, and the ranking,
// not the absolute time, is what counts here (glq-bench measures the winners afterwards).
constexpr int kTuningRounds = 2;
constexpr int kTuningReplays = 5;
// A year: far beyond any tune, and small enough that the deadline it sets stays a finite time.
constexpr double kMaxBudgetMinutes = 525600;

struct Options {
  std::string model, checkpoint;
  std::vector<std::string> shapes;
  std::vector<int> bpw = {2, 3, 4};
  std::vector<int> batches = {1, 2, 4, 8, 16, 32, 64, 128, 256};
  std::string dtype = "fp16";
  double budget_minutes = 0;  // 0: no limit
  int max_candidates = 0;     // per key; 0: no limit
  std::string strategy = "walk";
  int device = 0;
  std::string cache, json;
  bool compile_only = false;
  std::string arch, gpu;
  int sm_count = 0;
  std::string devices_text;  // --devices, as given
  std::vector<int> devices;  // parsed from it
  bool worker = false;       // one of --devices' workers (tools/tune_workers.hpp)
};

// One linear the model needs, or a group of its linears that read the same input (one kernel up
// to group_one_kernel_limit's bucket: runtime/linear_group.hpp), as the tuner keys it, and the
// model's names for it.
struct Target {
  LinearSpec spec;
  std::vector<std::string> names;
};

std::vector<Target> targets_of(const Options& options) {
  ModelShapes model;
  if (!options.model.empty()) model = read_model_config(options.model);
  if (!options.checkpoint.empty()) model = read_glq_checkpoint(options.checkpoint);
  std::vector<ModelLinear>& linears = model.linears;
  for (const std::string& text : options.shapes) {
    std::string why;
    const auto shape = parse_shape(text, why);
    if (!shape) throw Error(Status::invalid_argument, why);
    linears.push_back({shape->name(), shape->in, shape->out, 0, false, 1});
  }
  const DType dtype = parse_dtype(options.dtype);
  auto spec_of = [&](const ModelLinear& linear, int bpw) {
    const LinearSpec spec{linear.in_features, linear.out_features, bpw, dtype, linear.has_bias,
                          model.legacy_single_block};
    spec.geometry();  // a shape glqjit cannot serve: say so before any work
    spec.recipe();
    return spec;
  };
  std::vector<Target> targets;
  auto add = [&](const LinearSpec& spec, const std::string& name) {
    for (Target& target : targets) {
      if (target.spec.canonical() == spec.canonical()) {
        target.names.push_back(name);
        return;
      }
    }
    targets.push_back({spec, {name}});
  };
  auto bpws_of = [&](int bpw) { return bpw != 0 ? std::vector<int>{bpw} : options.bpw; };
  for (const ModelLinear& linear : linears) {
    for (int bpw : bpws_of(linear.bpw)) add(spec_of(linear, bpw), linear.name);
  }
  // q+k+v and gate+up where they share bpw and bias, as a serving stack's LinearGroup holds them.
  for (const std::vector<ModelLinear>& part : group_by_input(linears)) {
    if (!is_whole_group(part)) continue;
    const ModelLinear& first = part.front();
    const bool alike = std::all_of(part.begin(), part.end(), [&](const ModelLinear& linear) {
      return linear.bpw == first.bpw && linear.has_bias == first.has_bias;
    });
    if (!alike) continue;
    std::string name = first.name;
    for (size_t k = 1; k < part.size(); ++k) name += "+" + linear_role(part[k].name);
    for (int bpw : bpws_of(first.bpw)) {
      std::vector<LinearSpec> shards;
      for (const ModelLinear& linear : part) shards.push_back(spec_of(linear, bpw));
      add(group_of(shards), name);
    }
  }
  if (targets.empty()) {
    throw Error(Status::invalid_argument, "nothing to tune: the model has no quantized linears (check layer_bpw)");
  }
  return targets;
}

// A target and the buckets it is tuned at.
struct TargetWork {
  const Target* target;
  std::vector<int> buckets;
};

// Every bucket for a linear; for a group, those its one kernel serves by default (beyond them its
// linears run one at a time, each tuned as its own key), none where the group cannot run as one
// kernel on this card (said on a line of its own).
std::vector<TargetWork> work_of(const std::vector<Target>& targets, const std::vector<int>& buckets, const Arch& arch,
                                int sm_count, const std::function<void(const std::string&)>& say) {
  std::vector<TargetWork> work;
  for (const Target& target : targets) {
    std::vector<int> served = buckets;
    if (target.spec.is_group()) {
      const GroupOneKernelLimit limit = group_one_kernel_limit(target.spec, arch, sm_count);
      if (limit.bucket == 0 && !served.empty() && served.front() <= kGroupOneKernelUpToBucket) {
        say(fmt::format("{} ({}): not tuned as a group, its linears run one at a time on {} ({})",
                        target.names.front(), target.spec.canonical(), arch.name(), limit.why));
      }
      std::erase_if(served, [&](int bucket) { return bucket > limit.bucket; });
    }
    if (!served.empty()) work.push_back({&target, served});
  }
  return work;
}

int key_count(const std::vector<TargetWork>& work) {
  int keys = 0;
  for (const TargetWork& w : work) keys += int(w.buckets.size());
  return keys;
}

std::vector<int> buckets_of(const std::vector<int>& batches) {
  std::set<int> buckets;
  for (int batch : batches) buckets.insert(bucket_for(batch));
  return {buckets.begin(), buckets.end()};
}

std::string format_duration(double seconds) {
  if (seconds < 60) return fmt::format("{:.0f} s", seconds);
  if (seconds < 3600) return fmt::format("{}m{:02}s", int(seconds) / 60, int(seconds) % 60);
  return fmt::format("{}h{:02}m", int(seconds) / 3600, int(seconds) % 3600 / 60);
}

// Progress on stderr: a bar redrawn in place on a terminal, plain lines otherwise (logs, CI). A
// worker of --devices writes plain lines that start with `prefix`, since its siblings share the
// terminal.
class Progress {
 public:
  explicit Progress(int keys, std::string prefix = "")
      : keys_(keys),
        start_(std::chrono::steady_clock::now()),
        tty_(prefix.empty() && isatty(STDERR_FILENO)),
        prefix_(std::move(prefix)) {}

  void candidate(const std::string& key, const TuneStep& step) {
    if (!tty_) return;
    const double fraction = (done_ + std::min(0.95, double(step.done) / std::max(1, step.asked))) / keys_;
    draw(fmt::format("{}: {} of {} candidates", key, step.done, step.asked), fraction);
  }

  void line(const std::string& text) {
    if (tty_) std::fputs("\r\033[K", stderr);
    std::fprintf(stderr, "%s%s\n", prefix_.c_str(), text.c_str());
  }

  void key_done(const std::string& text) {
    ++done_;
    line(fmt::format("[{}/{}] {}{}", done_, keys_, text, eta()));
  }

  double elapsed_s() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count(); }

 private:
  std::string eta() const {
    if (done_ == 0 || done_ == keys_) return "";
    return fmt::format("; about {} left", format_duration(elapsed_s() / done_ * (keys_ - done_)));
  }

  void draw(const std::string& text, double fraction) {
    constexpr int kWidth = 24;
    const int filled = int(fraction * kWidth);
    std::fprintf(stderr, "\r\033[K[%s%s] %3.0f%% %s%s", std::string(filled, '#').c_str(),
                 std::string(kWidth - filled, '.').c_str(), 100 * fraction, text.c_str(), eta().c_str());
    std::fflush(stderr);
  }

  int keys_;
  int done_ = 0;
  std::chrono::steady_clock::time_point start_;
  bool tty_;
  std::string prefix_;
};

// The knobs where `variant` differs from `base`, as parse_variant text ("" when none).
std::string difference(const Variant& variant, const Variant& base) {
  std::string text;
  for (const VariantKnob& knob : variant_knobs()) {
    if (variant.*knob.member == base.*knob.member) continue;
    text += fmt::format("{}{}={}", text.empty() ? "" : " ", knob.name, variant.*knob.member);
  }
  return text;
}

// The gate and timer of a key, made on first use: a key whose candidates all come from the store
// needs neither a layer's copies on the GPU nor its fp64 reference.
class LazyGate final : public Gate {
 public:
  explicit LazyGate(std::function<std::unique_ptr<Gate>()> make) : make_(std::move(make)) {}
  GateResult check(const Variant& variant) override {
    if (!made_) made_ = make_();
    return made_->check(variant);
  }

 private:
  std::function<std::unique_ptr<Gate>()> make_;
  std::unique_ptr<Gate> made_;
};

class LazyTimer final : public Timer {
 public:
  explicit LazyTimer(std::function<std::unique_ptr<Timer>()> make) : make_(std::move(make)) {}
  std::vector<double> time_us(const Variant& variant, int batch) override {
    if (!made_) made_ = make_();
    return made_->time_us(variant, batch);
  }

 private:
  std::function<std::unique_ptr<Timer>()> make_;
  std::unique_ptr<Timer> made_;
};

struct ReportRow {
  Target target;
  int bucket = 0;
  TuneOutcome outcome;
};

// How the workers of --devices went, for the report of the run that follows them.
struct WorkersReport {
  std::vector<WorkerEnd> ends;
  double seconds = 0;
};

Json report_json(const std::vector<ReportRow>& rows, const std::string& device, const std::string& store,
                 double seconds, const WorkersReport* workers) {
  Json json = {{"tool", "glq-tune"}, {"device", device}, {"store", store}, {"wall_s", seconds}};
  if (workers != nullptr) {
    Json& out = json["workers"] = Json::array();
    for (const WorkerEnd& end : workers->ends) out.push_back({{"device", end.device}, {"how", end.how}});
    json["workers_wall_s"] = workers->seconds;
  }
  Json& out = json["keys"] = Json::array();
  for (const ReportRow& row : rows) {
    const TuneOutcome& o = row.outcome;
    Json entry = {{"spec", row.target.spec.canonical()},
                  {"linears", row.target.names},
                  {"batch_bucket", row.bucket},
                  {"legal_candidates", o.legal_candidates},
                  {"measured", o.measured.size()},
                  {"measured_now", o.measured_now},
                  {"from_store", o.from_store},
                  {"default_variant", o.default_variant.canonical()},
                  {"why", o.choice.why},
                  {"seconds", {{"build", o.seconds.build}, {"gate", o.seconds.gate}, {"time", o.seconds.time}}}};
    entry["default_us"] = o.default_measurement ? Json(o.default_measurement->median_us) : Json(nullptr);
    entry["winner"] = o.choice.winner ? Json(o.choice.winner->variant.canonical()) : Json(nullptr);
    entry["winner_us"] = o.choice.winner ? Json(o.choice.winner->median_us) : Json(nullptr);
    entry["speedup_over_default"] = o.choice.winner && o.default_measurement
                                        ? Json(o.default_measurement->median_us / o.choice.winner->median_us)
                                        : Json(nullptr);
    out.push_back(entry);
  }
  return json;
}

void print_table(const std::vector<ReportRow>& rows) {
  std::printf("| linear | spec | bucket | winner (knobs over the default) | µs | default µs | speedup | measured |\n");
  std::printf("|---|---|---:|---|---:|---:|---:|---:|\n");
  for (const ReportRow& row : rows) {
    const TuneOutcome& o = row.outcome;
    const std::vector<std::string>& all = row.target.names;
    const std::string names = all.size() == 1 ? all.front() : fmt::format("{} (+{} more)", all.front(), all.size() - 1);
    if (!o.choice.winner) {
      std::printf("| %s | %s | %d | none: %s | - | - | - | %zu |\n", names.c_str(), row.target.spec.canonical().c_str(),
                  row.bucket, o.choice.why.c_str(), o.measured.size());
      continue;
    }
    const std::string knobs = difference(o.choice.winner->variant, o.default_variant);
    const double default_us = o.default_measurement ? o.default_measurement->median_us : 0;
    std::printf("| %s | %s | %d | %s | %.2f | %s | %s | %zu |\n", names.c_str(), row.target.spec.canonical().c_str(),
                row.bucket, knobs.empty() ? "default" : knobs.c_str(), o.choice.winner->median_us,
                default_us > 0 ? fmt::format("{:.2f}", default_us).c_str() : "-",
                default_us > 0 ? fmt::format("{:.2f}x", default_us / o.choice.winner->median_us).c_str() : "-",
                o.measured.size());
  }
}

void write_json_file(const std::string& path, const Json& json) {
  if (!path.empty()) write_output_file(path, json.dump(2) + "\n", "--json");
}

// The context of the GPU to tune; without a driver, the error says how to work without one.
std::unique_ptr<Context> open_context(const Options& options) {
  try {
    return std::make_unique<Context>(options.device, ContextOptions{options.cache, false, false});
  } catch (const Error& error) {
    if (error.status() != Status::no_driver) throw;
    throw Error(Status::no_driver, std::string(error.what()) +
                                       "; without a GPU, glq-tune --compile-only --gpu NAME compiles the default kernels "
                                       "for a card into the store");
  }
}

// Tunes every key on options.device; as a worker of --devices, only those no other worker has
// (tuner/shared_run.hpp). After the workers (`workers` set), every key is in the store and this
// run only reads it back for the table, tuning what a worker that died left.
void tune_on_gpu(const Options& options, const std::vector<Target>& targets, const std::vector<int>& buckets,
                 const WorkersReport* workers = nullptr) {
  const std::unique_ptr<Context> owned_context = open_context(options);
  Context& context = *owned_context;
  Store* store = context.store();
  if (store == nullptr || store->read_only()) {
    throw Error(Status::cache_error, fmt::format("glq-tune needs a writable kernel store for its records{}; pass "
                                                 "--cache PATH",
                                                 store ? " (" + store->path() + " is read-only)" : ""));
  }
  const DeviceInfo& device = context.device();
  TuneSettings settings;
  settings.device_signature = device.signature();
  settings.arch = device.arch;
  settings.sm_count = device.sm_count;
  settings.strategy = parse_strategy(options.strategy);
  if (options.max_candidates > 0) settings.max_measured = options.max_candidates;
  std::vector<std::string> notes;
  const std::vector<TargetWork> work =
      work_of(targets, buckets, device.arch, device.sm_count, [&](const std::string& note) { notes.push_back(note); });
  const int keys = key_count(work);
  Progress progress(keys, options.worker ? fmt::format("gpu {}: ", options.device) : "");
  progress.line(fmt::format("glq-tune: {} linear spec(s) and groups, {} keys on {} ({}), store {}", work.size(), keys,
                            device.name, device.arch.name(), store->path()));
  for (const std::string& note : notes) progress.line(note);
  const auto budget_end = std::chrono::steady_clock::now() +
                          std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                              std::chrono::duration<double>(options.budget_minutes * 60));
  std::vector<PrefetchJob> ahead;
  for (const TargetWork& target_work : work) {
    for (int bucket : target_work.buckets) {
      const TuneKey key{target_work.target->spec, bucket};
      ahead.push_back({key.spec, bucket, first_candidates(key, settings)});
    }
  }
  const KernelPrefetcher prefetcher(*store, device.arch, std::move(ahead));
  // Every key in order, with the seed of its target's random layers (one per target).
  struct WorkKey {
    const Target* target;
    int bucket;
    int largest_bucket;  // of the target: what its timer's copies are sized for
    uint64_t layer_seed;
  };
  std::vector<WorkKey> work_keys;
  std::random_device seeds;
  for (const TargetWork& target_work : work) {
    const uint64_t layer_seed = (uint64_t(seeds()) << 32) | seeds();
    for (int bucket : target_work.buckets) {
      work_keys.push_back({target_work.target, bucket, target_work.buckets.back(), layer_seed});
    }
  }
  std::vector<ReportRow> rows;
  // The timer of the target in hand, kept across its buckets and dropped at the next target, so
  // that one target's copies are on the GPU at a time.
  const Target* timer_target = nullptr;
  std::unique_ptr<LazyTimer> timer;
  int keys_started = 0;
  auto tune_one = [&](size_t index) {
    const WorkKey& work_key = work_keys[index];
    const Target& target = *work_key.target;
    const int bucket = work_key.bucket;
    if (timer_target != &target) {
      timer_target = &target;
      timer = std::make_unique<LazyTimer>([&context, &target, work_key]() -> std::unique_ptr<Timer> {
        return std::make_unique<LayerTimer>(context, target.spec, random_layers(target.spec, work_key.layer_seed),
                                            work_key.largest_bucket, LayerTimerOptions{kTuningRounds, kTuningReplays});
      });
    }
    if (options.budget_minutes > 0) {
      // The budget left, shared evenly among the keys left.
      const auto left = budget_end - std::chrono::steady_clock::now();
      settings.deadline = std::chrono::steady_clock::now() + left / std::max(1, keys - keys_started);
    }
    ++keys_started;
    const std::string key = fmt::format("{} bucket {}", target.spec.canonical(), bucket);
    const uint64_t gate_seed = (uint64_t(seeds()) << 32) | seeds();
    LazyGate gate([&]() -> std::unique_ptr<Gate> {
      return std::make_unique<ReferenceGate>(context, target.spec, bucket, gate_seed);
    });
    KernelBuilder builder(store, target.spec, bucket, device.arch);
    const auto start = std::chrono::steady_clock::now();
    TuneOutcome outcome = tune_key({target.spec, bucket}, settings, builder, gate, *timer, store,
                                   [&](const TuneStep& step) { progress.candidate(key, step); });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::string summary = fmt::format("{}: ", key);
    if (outcome.choice.winner) {
      const std::string knobs = difference(outcome.choice.winner->variant, outcome.default_variant);
      summary += fmt::format("{} {:.2f} µs", knobs.empty() ? "default" : "\"" + knobs + "\"",
                             outcome.choice.winner->median_us);
      if (outcome.default_measurement) {
        summary += fmt::format(" ({:.2f}x over the default)",
                               outcome.default_measurement->median_us / outcome.choice.winner->median_us);
      }
    } else {
      summary += "no winner: " + outcome.choice.why;
    }
    summary += fmt::format(", {} measured, {} from the store, in {}", outcome.measured_now, outcome.from_store,
                           format_duration(seconds));
    progress.key_done(summary);
    rows.push_back({target, bucket, std::move(outcome)});
  };
  if (options.worker) {
    std::vector<std::string> key_names;
    for (const WorkKey& work_key : work_keys) {
      key_names.push_back(fmt::format("{} | {} | bucket {}", settings.device_signature, work_key.target->spec.canonical(),
                                      work_key.bucket));
    }
    const SharedRunCounts counts = for_each_shared_key(store->path(), key_names, tune_one);
    progress.line(fmt::format("glq-tune worker: {} keys taken first here, {} after another worker had them",
                              counts.taken, counts.waited_for));
  } else {
    for (size_t index = 0; index < work_keys.size(); ++index) tune_one(index);
  }
  PhaseSeconds total;
  for (const ReportRow& row : rows) {
    total.build += row.outcome.seconds.build;
    total.gate += row.outcome.seconds.gate;
    total.time += row.outcome.seconds.time;
  }
  progress.line(fmt::format("glq-tune: {} keys in {} (building {}, checking {}, timing {})", keys,
                            format_duration(progress.elapsed_s()), format_duration(total.build),
                            format_duration(total.gate), format_duration(total.time)));
  if (options.worker) return;  // the run that started the workers reports
  print_table(rows);
  const double seconds = progress.elapsed_s() + (workers != nullptr ? workers->seconds : 0);
  write_json_file(options.json, report_json(rows, device.signature(), store->path(), seconds, workers));
}

// --devices: a worker per listed GPU over one store, then the table from the store on the first.
void tune_with_workers(const Options& options, const std::vector<Target>& targets, const std::vector<int>& buckets,
                       const std::vector<std::string>& arguments) {
  std::string store_path, signature;
  for (int device : std::set<int>(options.devices.begin(), options.devices.end())) {
    Options one = options;
    one.device = device;
    const std::unique_ptr<Context> context = open_context(one);
    if (context->store() == nullptr) throw Error(Status::cache_error, "glq-tune --devices needs a kernel store; pass --cache PATH");
    store_path = context->store()->path();
    const std::string here = context->device().signature();
    if (!signature.empty() && here != signature) {
      throw Error(Status::invalid_argument,
                  fmt::format("--devices mixes GPU models ({} and {}); tuning records hold for one model, so tune each "
                              "model in a run of its own",
                              signature, here));
    }
    signature = here;
  }
  std::string list;
  for (int device : options.devices) list += fmt::format("{}{}", list.empty() ? "" : ",", device);
  std::fprintf(stderr, "glq-tune: %zu workers on GPUs %s, sharing the keys through %s\n", options.devices.size(),
               list.c_str(), store_path.c_str());
  const auto start = std::chrono::steady_clock::now();
  WorkersReport report;
  report.ends = run_workers(arguments, options.devices);
  report.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<std::string> failed;
  for (const WorkerEnd& end : report.ends) {
    if (end.finished) continue;
    failed.push_back(fmt::format("the worker on GPU {} {}", end.device, end.how));
    std::fprintf(stderr, "glq-tune: %s; the other workers, or this last pass, tune what it left\n",
                 failed.back().c_str());
  }
  std::fprintf(stderr, "glq-tune: the workers are done in %s; the table, from the store, on GPU %d:\n",
               format_duration(report.seconds).c_str(), options.devices.front());
  Options summary = options;
  summary.device = options.devices.front();
  tune_on_gpu(summary, targets, buckets, &report);
  if (!failed.empty()) {
    throw Error(Status::internal, fmt::format("{} (every key is tuned now; see above)", fmt::join(failed, "; ")));
  }
}

// Ahead of time, without a GPU: the default kernel set of every key for a named card.
void compile_only(const Options& options, const std::vector<Target>& targets, const std::vector<int>& buckets) {
  if (options.arch.empty() && options.gpu.empty()) {
    throw Error(Status::invalid_argument, "--compile-only needs the card: --gpu NAME, or --arch sm_XX with --sm-count N");
  }
  Arch arch = parse_arch(options.arch.empty() ? std::string(find_known_gpu(options.gpu).arch) : options.arch);
  int sm_count = options.sm_count;
  if (!options.gpu.empty()) {
    const KnownGpu& gpu = find_known_gpu(options.gpu);
    if (!options.arch.empty() && parse_arch(std::string(gpu.arch)).name() != arch.name()) {
      throw Error(Status::invalid_argument, fmt::format("--gpu {} is {}, not --arch {}", gpu.name, gpu.arch, options.arch));
    }
    if (sm_count == 0) sm_count = gpu.sm_count;
  }
  if (sm_count == 0) {
    throw Error(Status::invalid_argument,
                fmt::format("--compile-only --arch {} needs --sm-count N (the default variants depend on it) or --gpu "
                            "NAME",
                            arch.name()));
  }
  std::unique_ptr<Store> store = open_tool_store(options.cache, false);
  if (store == nullptr || store->read_only()) {
    throw Error(Status::cache_error, "--compile-only needs a writable kernel store; pass --cache PATH");
  }
  Progress progress(1);
  const std::vector<TargetWork> work =
      work_of(targets, buckets, arch, sm_count, [&](const std::string& note) { progress.line(note); });
  progress.line(fmt::format("glq-tune --compile-only: {} linear spec(s) and groups, {} keys for {} with {} SMs into {}",
                            work.size(), key_count(work), arch.name(), sm_count, store->path()));
  std::vector<GeneratedKernel> generated;
  for (const TargetWork& target_work : work) {
    const LinearSpec& spec = target_work.target->spec;
    for (int bucket : target_work.buckets) {
      generated.push_back(generate_kernel(spec, default_variant(spec, bucket, arch, sm_count), bucket, arch));
    }
  }
  // One parallel compile of every miss.
  const std::vector<ObtainedKernel> obtained = obtain_each_kernel(store.get(), generated, ObtainOptions{});
  int failed = 0;
  for (size_t i = 0; i < obtained.size(); ++i) {
    const std::string key = fmt::format("[{}/{}] {} bucket {}", i + 1, obtained.size(), generated[i].spec.canonical(),
                                        generated[i].batch_bucket);
    if (obtained[i].error) {
      ++failed;
      progress.line(fmt::format("{}: FAILED: {}", key, obtained[i].error->what()));
    } else {
      progress.line(fmt::format("{}: {} ({})", key, obtained[i].binary->key.digest().substr(0, 16),
                                obtained[i].binary->from_store ? "in the store" : "compiled"));
    }
  }
  progress.line(fmt::format("glq-tune --compile-only: {} kernel sets in the store, {} failed, in {}",
                            obtained.size() - failed, failed, format_duration(progress.elapsed_s())));
  Json json = {{"tool", "glq-tune"},  {"compile_only", true},      {"arch", arch.name()},
               {"sm_count", sm_count}, {"store", store->path()}, {"wall_s", progress.elapsed_s()}};
  Json& keys = json["keys"] = Json::array();
  for (size_t i = 0; i < obtained.size(); ++i) {
    Json entry = {{"spec", generated[i].spec.canonical()},
                  {"batch_bucket", generated[i].batch_bucket},
                  {"variant", generated[i].variant.canonical()}};
    if (obtained[i].error) {
      entry["error"] = obtained[i].error->what();
    } else {
      entry["kernel_digest"] = obtained[i].binary->key.digest();
      entry["from_store"] = obtained[i].binary->from_store;
    }
    keys.push_back(entry);
  }
  write_json_file(options.json, json);
  if (failed > 0) throw Error(Status::compile_error, fmt::format("{} kernel set(s) did not compile (see above)", failed));
}

void run_tune(const Options& options, const std::vector<std::string>& arguments) {
  const std::vector<Target> targets = targets_of(options);
  const std::vector<int> buckets = buckets_of(options.batches);
  check_output_writable(options.json, "--json");
  if (options.compile_only) return compile_only(options, targets, buckets);
  try {
    if (!options.devices.empty() && !options.worker) return tune_with_workers(options, targets, buckets, arguments);
    tune_on_gpu(options, targets, buckets);
  } catch (const Error& error) {
    // A card named on a machine without a GPU: what can be done here is compiling for it.
    if (error.status() != Status::no_driver || (options.gpu.empty() && options.arch.empty())) throw;
    std::fprintf(stderr, "glq-tune: no GPU here (%s); compiling ahead of time for %s instead\n", error.what(),
                 options.gpu.empty() ? options.arch.c_str() : options.gpu.c_str());
    compile_only(options, targets, buckets);
  }
}

std::string describe(const TransferCounts& counts) {
  return fmt::format("{} kernel set(s), {} tuning record(s), {} measurement(s)", counts.kernels, counts.tuning,
                     counts.measurements);
}

}  // namespace
}  // namespace glqjit

int main(int argc, char** argv) {
  using namespace glqjit;
  CLI::App app{
      "glq-tune: measure every legal kernel variant of a model's quantized linears on this GPU and keep the winners "
      "(and their kernels) in the kernel store that glqjit's plan reads"};
  app.footer(
      "Examples:\n"
      "  glq-tune --model models/llama-3-8b.json --bpw 2,3,4          tune on GPU 0 into the default store\n"
      "  glq-tune CHECKPOINT_FOLDER --cache model.db                 the exact linears of a GLQ checkpoint\n"
      "  glq-tune --shape 4096x4096 --bpw 2 --batch 1,16             one shape\n"
      "  glq-tune --model M.json --compile-only --gpu H100-SXM       no GPU: the default kernels for a card\n"
      "  glq-tune --model M.json --gpu H200                         tune here, or compile for an H200 without a GPU\n"
      "  glq-tune export --cache big.db -o h200.db --gpu H200        a store of one card to ship\n"
      "  glq-tune import other.db --cache model.db                  merge another machine's store\n"
      "A second run of the same model times nothing again; a run stopped at any point loses at most the candidate "
      "it was measuring.");
  Options options;
  app.add_option("checkpoint", options.checkpoint,
                 "a GLQ checkpoint folder (config.json and safetensors): its quantized linears, exact shapes and bpw")
      ->check(CLI::ExistingDirectory);
  app.add_option("--model", options.model,
                 "a Hugging Face config.json (Llama, Mistral, Qwen2/3, SmolLM3, Gemma): the seven linears of a decoder "
                 "layer, with quantization_config.layer_bpw's bpw where present, and q+k+v and gate+up as groups "
                 "(at the batch buckets up to 4, where a group is one kernel)")
      ->check(CLI::ExistingFile);
  app.add_option("--shape", options.shapes, "OUTxIN shapes to tune (comma-separated), e.g. 4096x4096")
      ->delimiter(',')
      ->check(shape_validator());
  app.add_option("--bpw", options.bpw, "bits per weight where the model does not say, 2..8 (default: 2,3,4)")
      ->delimiter(',')
      ->check(CLI::Range(kMinBpw, kMaxBpw));
  app.add_option("--batch", options.batches,
                 "batch sizes whose buckets (powers of two) are tuned (default: 1,2,4,...,256)")
      ->delimiter(',')
      ->check(CLI::Range(1, kMaxBatch));
  app.add_option("--dtype", options.dtype, "activation dtype: fp16 or bf16 (default: fp16)")
      ->check(CLI::IsMember({"fp16", "bf16"}));
  app.add_option("--budget", options.budget_minutes,
                 "minutes for the whole run, at most a year (525600), shared evenly among the keys left (default: "
                 "no limit); each key measures at least its default variant")
      ->check(CLI::PositiveNumber)
      ->check(CLI::Range(0.0, kMaxBudgetMinutes));
  app.add_option("--max-candidates", options.max_candidates, "candidates measured per key at most (default: no limit)")
      ->check(CLI::PositiveNumber);
  app.add_option("--strategy", options.strategy,
                 "walk: from the default and the other kernel families' defaults, one knob at a time while it pays "
                 "(default); exhaustive: every legal variant")
      ->check(CLI::IsMember({"walk", "exhaustive"}));
  auto* device_option =
      app.add_option("--device", options.device, "CUDA device ordinal (default: 0)")->check(CLI::Range(0, 1023));
  app.add_option("--devices", options.devices_text,
                 "tune on several GPUs of this host (of one model) at once, e.g. 0,1,2,3: a worker process per GPU, "
                 "each taking the next key no other has, over one store; a worker that dies loses only the "
                 "candidate it was measuring (its keys go to the others); then the table from the store")
      ->type_name("LIST")
      ->excludes(device_option)
      ->check(CLI::Validator(
          [](std::string& text) {
            std::string why;
            return parse_device_list(text, why) ? std::string() : why;
          },
          ""));
  app.add_flag("--worker", options.worker, "")->group("");  // set by --devices for its workers
  app.add_option("--cache", options.cache,
                 "the kernel store to fill (default: $GLQJIT_CACHE, else $XDG_CACHE_HOME/glqjit/glqjit.db, else "
                 "~/.cache/glqjit/glqjit.db)")
      ->type_name("PATH");
  app.add_option("--json", options.json, "also write the final table (with --compile-only: the kernel sets compiled) as JSON to FILE ('-': "
                 "standard output)")
      ->type_name("FILE");
  app.add_flag("--compile-only", options.compile_only,
               "no GPU needed: compile the default kernel set of every key for the card named by --gpu or by --arch "
               "and --sm-count, into the store");
  std::string gpu_names;
  for (const KnownGpu& gpu : known_gpus()) gpu_names += std::string(gpu_names.empty() ? "" : ", ") + std::string(gpu.name);
  app.add_option("--gpu", options.gpu,
                 "the card to compile for with --compile-only, or where no GPU is found (" + gpu_names + ")");
  app.add_option("--arch", options.arch,
                 "with --compile-only, or where no GPU is found: sm_80, sm_86, sm_89, sm_90a, sm_100a, sm_120");
  app.add_option("--sm-count", options.sm_count, "with --compile-only: the card's SM count")->check(CLI::PositiveNumber);

  auto* export_command = app.add_subcommand("export", "write a new store holding the kernels and records of one card");
  std::string export_output, export_signature;
  export_command->add_option("-o,--output", export_output, "the new store (must not exist)")->required();
  export_command->add_option("--device-signature", export_signature,
                             "keep the records of this device signature (glq-dump tuning shows them) and its arch's "
                             "kernels");
  auto* import_command = app.add_subcommand("import", "merge a store from another machine into --cache");
  std::string import_source;
  import_command->add_option("store", import_source, "the store to merge in")->required()->check(CLI::ExistingFile);
  auto* merge_command = app.add_subcommand("merge", "merge several stores into a new one");
  std::vector<std::string> merge_sources;
  std::string merge_output;
  merge_command->add_option("stores", merge_sources, "the stores to merge")->required()->check(CLI::ExistingFile);
  merge_command->add_option("-o,--output", merge_output, "the new store (must not exist)")->required();
  for (CLI::App* sub : {export_command, import_command}) {
    sub->add_option("--cache", options.cache, "the store to read (export) or fill (import)")->type_name("PATH");
  }
  export_command->add_option("--gpu", options.gpu, "keep the kernels of this known card's arch");
  export_command->add_option("--arch", options.arch, "keep the kernels of this arch");

  return run_tool("glq-tune", app, argc, argv, [&] {
    if (*export_command) {
      std::unique_ptr<Store> store = open_tool_store(options.cache, true);
      if (store == nullptr) throw Error(Status::cache_error, "no kernel store to export from; pass --cache PATH");
      ExportFilter filter;
      filter.device_signature = export_signature;
      filter.arch = options.arch.empty() && !options.gpu.empty() ? std::string(find_known_gpu(options.gpu).arch)
                                                                 : options.arch;
      if (!filter.arch.empty()) filter.arch = parse_arch(filter.arch).name();
      std::fprintf(stderr, "glq-tune export: %s -> %s\n", describe(export_store(*store, export_output, filter)).c_str(),
                   export_output.c_str());
      return;
    }
    if (*import_command) {
      std::unique_ptr<Store> store = open_tool_store(options.cache, false);
      if (store == nullptr || store->read_only()) {
        throw Error(Status::cache_error, "import needs a writable kernel store; pass --cache PATH");
      }
      std::fprintf(stderr, "glq-tune import: %s from %s into %s\n",
                   describe(merge_store(*store, import_source)).c_str(), import_source.c_str(), store->path().c_str());
      return;
    }
    if (*merge_command) {
      if (std::filesystem::exists(merge_output)) {
        throw Error(Status::invalid_argument, fmt::format("{} exists; merge writes a new store", merge_output));
      }
      // Built beside the output and renamed at the end, so the output is either absent or whole.
      const std::string partial = merge_output + ".partial";
      auto remove_partial = [&] {
        for (const char* suffix : {"", "-wal", "-shm"}) std::filesystem::remove(partial + suffix);
      };
      remove_partial();
      try {
        {
          Store store(StoreOptions{partial, false});
          for (const std::string& source : merge_sources) {
            std::fprintf(stderr, "glq-tune merge: %s from %s\n", describe(merge_store(store, source)).c_str(),
                         source.c_str());
          }
        }
        // Closed, so checkpointed into the file; a folder others may write keeps the side files
        // (cache/side_files.hpp), which must not outlive the temporary name.
        for (const char* suffix : {"-wal", "-shm"}) std::filesystem::remove(partial + suffix);
        std::filesystem::rename(partial, merge_output);
      } catch (...) {
        remove_partial();
        throw;
      }
      return;
    }
    const int inputs = !options.model.empty() + !options.checkpoint.empty() + !options.shapes.empty();
    if (inputs != 1) {
      throw Error(Status::invalid_argument,
                  "say what to tune with exactly one of --model config.json, a checkpoint folder, or --shape OUTxIN");
    }
    if (!options.devices_text.empty()) {
      std::string why;
      options.devices = *parse_device_list(options.devices_text, why);
      if (options.compile_only) throw Error(Status::invalid_argument, "--devices needs GPUs; --compile-only uses none");
    }
    run_tune(options, std::vector<std::string>(argv + 1, argv + argc));
  });
}
