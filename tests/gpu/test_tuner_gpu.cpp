// The tuner's GPU parts: the reference gate telling a wrong layer from a right one, and the
// tuning loop with the real builder, gate and timer writing records that a fresh plan then uses.
#include <catch2/catch.hpp>

#include "codegen/variant_space.hpp"
#include "gpu_support.hpp"
#include "tuner/gpu_timer.hpp"
#include "tuner/reference_gate.hpp"
#include "tuner/tune.hpp"

namespace glqjit::test {

TEST_CASE("the reference gate passes the layer it was made for and fails another", "[gpu][tuner]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  const LinearSpec spec{2048, 1024, 2, DType::f16, false, false};
  const ReferenceCase reference(context(), spec, {5, 3}, rng());
  LinearOptions options;
  options.max_batch = 8;
  Linear right(context(), spec, reference.weights(), options);
  for (const BatchCheck& check : reference.check(right)) CHECK(check.passed());

  // The same codes with SV's signs flipped in one place: a kernel that misreads one sign.
  QuantizedLayer other = reference.layer();
  other.sv[size_t(rng() % other.sv.size())] ^= 0x8000;
  const UploadedLayer uploaded = upload(other, spec.dtype);
  Linear wrong(context(), spec, uploaded.weights, options);
  for (const BatchCheck& check : reference.check(wrong)) {
    INFO("batch " << check.batch << " error " << check.error);
    CHECK(!check.passed());
  }
}

TEST_CASE("a tuned winner is what a fresh plan runs", "[gpu][tuner]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  // A spec no other GPU test uses, so that its records change no other test's variants.
  const LinearSpec spec{1536, 2560, 3, DType::bf16, false, false};
  const DeviceInfo& device = context().device();
  TuneSettings settings;
  settings.device_signature = device.signature();
  settings.arch = device.arch;
  settings.sm_count = device.sm_count;
  settings.max_measured = 6;
  const QuantizedLayer layer = random_layer(spec.in_features, spec.out_features, spec.bpw, rng());
  LayerTimer timer(context(), spec, layer, 16, LayerTimerOptions{1, 3});
  std::map<int, Variant> winners;
  for (int bucket : {1, 16}) {
    ReferenceGate gate(context(), spec, bucket, rng());
    KernelBuilder builder(context().store(), spec, bucket, device.arch);
    const TuneOutcome outcome = tune_key({spec, bucket}, settings, builder, gate, timer, context().store());
    INFO("bucket " << bucket << ": " << outcome.choice.why);
    REQUIRE(outcome.choice.winner);
    CHECK(outcome.default_measurement);
    CHECK(outcome.measured_now <= 6);
    for (const Measurement& m : outcome.measured) {
      INFO(m.variant.canonical() << ": " << status_name(m.status) << " " << m.reason);
      CHECK(m.status != MeasurementStatus::wrong_result);
      if (m.ok()) CHECK(m.median_us > 0);
    }
    winners[bucket] = outcome.choice.winner->variant;
  }
  const ReferenceCase reference(context(), spec, {1, 16}, rng());
  LinearOptions options;
  options.max_batch = 16;
  Linear linear(context(), spec, reference.weights(), options);
  for (const Linear::BucketInfo& info : linear.buckets()) {
    if (!winners.count(info.bucket)) continue;
    CHECK(info.tuned);
    CHECK(info.variant == winners[info.bucket]);
  }
  for (const BatchCheck& check : reference.check(linear)) CHECK(check.passed());
}

}  // namespace glqjit::test
