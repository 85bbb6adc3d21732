// Every generated kernel set against the fp64 reference (FORMAT.md sections 1 and 8), on fresh
// random codes and activations, with outputs poisoned before the kernels write them.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <set>

#include "format/reference.hpp"
#include "gpu_cases.hpp"
#include "gpu_support.hpp"

namespace glqjit::test {
namespace {

// Batch rows checked against the reference: all of small batches and small layers; for the
// rest the first, the last and six random rows (every row is still checked to be finite).
std::vector<int> rows_to_check(int batch, const LinearSpec& spec, std::mt19937_64& rng) {
  std::vector<int> rows;
  if (batch <= 8 || spec.in_features * spec.out_features <= (int64_t(1) << 22)) {
    for (int r = 0; r < batch; ++r) rows.push_back(r);
    return rows;
  }
  std::set<int> chosen = {0, batch - 1};
  std::uniform_int_distribution<int> any_row(1, batch - 2);
  while (chosen.size() < 8) chosen.insert(any_row(rng));
  return {chosen.begin(), chosen.end()};
}

struct Checked {
  int batch;
  size_t first;  // first checked row in the gathered arrays
  size_t rows;
};

// One layer case against the fp64 reference at each of its batches; prints the worst error.
void check_against_reference(const LayerCase& c, uint64_t seed, std::mt19937_64& rng) {
  const LinearSpec& spec = c.spec;
  INFO("layer " << spec.canonical() << ", seed " << seed);
  RandomLayerOptions layer_options;
  layer_options.with_bias = spec.has_bias;
  layer_options.legacy_single_block = spec.legacy_single_block;
  layer_options.bias_dtype = DType::bf16;  // bf16 values in range are exact in fp16 too
  const QuantizedLayer layer = random_layer(spec.in_features, spec.out_features, spec.bpw, rng(), layer_options);
  UploadedLayer uploaded = upload(layer, spec.dtype);
  LinearOptions options;
  options.max_batch = *std::max_element(c.batches.begin(), c.batches.end());
  options.lazy_buckets = true;
  options.variants = c.variants;
  Linear linear(context(), spec, uploaded.weights, options);

  std::vector<double> gathered_x, gathered_y;
  std::vector<Checked> checked;
  for (int batch : c.batches) {
    INFO("batch " << batch);
    const Activations x = random_activations(batch, spec.in_features, spec.dtype, rng);
    DeviceBuffer x_device = DeviceBuffer::from(x.bits);
    DeviceBuffer y_device(size_t(batch) * spec.out_features * 2);
    y_device.poison();
    linear.forward(x_device.get(), y_device.get(), batch, nullptr);
    std::vector<uint16_t> y_bits(size_t(batch) * spec.out_features);
    y_device.download(y_bits.data(), y_bits.size() * 2);
    const std::vector<double> y = to_doubles(y_bits, spec.dtype);
    const size_t not_finite = std::count_if(y.begin(), y.end(), [](double v) { return !std::isfinite(v); });
    REQUIRE(not_finite == 0);

    const std::vector<int> rows = rows_to_check(batch, spec, rng);
    checked.push_back({batch, gathered_y.size() / spec.out_features, rows.size()});
    for (int r : rows) {
      gathered_x.insert(gathered_x.end(), x.values.begin() + size_t(r) * spec.in_features,
                        x.values.begin() + size_t(r + 1) * spec.in_features);
      gathered_y.insert(gathered_y.end(), y.begin() + size_t(r) * spec.out_features,
                        y.begin() + size_t(r + 1) * spec.out_features);
    }
  }
  const int total_rows = int(gathered_y.size() / spec.out_features);
  const std::vector<double> reference = reference_forward_fp64(layer, gathered_x, total_rows);
  double worst = 0;
  for (const Checked& check : checked) {
    const size_t begin = check.first * spec.out_features, count = check.rows * spec.out_features;
    const double error = relative_l2_error(std::span<const double>(gathered_y).subspan(begin, count),
                                           std::span<const double>(reference).subspan(begin, count));
    INFO("batch " << check.batch << ": relative L2 error " << error);
    CHECK(error < output_tolerance(spec.dtype));
    worst = std::max(worst, error);
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
    DeviceBuffer x_device = DeviceBuffer::from(x.bits);
    std::vector<std::vector<uint16_t>> outputs;
    for (int run = 0; run < 3; ++run) {
      DeviceBuffer y_device(size_t(c.batch) * c.spec.out_features * 2);
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
