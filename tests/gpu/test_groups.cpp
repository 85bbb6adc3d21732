// Groups of linears that read one input (runtime/linear_group.hpp) against each linear's fp64
// reference, on fresh random layers and activations, outputs poisoned first: one kernel where the
// linears share it, one linear at a time beyond that and where they do not.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "format/reference.hpp"
#include "glqjit/error.hpp"
#include "gpu_support.hpp"
#include "codegen/variant_space.hpp"
#include "runtime/linear_group.hpp"

namespace glqjit::test {
namespace {

struct GroupCase {
  std::vector<LinearSpec> linears;
  std::vector<int> batches;
  bool one_kernel;                // whether some batches run as one kernel
  int forced_one_kernel_bucket = 0;  // a bucket beyond the default where family 1 is forced
};

void check_group(const GroupCase& c, std::mt19937_64& rng) {
  std::vector<QuantizedLayer> layers;
  std::vector<UploadedLayer> uploaded;
  std::vector<DeviceWeights> weights;
  int64_t width = 0;
  for (const LinearSpec& spec : c.linears) {
    RandomLayerOptions options;
    options.with_bias = spec.has_bias;
    options.bias_dtype = DType::bf16;  // bf16 values in range are exact in fp16 too
    layers.push_back(random_layer(spec.in_features, spec.out_features, spec.bpw, rng(), options));
    uploaded.push_back(upload(layers.back(), spec.dtype));
    weights.push_back(uploaded.back().weights);
    width += spec.out_features;
  }
  LinearOptions options;
  options.max_batch = *std::max_element(c.batches.begin(), c.batches.end());
  options.lazy_buckets = true;
  if (c.forced_one_kernel_bucket > 0) {
    const LinearSpec group_spec = group_of(c.linears);
    for (int bucket = 2; bucket <= c.forced_one_kernel_bucket; bucket *= 2) {
      options.variants[bucket] = variant_over_default("family=1", group_spec, bucket, context().device().arch,
                                                      context().device().sm_count);
    }
  }
  LinearGroup group(context(), c.linears, weights, options);
  INFO(group.spec().canonical() << ", one kernel up to batch " << group.one_kernel_max_batch());
  CHECK(group.spec().out_features == width);
  CHECK((group.one_kernel_max_batch() > 0) == c.one_kernel);
  if (c.forced_one_kernel_bucket > 0) CHECK(group.one_kernel_max_batch() == c.forced_one_kernel_bucket);
  const DType dtype = c.linears.front().dtype;
  const int64_t in = c.linears.front().in_features;
  double worst = 0;
  for (int batch : c.batches) {
    INFO("batch " << batch);
    const Activations x = random_activations(batch, in, dtype, rng);
    DeviceBuffer x_device = device_copy(x.bits);
    DeviceBuffer y_device = device_buffer(size_t(batch) * width * 2);
    y_device.poison();
    group.forward(x_device.get(), y_device.get(), batch, nullptr);
    std::vector<uint16_t> y_bits(size_t(batch) * width);
    y_device.download(y_bits.data(), y_bits.size() * 2);
    const std::vector<double> y = to_doubles(y_bits, dtype);
    CHECK(std::all_of(y.begin(), y.end(), [](double v) { return std::isfinite(v); }));
    int64_t column = 0;
    for (size_t k = 0; k < layers.size(); ++k) {
      INFO("linear " << k << ": " << c.linears[k].canonical());
      const int64_t out = c.linears[k].out_features;
      const std::vector<double> reference = reference_forward_fp64(layers[k], x.values, batch);
      std::vector<double> got;
      for (int r = 0; r < batch; ++r) {
        got.insert(got.end(), y.begin() + r * width + column, y.begin() + r * width + column + out);
      }
      const double error = relative_l2_error(got, reference);
      CHECK(error < output_tolerance(dtype));
      worst = std::max(worst, error);
      column += out;
    }
  }
  std::printf("%s  %-70s worst relative L2 error %.2e, one kernel up to batch %d\n",
              worst < output_tolerance(dtype) ? "ok  " : "FAIL", group.spec().canonical().c_str(), worst,
              group.one_kernel_max_batch());
}

LinearSpec linear(int64_t in, int64_t out, int bpw, DType dtype = DType::f16, bool bias = false) {
  return LinearSpec{in, out, bpw, dtype, bias, false};
}

}  // namespace

TEST_CASE("groups of linears match each linear's fp64 reference", "[gpu][group]") {
  const uint64_t seed = fresh_seed();
  std::printf("groups seed %llu\n", static_cast<unsigned long long>(seed));
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  const std::vector<GroupCase> cases = {
      // Llama-3-8B's q, k and v: one kernel up to batch 4 by default and, forced, up to 8; one
      // linear at a time beyond.
      {{linear(4096, 4096, 2), linear(4096, 1024, 2), linear(4096, 1024, 2)}, {1, 3, 8, 13, 40}, true, 8},
      // gate and up with biases in bf16, E81B stages repacked per linear.
      {{linear(2048, 5632, 3, DType::bf16, true), linear(2048, 5632, 3, DType::bf16, true)}, {1, 2, 9}, true},
      // Padded linears whose outputs start at columns that are not 16-byte aligned (200, 304).
      {{linear(1000, 200, 4, DType::f16, true), linear(1000, 104, 4, DType::f16, true),
        linear(1000, 56, 4, DType::f16, true)},
       {1, 7},
       true},
      // Different bpw cannot share a kernel: every batch runs one linear at a time.
      {{linear(4096, 1024, 2), linear(4096, 512, 4)}, {1, 6}, false},
  };
  for (const GroupCase& c : cases) check_group(c, rng);
}

TEST_CASE("a group refuses linears that do not read the same input", "[gpu][group][errors]") {
  RandomLayerOptions options;
  const QuantizedLayer a = random_layer(4096, 1024, 2, 1, options);
  const QuantizedLayer b = random_layer(2048, 1024, 2, 2, options);
  UploadedLayer ua = upload(a, DType::f16), ub = upload(b, DType::f16);
  LinearOptions linear_options;
  const std::vector<LinearSpec> mismatched = {linear(4096, 1024, 2), linear(2048, 1024, 2)};
  try {
    LinearGroup group(context(), mismatched, {ua.weights, ub.weights}, linear_options);
    FAIL("a group of linears with different in_features was created");
  } catch (const Error& error) {
    CHECK(error.status() == Status::invalid_argument);
    CHECK(std::string(error.what()).find("share in_features and dtype") != std::string::npos);
  }
  try {
    LinearGroup group(context(), {linear(4096, 1024, 2)}, {ua.weights, ua.weights}, linear_options);
    FAIL("a group with more weights than linears was created");
  } catch (const Error& error) {
    CHECK(error.status() == Status::invalid_argument);
  }
  // Linears that cannot share a kernel are made one by one: a bad one is named.
  const QuantizedLayer c = random_layer(4096, 512, 4, 3, options);
  UploadedLayer uc = upload(c, DType::f16);
  DeviceWeights no_su = uc.weights;
  no_su.su = 0;
  try {
    LinearGroup group(context(), {linear(4096, 1024, 2), linear(4096, 512, 4)}, {ua.weights, no_su}, linear_options);
    FAIL("a group whose second linear has no SU was created");
  } catch (const Error& error) {
    CHECK(error.status() == Status::invalid_argument);
    const std::string message = error.what();
    INFO(message);
    CHECK(message.find("linear 1 of the group (in=4096 out=512 bpw=4") != std::string::npos);
    CHECK(message.find("SU is a null pointer") != std::string::npos);
  }
}

}  // namespace glqjit::test
