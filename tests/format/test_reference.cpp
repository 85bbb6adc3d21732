// The reference forward against an independently built dense W = diag(SU) H_m W~ H_n diag(SV),
// the section 8 numerics against fp64, random layers, and layer validation.
#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "format/reference.hpp"
#include "glqjit/error.hpp"

using namespace glqjit;

namespace {

// Block-diagonal Hadamard from the definition, row-major size x size.
std::vector<double> dense_hadamard(const std::vector<int64_t>& blocks) {
  int64_t size = 0;
  for (int64_t block : blocks) size += block;
  std::vector<double> h(size_t(size * size), 0.0);
  int64_t start = 0;
  for (int64_t block : blocks) {
    for (int64_t i = 0; i < block; ++i) {
      for (int64_t j = 0; j < block; ++j) {
        h[size_t((start + i) * size + start + j)] =
            (std::popcount(uint64_t(i & j)) % 2 ? -1.0 : 1.0) / std::sqrt(double(block));
      }
    }
    start += block;
  }
  return h;
}

// y = W x (+ bias) with W built densely from decode_stage, restricted to out x in.
std::vector<double> dense_forward(const QuantizedLayer& layer, const std::vector<double>& x, int batch) {
  const Geometry& g = layer.geometry;
  const size_t m_pad = size_t(g.m_pad), n_pad = size_t(g.n_pad);
  std::vector<double> w_rht(m_pad * n_pad, 0.0);
  for (size_t s = 0; s < layer.stages.size(); ++s) {
    const double c = s == 0 ? 1.0 : double(layer.inv_resid_scales[s - 1]);
    const std::vector<double> d = decode_stage(layer, int(s));
    for (size_t k = 0; k < d.size(); ++k) w_rht[k] += double(layer.wscale) * c * d[k];
  }
  const std::vector<double> hm = dense_hadamard(g.out_blocks), hn = dense_hadamard(g.in_blocks);
  std::vector<double> left(m_pad * n_pad, 0.0), w(m_pad * n_pad, 0.0);
  for (size_t i = 0; i < m_pad; ++i)
    for (size_t k = 0; k < m_pad; ++k)
      for (size_t j = 0; j < n_pad; ++j) left[i * n_pad + j] += hm[i * m_pad + k] * w_rht[k * n_pad + j];
  for (size_t i = 0; i < m_pad; ++i)
    for (size_t k = 0; k < n_pad; ++k)
      for (size_t j = 0; j < n_pad; ++j) w[i * n_pad + j] += left[i * n_pad + k] * hn[k * n_pad + j];
  const auto sign = [](uint16_t bits) { return bits == 0x3c00 ? 1.0 : -1.0; };
  const size_t m = size_t(g.out_features), n = size_t(g.in_features);
  std::vector<double> y(size_t(batch) * m, 0.0);
  for (int b = 0; b < batch; ++b) {
    for (size_t i = 0; i < m; ++i) {
      double sum = layer.bias.empty() ? 0.0 : double(layer.bias[i]);
      for (size_t j = 0; j < n; ++j) sum += sign(layer.su[i]) * w[i * n_pad + j] * sign(layer.sv[j]) * x[b * n + j];
      y[b * m + i] = sum;
    }
  }
  return y;
}

std::vector<double> random_inputs(std::mt19937_64& rng, size_t count) {
  std::normal_distribution<double> normal;
  std::vector<double> x(count);
  for (double& value : x) value = normal(rng);
  return x;
}

struct Case {
  int64_t in, out;
  RandomLayerOptions options;
};

const std::vector<Case> kSmallCases = {
    {100, 40, {}},
    {64, 16, {}},
    {100, 40, {true, false, DType::f16}},
    {200, 24, {true, false, DType::bf16}},
    {100, 40, {true, true, DType::f16}},
};

template <typename T>
void expect_error(T&& call, Status status, std::initializer_list<std::string> mentions) {
  try {
    call();
    FAIL("accepted");
  } catch (const Error& error) {
    CHECK(error.status() == status);
    for (const std::string& text : mentions) CHECK_THAT(error.what(), Catch::Contains(text));
  }
}

}  // namespace

