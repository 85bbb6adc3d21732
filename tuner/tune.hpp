// The tuning loop of one key (device, spec, batch bucket): ask the strategy, build, gate and time
// what it asks for, tell it, and keep every measurement in the store as it completes, so that a
// run killed at any point loses at most the candidate in flight and the next run goes on from
// there. The winner becomes the key's tuning record, which plan() then uses.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "cache/store.hpp"
#include "codegen/arch.hpp"
#include "codegen/spec.hpp"
#include "tuner/builder.hpp"
#include "tuner/gate.hpp"
#include "tuner/strategy.hpp"
#include "tuner/timer.hpp"
#include "tuner/winner.hpp"

namespace glqjit {

struct TuneKey {
  LinearSpec spec;
  int batch_bucket = 1;
};

struct TuneSettings {
  std::string device_signature;  // what the records are valid for (DeviceInfo::signature)
  Arch arch;
  int sm_count = 0;
  StrategyKind strategy = StrategyKind::walk;
  // Stop asking once this many candidates of the key were measured in this run, or the deadline
  // passed (what was measured still counts; the default is always measured).
  int max_measured = 1 << 30;
  std::optional<std::chrono::steady_clock::time_point> deadline;
};

// Told after each candidate: how far the key is.
struct TuneStep {
  const Measurement& measurement;
  bool from_store;  // measured by an earlier run with the same kernel code
  int done;         // candidates of this key settled so far
  int asked;        // candidates the strategy has asked for so far
};

// Where a key's wall time went: compiling (or loading from the store), checking against the
// reference (its fp64 reference included, made on first use) and timing (its copies included).
struct PhaseSeconds {
  double build = 0;
  double gate = 0;
  double time = 0;
};

struct TuneOutcome {
  Variant default_variant;
  std::optional<Measurement> default_measurement;  // when it measured ok
  WinnerChoice choice;
  std::vector<Measurement> measured;  // every candidate settled, this run's and the store's
  int measured_now = 0;               // built, gated and timed in this run
  int from_store = 0;
  int legal_candidates = 0;
  PhaseSeconds seconds;
};

// Also writes the tuning record when a winner exists and `store` is writable. `batch` for the
// timer is the bucket itself (its largest batch). Throws Error only for what stops the whole
// run (the store failing, the CUDA context lost); a candidate's failure is its measurement.
TuneOutcome tune_key(const TuneKey& key, const TuneSettings& settings, Builder& builder, Gate& gate, Timer& timer,
                     Store* store, const std::function<void(const TuneStep&)>& on_step = {});

// What tune_key builds first for the key: the strategy's first ask, as far as max_measured
// allows (the deadline is not known ahead). What a KernelPrefetcher compiles ahead.
std::vector<Variant> first_candidates(const TuneKey& key, const TuneSettings& settings);

// The tuning record's details: the winner, why, the default's time, and how many candidates.
std::string tuning_details_json(const TuneOutcome& outcome, const TuneSettings& settings);

}  // namespace glqjit
