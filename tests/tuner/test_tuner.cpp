// The tuning loop and its strategies on the CPU: a simulated timer (a table of times), a
// builder and a gate with planted failures, and a real store, so that winners, budgets, ties,
// noise and resumption can be checked without a GPU.
#include <catch2/catch.hpp>

#include <fmt/format.h>

#include <map>
#include <random>
#include <set>

#include "codegen/variant_space.hpp"
#include "glqjit/error.hpp"
#include "temp_dir.hpp"
#include "runtime/kernel_binary.hpp"
#include "tuner/context_lost.hpp"
#include "tuner/prefetch.hpp"
#include "tuner/tune.hpp"
#include "tuner_fakes.hpp"

namespace glqjit {
namespace {

const Arch kArch = parse_arch("sm_90a");
constexpr int kSmCount = 132;
const TuneKey kKey{{4096, 4096, 2, DType::f16, false, false}, 1};

int knobs_apart(const Variant& a, const Variant& b) {
  int apart = 0;
  for (const VariantKnob& knob : variant_knobs()) apart += a.*knob.member != b.*knob.member;
  return apart;
}

std::vector<Variant> candidates() { return legal_variants(kKey.spec, kKey.batch_bucket, kArch, kSmCount); }

// A landscape that falls towards `optimum` one knob at a time: 10 us plus one per knob apart,
// plus a little per-variant roughness below the noise rule.
std::map<std::string, double> valley(const Variant& optimum, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> roughness(0.0, 0.01);
  std::map<std::string, double> times;
  for (const Variant& v : candidates()) times[v.canonical()] = 10.0 + knobs_apart(v, optimum) + roughness(rng);
  return times;
}

// A legal variant two one-knob steps from the default through a legal neighbour, chosen at random.
Variant two_steps_away(std::mt19937_64& rng) {
  const std::vector<Variant> all = candidates();
  std::vector<Variant> reachable;
  for (const Variant& a : all) {
    if (knobs_apart(a, all.front()) != 1) continue;
    for (const Variant& b : all) {
      if (knobs_apart(b, a) == 1 && knobs_apart(b, all.front()) == 2) reachable.push_back(b);
    }
  }
  REQUIRE(!reachable.empty());
  return reachable[std::uniform_int_distribution<size_t>(0, reachable.size() - 1)(rng)];
}

// Throws ContextLost at its `fail_at`-th call, as a kernel fault would.
class DyingTimer final : public Timer {
 public:
  DyingTimer(SimulatedTimer& inner, int fail_at) : inner_(inner), fail_at_(fail_at) {}
  std::vector<double> time_us(const Variant& variant, int batch) override {
    if (++calls_ == fail_at_) {
      killed = variant;
      throw ContextLost("planted kernel fault");
    }
    return inner_.time_us(variant, batch);
  }
  Variant killed;