TEST_CASE("reference_forward_fp64 equals the dense product for every bpw", "[reference]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (int bpw = 2; bpw <= 8; ++bpw) {
    for (const Case& c : kSmallCases) {
      for (int batch : {1, 3}) {
        INFO("bpw " << bpw << ", " << c.in << " -> " << c.out << ", bias " << c.options.with_bias << ", legacy "
                    << c.options.legacy_single_block << ", batch " << batch);
        const QuantizedLayer layer = random_layer(c.in, c.out, bpw, rng(), c.options);
        const std::vector<double> x = random_inputs(rng, size_t(batch * c.in));
        const std::vector<double> got = reference_forward_fp64(layer, x, batch);
        const std::vector<double> expected = dense_forward(layer, x, batch);
        REQUIRE(got.size() == size_t(batch * c.out));
        CHECK(relative_l2_error(got, expected) < 1e-12);
      }
    }
  }
}

TEST_CASE("later stages contribute with their scales", "[reference]") {
  // Zeroing c_1 must change the output of a two-stage layer, and match the one-stage product.
  const QuantizedLayer four = random_layer(100, 40, 4, 7);
  QuantizedLayer first_only = four;
  first_only.inv_resid_scales[0] = 0.0f;
  QuantizedLayer two = four;
  two.recipe = recipe_for_bpw(2);
  two.stages.resize(1);
  two.inv_resid_scales.clear();
  const std::vector<double> x(100, 1.0);
  CHECK(relative_l2_error(reference_forward_fp64(first_only, x, 1), reference_forward_fp64(two, x, 1)) == 0.0);
  CHECK(relative_l2_error(reference_forward_fp64(four, x, 1), reference_forward_fp64(two, x, 1)) > 0.05);
}

TEST_CASE("reference_forward_numerics stays within the section 8 tolerance", "[reference]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  std::vector<Case> cases = kSmallCases;
  cases.push_back({2080, 1000, {true, false, DType::bf16}});
  for (DType dtype : {DType::f16, DType::bf16}) {
    for (int bpw = 2; bpw <= 8; ++bpw) {
      for (const Case& c : cases) {
        const int batch = c.in > 1000 ? 4 : 3;
        INFO(dtype_name(dtype) << ", bpw " << bpw << ", " << c.in << " -> " << c.out << ", batch " << batch);
        RandomLayerOptions options = c.options;
        options.bias_dtype = dtype;
        const QuantizedLayer layer = random_layer(c.in, c.out, bpw, rng(), options);
        std::vector<double> x = random_inputs(rng, size_t(batch * c.in));
        std::vector<float> x_dtype(x.size());
        for (size_t i = 0; i < x.size(); ++i) x_dtype[i] = round_to(dtype, x[i]);
        x.assign(x_dtype.begin(), x_dtype.end());
        const std::vector<double> exact = reference_forward_fp64(layer, x, batch);
        const std::vector<float> got = reference_forward_numerics(layer, x_dtype, batch, dtype);
        const double error = relative_l2_error(got, exact);
        INFO("relative error " << error);
        CHECK(error < output_tolerance(dtype));
        CHECK(error > 0.0);  // the final rounding alone makes it inexact
        for (float value : got) {
          if (round_to(dtype, value) != value) FAIL(value << " is not a " << dtype_name(dtype) << " value");
        }
      }
    }
  }
}

