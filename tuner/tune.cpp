#include "tuner/tune.hpp"

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <map>

#include "codegen/variant_space.hpp"
#include "support/log.hpp"
#include "tuner/context_lost.hpp"

namespace glqjit {
namespace {

// The defaults of the other kernel families, where legal: starting points of a walk that a
// one-knob step from the default could never reach.
std::vector<Variant> family_defaults(const TuneKey& key, const TuneSettings& settings) {
  std::vector<Variant> seeds;
  for (MatmulFamily family : {MatmulFamily::fused, MatmulFamily::direct, MatmulFamily::staged}) {
    if (auto v = legal_family_default(key.spec, key.batch_bucket, settings.arch, settings.sm_count, family)) {
      seeds.push_back(*v);
    }
  }
  return seeds;
}

std::unique_ptr<Strategy> make_strategy(const TuneKey& key, const TuneSettings& settings,
                                        std::vector<Variant> candidates) {
  return settings.strategy == StrategyKind::exhaustive
             ? exhaustive_strategy(std::move(candidates))
             : neighbourhood_walk(std::move(candidates), family_defaults(key, settings));
}

// The measurements an earlier run stored for this key, by canonical variant text, with the
// kernel digest they were made with.
std::map<std::string, Measurement> stored_measurements(Store* store, const TuneKey& key,
                                                       const TuneSettings& settings) {
  std::map<std::string, Measurement> stored;
  if (store == nullptr) return stored;
  for (const MeasurementRecord& record :
       store->find_measurements(settings.device_signature, key.spec.canonical(), key.batch_bucket)) {
    try {
      Measurement m = measurement_from_json(record.details);
      stored.emplace(m.variant.canonical(), std::move(m));
    } catch (const Error& error) {
      log_line(LogLevel::warn, fmt::format("measuring {} again: its stored measurement is unreadable ({})",
                                           record.variant, error.what()));
    }
  }
  return stored;
}

void keep(Store* store, const TuneKey& key, const TuneSettings& settings, const Measurement& m) {
  if (store == nullptr || store->read_only()) return;
  MeasurementRecord record;
  record.device_signature = settings.device_signature;
  record.spec = key.spec.canonical();
  record.batch_bucket = key.batch_bucket;
  record.variant = m.variant.canonical();
  record.status = std::string(status_name(m.status));
  record.median_us = m.median_us;
  record.details = to_json(m);
  store->put_measurement(record);
}

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Gate, then time, one built candidate.
Measurement measure(const Variant& variant, const BuildResult& built, const TuneKey& key, Gate& gate, Timer& timer,
                    PhaseSeconds& seconds) {
  Measurement m;
  m.variant = variant;
  m.kernel_digest = built.kernel_digest;
  m.resources = built.resources;
  m.status = built.status;
  m.reason = built.reason;
  if (!m.ok()) return m;
  auto start = std::chrono::steady_clock::now();
  const GateResult gated = gate.check(variant);
  seconds.gate += seconds_since(start);
  m.gate_error = gated.worst_error;
  if (gated.status != MeasurementStatus::ok) {
    m.status = gated.status;
    m.reason = gated.reason;
    return m;
  }
  start = std::chrono::steady_clock::now();
  try {
    m.samples_us = timer.time_us(variant, key.batch_bucket);
    summarize_samples(m);
  } catch (const ContextLost&) {
    throw;
  } catch (const Error& error) {
    m.status = MeasurementStatus::launch_failed;
    m.reason = error.what();
  }
  seconds.time += seconds_since(start);
  return m;
}

}  // namespace

TuneOutcome tune_key(const TuneKey& key, const TuneSettings& settings, Builder& builder, Gate& gate, Timer& timer,
                     Store* store, const std::function<void(const TuneStep&)>& on_step) {
  std::vector<Variant> candidates = legal_variants(key.spec, key.batch_bucket, settings.arch, settings.sm_count);
  TuneOutcome outcome;
  outcome.default_variant = candidates.front();
  outcome.legal_candidates = int(candidates.size());
  const std::map<std::string, Measurement> stored = stored_measurements(store, key, settings);
  std::unique_ptr<Strategy> strategy = make_strategy(key, settings, candidates);
  int asked = 0;
  auto out_of_budget = [&] {
    return outcome.measured_now >= settings.max_measured ||
           (settings.deadline && std::chrono::steady_clock::now() >= *settings.deadline);
  };
  while (outcome.measured.empty() || !out_of_budget()) {
    const std::vector<Variant> batch = strategy->ask();
    if (batch.empty()) break;
    asked += int(batch.size());
    std::vector<Measurement> told;
    std::vector<Variant> to_build;
    for (const Variant& variant : batch) {
      const auto found = stored.find(variant.canonical());
      if (found != stored.end() && found->second.kernel_digest == builder.kernel_digest(variant)) {
        told.push_back(found->second);
        outcome.measured.push_back(found->second);
        ++outcome.from_store;
        if (on_step) on_step({found->second, true, int(outcome.measured.size()), asked});
      } else {
        to_build.push_back(variant);
      }
    }
    // The default is measured whatever the budget says: without it nothing can be compared.
    if (out_of_budget() && !outcome.measured.empty()) {
      const bool has_default = std::find(to_build.begin(), to_build.end(), outcome.default_variant) != to_build.end();
      to_build.assign(has_default ? 1 : 0, outcome.default_variant);
    } else if (outcome.measured_now + int(to_build.size()) > settings.max_measured) {
      to_build.resize(std::max(1, settings.max_measured - outcome.measured_now));
    }
    const auto build_start = std::chrono::steady_clock::now();
    const std::vector<BuildResult> built = builder.build(to_build);
    outcome.seconds.build += seconds_since(build_start);
    for (size_t i = 0; i < to_build.size(); ++i) {
      if (i > 0 && out_of_budget()) break;
      Measurement m;
      try {
        m = measure(to_build[i], built[i], key, gate, timer, outcome.seconds);
      } catch (const ContextLost& lost) {
        m.variant = to_build[i];
        m.kernel_digest = built[i].kernel_digest;
        m.status = MeasurementStatus::launch_failed;
        m.reason = lost.what();
        keep(store, key, settings, m);
        throw;
      }
      keep(store, key, settings, m);
      ++outcome.measured_now;
      told.push_back(m);
      outcome.measured.push_back(m);
      if (on_step) on_step({m, false, int(outcome.measured.size()), asked});
    }
    strategy->tell(told);
  }
  for (const Measurement& m : outcome.measured) {
    if (m.variant == outcome.default_variant && m.ok()) outcome.default_measurement = m;
  }
  outcome.choice = choose_winner(outcome.measured, outcome.default_variant);
  if (outcome.choice.winner && store != nullptr && !store->read_only()) {
    TuningRecord record;
    record.device_signature = settings.device_signature;
    record.spec = key.spec.canonical();
    record.batch_bucket = key.batch_bucket;
    record.variant = outcome.choice.winner->variant.canonical();
    record.time_us = outcome.choice.winner->median_us;
    record.details = tuning_details_json(outcome, settings);
    store->put_tuning(record);
  }
  return outcome;
}

std::vector<Variant> first_candidates(const TuneKey& key, const TuneSettings& settings) {
  std::vector<Variant> first =
      make_strategy(key, settings, legal_variants(key.spec, key.batch_bucket, settings.arch, settings.sm_count))->ask();
  if (int(first.size()) > settings.max_measured) first.resize(std::max(1, settings.max_measured));
  return first;
}

std::string tuning_details_json(const TuneOutcome& outcome, const TuneSettings& settings) {
  using Json = nlohmann::json;
  Json json = {{"why", outcome.choice.why},
               {"strategy", settings.strategy == StrategyKind::exhaustive ? "exhaustive" : "walk"},
               {"default_variant", outcome.default_variant.canonical()},
               {"legal_candidates", outcome.legal_candidates},
               {"measured", outcome.measured.size()}};
  json["default_us"] = outcome.default_measurement ? Json(outcome.default_measurement->median_us) : Json(nullptr);
  if (outcome.choice.winner) {
    json["winner"] = outcome.choice.winner->variant.canonical();
    json["winner_us"] = outcome.choice.winner->median_us;
    json["winner_spread"] = outcome.choice.winner->spread;
  }
  std::map<std::string, int> statuses;
  for (const Measurement& m : outcome.measured) ++statuses[std::string(status_name(m.status))];
  json["statuses"] = statuses;
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace glqjit
