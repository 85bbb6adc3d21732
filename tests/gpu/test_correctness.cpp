// Every generated kernel set against the fp64 reference (FORMAT.md sections 1 and 8), on fresh
// random codes and activations, with outputs poisoned before the kernels write them.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "format/reference.hpp"
#include "gpu_cases.hpp"
#include "gpu_support.hpp"
#include "tuner/reference_gate.hpp"

namespace glqjit::test {
namespace {

// One layer case against the fp64 reference at each of its batches; prints the worst error.
void check_against_reference(const LayerCase& c, uint64_t seed, std::mt19937_64& rng) {
  const LinearSpec& spec = c.spec;
  INFO("layer " << spec.canonical() << ", seed " << seed);
  const ReferenceCase reference(context(), spec, c.batches, rng());
  LinearOptions options;
  options.max_batch = *std::max_element(c.batches.begin(), c.batches.end());
  options.lazy_buckets = true;
  options.variants = c.variants;
  Linear linear(context(), spec, reference.weights(), options);
  double worst = 0;
  for (const BatchCheck& check : reference.check(linear)) {
    INFO("batch " << check.batch << ": relative L2 error " << check.error << ", " << check.not_finite
                  << " outputs not finite");
    CHECK(check.not_finite == 0);
    CHECK(check.error < check.tolerance);
    worst = std::max(worst, check.error);
  }
  std::printf("%s  %-58s worst relative L2 error %.2e over batches 1..%d%s\n",
              worst < output_tolerance(spec.dtype) ? "ok  " : "FAIL", spec.canonical().c_str(), worst,
              options.max_batch, c.variants.empty() ? "" : " (chosen variants)");
}

// Cases against the reference, their kernels compiled first, on fresh random layers.
void check_cases(const char* what, const std::vector<LayerCase>& cases) {
  prewarm_store(cases);
  const uint64_t seed = fresh_seed();
  std::printf("%s seed %llu\n", what, static_cast<unsigned long long>(seed));
  std::mt19937_64 rng(seed);
  for (const LayerCase& c : cases) check_against_reference(c, seed, rng);
}

}  // namespace

TEST_CASE("every kernel set matches the fp64 reference within FORMAT.md section 8", "[gpu][correctness]") {
  check_cases("correctness", correctness_cases());
}

TEST_CASE("a sample of kernel sets matches the fp64 reference", "[gpu][correctness][sample]") {
  check_cases("sample", sample_cases());
}

TEST_CASE("compute-sanitizer's subset of kernel sets matches the fp64 reference", "[gpu][correctness][sanitizer]") {
  check_cases("sanitizer subset", sanitizer_cases());
}

TEST_CASE("kernel family 3 matches the fp64 reference in the corners of its variants", "[gpu][correctness][family3]") {
  if (!context().device().arch.has_wgmma()) {
    std::printf("family 3 checked with mma.sync only: %s has no warpgroup MMAs (sm_90a only)\n",
                context().device().arch.name().c_str());
  }
  check_cases("family 3", family3_cases());
}

TEST_CASE("kernel family 1 matches the fp64 reference in the corners of its variants", "[gpu][correctness][family1]") {
  check_cases("family 1", family1_cases());
}

TEST_CASE("three forwards give bitwise identical outputs", "[gpu][determinism]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  struct Case {
    LinearSpec spec;
    int batch;
  };
  const std::vector<Case> cases = {{{4096, 4096, 2, DType::f16, false, false}, 1},
                                   {{4096, 14336, 3, DType::bf16, false, false}, 17},
                                   {{8192, 57344, 4, DType::f16, false, false}, 64},
                                   {{1000, 2080, 7, DType::f16, true, false}, 256}};
  for (const Case& c : cases) {
    INFO(c.spec.canonical() << " batch " << c.batch);
    RandomLayerOptions layer_options;
    layer_options.with_bias = c.spec.has_bias;
    const QuantizedLayer layer = random_layer(c.spec.in_features, c.spec.out_features, c.spec.bpw, rng(), layer_options);
    UploadedLayer uploaded = upload(layer, c.spec.dtype);
    LinearOptions options;
    options.max_batch = c.batch;
    options.lazy_buckets = true;
    Linear linear(context(), c.spec, uploaded.weights, options);
    const Activations x = random_activations(c.batch, c.spec.in_features, c.spec.dtype, rng);
    DeviceBuffer x_device = device_copy(x.bits);
    std::vector<std::vector<uint16_t>> outputs;
    for (int run = 0; run < 3; ++run) {
      DeviceBuffer y_device = device_buffer(size_t(c.batch) * c.spec.out_features * 2);
      y_device.poison();
      linear.forward(x_device.get(), y_device.get(), c.batch, nullptr);
      outputs.emplace_back(size_t(c.batch) * c.spec.out_features);
      y_device.download(outputs.back().data(), outputs.back().size() * 2);
    }
    CHECK(outputs[0] == outputs[1]);
    CHECK(outputs[0] == outputs[2]);
  }
}

}  // namespace glqjit::test