TEST_CASE("reference_forward_numerics rounds u to fp16 before the multiply", "[reference]") {
  // x = (3072, t, 0, ...) gives u_j = +-384 +- t/8 in one block of 64, where the fp16 step is 0.25:
  // t = 1 makes ties that round back to +-384 (even), so it must vanish; t = 4 must not.
  const QuantizedLayer layer = random_layer(64, 64, 2, std::random_device{}());
  const auto input = [](float t) {
    std::vector<float> x(64, 0.0f);
    x[0] = 3072.0f;
    x[1] = t;
    return x;
  };
  const std::vector<float> base = reference_forward_numerics(layer, input(0.0f), 1, DType::f16);
  CHECK(reference_forward_numerics(layer, input(1.0f), 1, DType::f16) == base);
  CHECK(reference_forward_numerics(layer, input(4.0f), 1, DType::f16) != base);
  const std::vector<float> with_t = input(1.0f), without_t = input(0.0f);
  CHECK(reference_forward_fp64(layer, std::vector<double>(with_t.begin(), with_t.end()), 1) !=
        reference_forward_fp64(layer, std::vector<double>(without_t.begin(), without_t.end()), 1));
}

TEST_CASE("the forward passes are deterministic on a multi-threaded shape", "[reference]") {
  const QuantizedLayer layer = random_layer(2080, 1000, 5, 11);
  std::mt19937_64 rng(5);
  const std::vector<double> x = random_inputs(rng, 2 * 2080);
  std::vector<float> xf(x.begin(), x.end());
  for (float& value : xf) value = round_to(DType::f16, value);
  CHECK(reference_forward_fp64(layer, x, 2) == reference_forward_fp64(layer, x, 2));
  CHECK(reference_forward_numerics(layer, xf, 2, DType::f16) == reference_forward_numerics(layer, xf, 2, DType::f16));
}

TEST_CASE("random layers are seeded, valid and give unit-size outputs", "[layer]") {
  const QuantizedLayer a = random_layer(1000, 2080, 7, 42, {true, false, DType::bf16});
  const QuantizedLayer b = random_layer(1000, 2080, 7, 42, {true, false, DType::bf16});
  const QuantizedLayer other = random_layer(1000, 2080, 7, 43, {true, false, DType::bf16});
  CHECK_NOTHROW(validate_layer(a));
  CHECK(a.stages == b.stages);
  CHECK(a.su == b.su);
  CHECK(a.sv == b.sv);
  CHECK(a.bias == b.bias);
  CHECK(a.stages[0] != other.stages[0]);
  CHECK(a.su != other.su);
  CHECK(a.stages.size() == 4);
  CHECK(a.inv_resid_scales == nominal_inv_resid_scales(recipe_for_bpw(7)));
  CHECK(a.wscale == Approx(1.0 / std::sqrt(1024.0)));
  REQUIRE(a.bias.size() == 2080);
  for (float value : a.bias) CHECK(round_to(DType::bf16, value) == value);
  int plus = 0;
  for (uint16_t bits : a.sv) plus += bits == 0x3c00;
  CHECK(plus > 400);
  CHECK(plus < 624);

  const QuantizedLayer layer = random_layer(4096, 512, 2, std::random_device{}());
  std::mt19937_64 rng(1);
  const std::vector<double> x = random_inputs(rng, 4096);
  double square = 0.0;
  for (double value : reference_forward_fp64(layer, x, 1)) square += value * value;
  const double rms = std::sqrt(square / 512);
  INFO("output rms " << rms);
  CHECK(rms > 0.3);
  CHECK(rms < 3.0);
}