 private:
  SimulatedTimer& inner_;
  int fail_at_;
  int calls_ = 0;
};

TuneSettings settings(StrategyKind strategy) {
  TuneSettings s;
  s.device_signature = "Simulated GPU | sm_count=132 | cc=9.0 | driver=13000";
  s.arch = kArch;
  s.sm_count = kSmCount;
  s.strategy = strategy;
  return s;
}

}  // namespace

TEST_CASE("both strategies find a planted optimum and record it", "[tuner]") {
  std::random_device device;
  const uint64_t seed = (uint64_t(device()) << 32) | device();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  const Variant optimum = two_steps_away(rng);
  INFO("optimum " << optimum.canonical());
  for (StrategyKind strategy : {StrategyKind::exhaustive, StrategyKind::walk}) {
    test::TempDir dir;
    Store store(StoreOptions{dir.file("s.db"), false});
    SimulatedTimer timer(valley(optimum, rng()), 0.001, rng());
    FakeBuilder builder;
    FakeGate gate;
    const TuneOutcome outcome = tune_key(kKey, settings(strategy), builder, gate, timer, &store);
    REQUIRE(outcome.choice.winner);
    CHECK(outcome.choice.winner->variant == optimum);
    CHECK(outcome.default_measurement);
    const auto record = store.find_tuning(settings(strategy).device_signature, kKey.spec.canonical(), 1);
    REQUIRE(record);
    CHECK(record->variant == optimum.canonical());
    CHECK(store.find_measurements(settings(strategy).device_signature, kKey.spec.canonical(), 1).size() ==
          outcome.measured.size());
    if (strategy == StrategyKind::exhaustive) {
      CHECK(int(outcome.measured.size()) == outcome.legal_candidates);
    } else {
      // The point of the walk: a small part of the space.
      CHECK(outcome.measured.size() < size_t(outcome.legal_candidates) / 2);
    }
  }
}

TEST_CASE("a budget of candidates is kept, the default is always measured, and the first build is what is "
          "compiled ahead",
          "[tuner][prefetch]") {
  std::mt19937_64 rng(std::random_device{}());
  const Variant optimum = two_steps_away(rng);
  for (int budget : {1, 3, 7, 1 << 30}) {
    for (StrategyKind strategy : {StrategyKind::exhaustive, StrategyKind::walk}) {
      SimulatedTimer timer(valley(optimum, rng()), 0.001, rng());
      FakeBuilder builder;
      FakeGate gate;
      TuneSettings s = settings(strategy);
      s.max_measured = budget;
      const TuneOutcome outcome = tune_key(kKey, s, builder, gate, timer, nullptr);
      CHECK(outcome.measured_now <= budget);
      CHECK(builder.built <= budget);
      CHECK(timer.calls() <= budget);
      CHECK(outcome.default_measurement);
      REQUIRE(!builder.batches.empty());
      CHECK(builder.batches.front() == first_candidates(kKey, s));
    }
  }
  // A deadline already past: only the default.
  SimulatedTimer timer(valley(optimum, rng()), 0.001, rng());
  FakeBuilder builder;
  FakeGate gate;
  TuneSettings s = settings(StrategyKind::exhaustive);
  s.deadline = std::chrono::steady_clock::now();
  const TuneOutcome outcome = tune_key(kKey, s, builder, gate, timer, nullptr);
  CHECK(outcome.measured_now == 1);
  REQUIRE(outcome.choice.winner);
  CHECK(outcome.choice.winner->variant == candidates().front());
}

TEST_CASE("the prefetcher compiles a key's first candidates into the store", "[tuner][prefetch]") {
  test::TempDir dir;
  Store store(StoreOptions{dir.file("s.db"), false});
  const TuneKey key{{1024, 1024, 2, DType::f16, false, false}, 1};
  TuneSettings s = settings(StrategyKind::walk);
  s.max_measured = 2;
  const std::vector<Variant> first = first_candidates(key, s);
  REQUIRE(first.size() == 2);
  KernelPrefetcher prefetcher(store, kArch, {{key.spec, key.batch_bucket, first}});
  prefetcher.wait();
  for (const Variant& v : first) {
    INFO(v.canonical());
    CHECK(store.find_kernel(make_kernel_key(generate_kernel(key.spec, v, key.batch_bucket, kArch)).digest()));
  }
}

TEST_CASE("ties go the same way every time, and noise does not displace the default", "[tuner]") {
  const std::vector<Variant> all = candidates();
  REQUIRE(all.size() > 4);
  std::map<std::string, double> times;
  for (const Variant& v : all) times[v.canonical()] = 20.0;
  times[all.front().canonical()] = 12.0;
  // Two candidates tie, both beyond noise of the default.
  times[all[2].canonical()] = times[all[3].canonical()] = 10.0;
  const std::string smaller = std::min(all[2].canonical(), all[3].canonical());
  for (int run = 0; run < 3; ++run) {
    SimulatedTimer timer(times, 0.0, run);
    FakeBuilder builder;
    FakeGate gate;
    const TuneOutcome outcome = tune_key(kKey, settings(StrategyKind::exhaustive), builder, gate, timer, nullptr);
    REQUIRE(outcome.choice.winner);
    CHECK(outcome.choice.winner->variant.canonical() == smaller);
  }
  // Within noise: 1.5 % faster than the default is not enough.
  times[all[2].canonical()] = times[all[3].canonical()] = 12.0 * 0.985;
  SimulatedTimer timer(times, 0.0, 7);
  FakeBuilder builder;
  FakeGate gate;
  const TuneOutcome outcome = tune_key(kKey, settings(StrategyKind::exhaustive), builder, gate, timer, nullptr);
  REQUIRE(outcome.choice.winner);
  CHECK(outcome.choice.winner->variant == all.front());
  CHECK_THAT(outcome.choice.why, Catch::Contains("within noise"));
}

TEST_CASE("the gate keeps a fast wrong variant out; failed builds are never timed", "[tuner]") {
  std::mt19937_64 rng(std::random_device{}());
  const Variant optimum = two_steps_away(rng);
  const std::vector<Variant> all = candidates();
  SimulatedTimer timer(valley(optimum, rng()), 0.001, rng());
  FakeBuilder builder;
  builder.fails_to_compile.insert(all[1].canonical());
  builder.spills.insert(all[2].canonical());
  FakeGate gate;
  gate.wrong.insert(optimum.canonical());
  const TuneOutcome outcome = tune_key(kKey, settings(StrategyKind::exhaustive), builder, gate, timer, nullptr);
  REQUIRE(outcome.choice.winner);
  CHECK(!(outcome.choice.winner->variant == optimum));
  std::map<std::string, MeasurementStatus> status;
  for (const Measurement& m : outcome.measured) status[m.variant.canonical()] = m.status;
  CHECK(status.at(optimum.canonical()) == MeasurementStatus::wrong_result);
  CHECK(status.at(all[1].canonical()) == MeasurementStatus::compile_failed);
  CHECK(status.at(all[2].canonical()) == MeasurementStatus::over_resources);
  // Everything else was timed once; the three above never.
  CHECK(timer.calls() == int(all.size()) - 3);
  CHECK(gate.checked == int(all.size()) - 2);
}

TEST_CASE("a tune killed mid-way resumes without losing or re-timing what completed", "[tuner]") {
  std::random_device device;
  const uint64_t seed = (uint64_t(device()) << 32) | device();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  const Variant optimum = two_steps_away(rng);
  const std::map<std::string, double> times = valley(optimum, rng());
  test::TempDir dir;
  const std::string path = dir.file("s.db");
  const int fail_at = std::uniform_int_distribution<int>(2, 40)(rng);
  Variant killed;
  {
    Store store(StoreOptions{path, false});
    SimulatedTimer inner(times, 0.001, rng());
    DyingTimer timer(inner, fail_at);
    FakeBuilder builder;
    FakeGate gate;
    CHECK_THROWS_AS(tune_key(kKey, settings(StrategyKind::exhaustive), builder, gate, timer, &store), ContextLost);
    killed = timer.killed;
    // What completed, and the candidate that killed the run (so that a new run skips it).
    const auto kept = store.find_measurements(settings(StrategyKind::exhaustive).device_signature,
                                              kKey.spec.canonical(), 1);
    CHECK(int(kept.size()) == fail_at);
    CHECK(!store.find_tuning(settings(StrategyKind::exhaustive).device_signature, kKey.spec.canonical(), 1));
  }
  Store store(StoreOptions{path, false});
  SimulatedTimer timer(times, 0.001, rng());
  FakeBuilder builder;
  FakeGate gate;
  const TuneOutcome resumed = tune_key(kKey, settings(StrategyKind::exhaustive), builder, gate, timer, &store);
  CHECK(resumed.from_store == fail_at);
  CHECK(resumed.measured_now == resumed.legal_candidates - fail_at);
  CHECK(timer.calls() == resumed.measured_now);
  // The candidate that killed the run stays launch_failed; if it was the optimum, the runner-up wins.
  const Variant expected = [&] {
    if (!(killed == optimum)) return optimum;
    std::optional<Measurement> best;
    for (const Measurement& m : resumed.measured) {
      if (m.ok() && (!best || faster(m, *best))) best = m;
    }
    return best->variant;
  }();
  REQUIRE(resumed.choice.winner);
  CHECK(resumed.choice.winner->variant == expected);

  // A third run times nothing; other kernel code (another digest) is measured again.
  SimulatedTimer again(times, 0.001, rng());
  const TuneOutcome third = tune_key(kKey, settings(StrategyKind::exhaustive), builder, gate, again, &store);
  CHECK(third.measured_now == 0);
  CHECK(again.calls() == 0);
  REQUIRE(third.choice.winner);
  CHECK(third.choice.winner->variant == expected);

  class NewCode final : public Builder {
   public:
    std::string kernel_digest(const Variant& v) override { return "new code of " + v.canonical(); }
    std::vector<BuildResult> build(const std::vector<Variant>& variants) override {
      return std::vector<BuildResult>(variants.size());
    }
  } new_code;
  SimulatedTimer after_upgrade(times, 0.001, rng());
  const TuneOutcome fourth = tune_key(kKey, settings(StrategyKind::exhaustive), new_code, gate, after_upgrade, &store);
  CHECK(fourth.from_store == 0);
  CHECK(fourth.measured_now == fourth.legal_candidates);
}

TEST_CASE("measurements survive the store's JSON whole", "[tuner]") {
  std::mt19937_64 rng(std::random_device{}());
  std::uniform_real_distribution<double> time(0.5, 500.0);
  for (int i = 0; i < 50; ++i) {
    Measurement m;
    m.variant = candidates()[size_t(i) % candidates().size()];
    m.kernel_digest = fmt::format("{:016x}", rng());
    m.status = MeasurementStatus(i % 5);
    for (int s = 0; s < i % 7; ++s) m.samples_us.push_back(time(rng));
    summarize_samples(m);
    m.reason = i % 2 ? "line one\nline \"two\"\t\x01" : "";
    m.gate_error = time(rng) * 1e-6;
    m.resources.push_back({"glq_matmul", int(rng() % 255), 0, int(rng() % 16), int(rng() % 16), int(rng() % 49152)});
    const Measurement back = measurement_from_json(to_json(m));
    CHECK(back.variant == m.variant);
    CHECK(back.kernel_digest == m.kernel_digest);
    CHECK(back.status == m.status);
    CHECK(back.median_us == m.median_us);
    CHECK(back.spread == m.spread);
    CHECK(back.samples_us == m.samples_us);
    CHECK(back.reason == m.reason);
    CHECK(back.gate_error == m.gate_error);
    REQUIRE(back.resources.size() == 1);
    CHECK(back.resources[0].registers == m.resources[0].registers);
    CHECK(back.resources[0].spill_store_bytes == m.resources[0].spill_store_bytes);
  }
  CHECK_THROWS_WITH(measurement_from_json("{\"variant\": 3}"), Catch::Contains("not readable"));
  CHECK_THROWS_WITH(measurement_from_json("not json"), Catch::Contains("not readable"));
  CHECK_THROWS_WITH(parse_status("fast"), Catch::Contains("none of ok"));
  // A resource count beyond an int was converted with undefined behaviour (found by fuzz_store_rows).
  Measurement counted;
  counted.resources.push_back({"glq_matmul", 32});
  const std::string text = to_json(counted);
  const size_t registers = text.find("\"registers\":32");
  REQUIRE(registers != std::string::npos);
  for (const char* bad : {"1e300", "-1e300", "3.5", "2147483648", "-2147483649", "\"32\""}) {
    INFO(bad);
    const std::string changed = std::string(text).replace(registers, 14, std::string("\"registers\":") + bad);
    CHECK_THROWS_WITH(measurement_from_json(changed), Catch::Contains("not readable") && Catch::Contains("registers"));
  }
}

TEST_CASE("a group's walk starts only from the families that can serve a group", "[tuner][group]") {
  const TuneKey group{group_of({{4096, 4096, 2, DType::f16, false, false},
                                {4096, 1024, 2, DType::f16, false, false},
                                {4096, 1024, 2, DType::f16, false, false}}),
                      1};
  std::map<std::string, double> times;
  double us = 10;
  for (const Variant& v : legal_variants(group.spec, 1, kArch, kSmCount)) times[v.canonical()] = us += 0.5;
  REQUIRE(times.size() > 1);
  SimulatedTimer timer(times, 0.001, 7);
  FakeBuilder builder;
  FakeGate gate;
  const TuneOutcome outcome = tune_key(group, settings(StrategyKind::walk), builder, gate, timer, nullptr);
  REQUIRE(outcome.choice.winner);
  CHECK(outcome.default_measurement);
  for (const Measurement& m : outcome.measured) CHECK(m.variant.family == 1);
}

}  // namespace glqjit