TEST_CASE("validate_layer names the tensor of the wrong size", "[layer][errors]") {
  const QuantizedLayer good = random_layer(100, 40, 3, 1, {true, false, DType::f16});
  CHECK_NOTHROW(validate_layer(good));

  QuantizedLayer layer = good;
  layer.stages[1].pop_back();
  expect_error([&] { validate_layer(layer); }, Status::invalid_argument, {"stage 1", "e81b", "95", "96"});
  layer = good;
  layer.stages[0].push_back(0);
  expect_error([&] { validate_layer(layer); }, Status::invalid_argument, {"stage 0", "e8p", "193", "192"});
  layer = good;
  layer.stages.pop_back();
  expect_error([&] { validate_layer(layer); }, Status::invalid_argument, {"stage list", "bpw 3"});
  layer = good;
  layer.su.resize(40);
  expect_error([&] { validate_layer(layer); }, Status::invalid_argument, {"SU", "40", "48"});
  layer = good;
  layer.sv.resize(100);
  expect_error([&] { validate_layer(layer); }, Status::invalid_argument, {"SV", "100", "128"});
  layer = good;
  layer.sv[7] = 0x4000;
  expect_error([&] { validate_layer(layer); }, Status::invalid_argument, {"SV[7]", "0x4000"});
  layer = good;
  layer.inv_resid_scales.clear();
  expect_error([&] { validate_layer(layer); }, Status::invalid_argument, {"inv_resid_scales", "0", "1"});
  layer = good;
  layer.bias.resize(48);
  expect_error([&] { validate_layer(layer); }, Status::invalid_argument, {"bias", "48", "40"});
  layer = good;
  layer.geometry.n_pad = 192;
  expect_error([&] { validate_layer(layer); }, Status::invalid_argument, {"n_pad 192", "n_pad 128"});
  layer = good;
  layer.recipe.bpw = 9;
  expect_error([&] { validate_layer(layer); }, Status::unsupported_shape, {"bpw 9", "2..8"});
}

TEST_CASE("layer construction rejects bad bpw and features", "[layer][errors]") {
  for (int bpw : {1, 9, 0, -3}) {
    INFO("bpw " << bpw);
    expect_error([&] { random_layer(64, 16, bpw, 1); }, Status::unsupported_shape,
                 {"bpw " + std::to_string(bpw), "2..8"});
  }
  expect_error([&] { random_layer(0, 16, 2, 1); }, Status::unsupported_shape, {"in_features 0"});
  expect_error([&] { random_layer(64, -1, 2, 1); }, Status::unsupported_shape, {"out_features -1"});
  expect_error([&] { random_layer(int64_t(1) << 30, 16, 2, 1); }, Status::unsupported_shape,
               {"in_features 1073741824"});
}

TEST_CASE("reference functions reject inputs of the wrong size", "[reference][errors]") {
  const QuantizedLayer layer = random_layer(100, 40, 2, 3);
  const std::vector<double> x(99, 0.0);
  expect_error([&] { reference_forward_fp64(layer, x, 1); }, Status::invalid_argument, {"99", "100"});
  const std::vector<double> x2(200, 0.0);
  expect_error([&] { reference_forward_fp64(layer, x2, 0); }, Status::invalid_argument, {"batch 0"});
  const std::vector<float> xf = {0.1f};
  expect_error([&] { reference_forward_numerics(layer, std::vector<float>(100, 0.1f), 1, DType::f16); },
               Status::invalid_argument, {"x[0]", "fp16", "round_to"});
  expect_error([&] { reference_forward_numerics(layer, xf, 1, DType::f16); }, Status::invalid_argument, {"1", "100"});
  expect_error([&] { decode_stage(layer, 1); }, Status::invalid_argument, {"stage 1", "0..0"});
  expect_error([&] { decode_stage(layer, -1); }, Status::invalid_argument, {"stage -1"});
}

TEST_CASE("relative_l2_error is infinite on NaN or infinity", "[reference]") {
  const std::vector<double> ref = {3.0, 4.0};
  CHECK(relative_l2_error(std::vector<double>{3.0, 4.0}, ref) == 0.0);
  CHECK(relative_l2_error(std::vector<double>{3.0, 9.0}, ref) == Approx(1.0));
  CHECK(relative_l2_error(std::vector<float>{3.0f, 4.5f}, ref) == Approx(0.1));
  CHECK(std::isinf(relative_l2_error(std::vector<float>{NAN, 4.0f}, ref)));
  CHECK(std::isinf(relative_l2_error(std::vector<double>{3.0, INFINITY}, ref)));
  CHECK(std::isinf(relative_l2_error(std::vector<float>{3.0f, -INFINITY}, ref)));
  CHECK_THROWS_AS(relative_l2_error(std::vector<double>{3.0}, ref), Error);
}
