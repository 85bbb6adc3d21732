// Rounding to fp16 and bf16: ties to even, subnormals, overflow, and no double rounding.
#include <catch2/catch.hpp>
#include <cmath>
#include <limits>
#include <random>

#include "format/dtype.hpp"
#include "glqjit/error.hpp"

using namespace glqjit;

TEST_CASE("fp16 bit patterns of known values", "[dtype]") {
  CHECK(float_to_bits(DType::f16, 1.0f) == 0x3c00);
  CHECK(float_to_bits(DType::f16, -1.0f) == 0xbc00);
  CHECK(float_to_bits(DType::f16, 65504.0f) == 0x7bff);
  CHECK(float_to_bits(DType::f16, 65520.0f) == 0x7c00);  // halfway to 2^16 rounds to even: infinity
  CHECK(float_to_bits(DType::f16, 65519.0f) == 0x7bff);
  CHECK(float_to_bits(DType::f16, std::ldexp(1.0f, -24)) == 0x0001);
  CHECK(float_to_bits(DType::f16, std::ldexp(1.0f, -25)) == 0x0000);  // tie between 0 and 2^-24: even is 0
  CHECK(float_to_bits(DType::f16, std::ldexp(3.0f, -25)) == 0x0002);
  CHECK(float_to_bits(DType::f16, std::ldexp(1.0f, -14)) == 0x0400);
  CHECK(float_to_bits(DType::f16, -0.0f) == 0x8000);
  CHECK(float_to_bits(DType::f16, 0.333333333f) == 0x3555);
  CHECK((float_to_bits(DType::f16, NAN) & 0x7c00) == 0x7c00);
  CHECK((float_to_bits(DType::f16, NAN) & 0x03ff) != 0);
}

TEST_CASE("bf16 bit patterns of known values", "[dtype]") {
  CHECK(float_to_bits(DType::bf16, 1.0f) == 0x3f80);
  CHECK(float_to_bits(DType::bf16, -2.0f) == 0xc000);
  CHECK(float_to_bits(DType::bf16, 1.0f + std::ldexp(1.0f, -8)) == 0x3f80);  // tie: even stays 1.0
  CHECK(float_to_bits(DType::bf16, 1.0f + std::ldexp(3.0f, -8)) == 0x3f82);  // tie: rounds up to even
  CHECK(float_to_bits(DType::bf16, std::numeric_limits<float>::max()) == 0x7f80);
  CHECK(std::isnan(bits_to_float(DType::bf16, float_to_bits(DType::bf16, NAN))));
}

TEST_CASE("round_to rounds from double directly, not through float", "[dtype]") {
  // Through float, 1 + 2^-11 + 2^-40 first becomes the tie 1 + 2^-11, which then rounds down to 1.
  CHECK(round_to(DType::f16, 1.0 + std::ldexp(1.0, -11) + std::ldexp(1.0, -40)) == 1.0f + std::ldexp(1.0f, -10));
  CHECK(round_to(DType::bf16, 1.0 + std::ldexp(1.0, -8) + std::ldexp(1.0, -40)) == 1.0f + std::ldexp(1.0f, -7));
  CHECK(round_to(DType::f16, 1.0 + std::ldexp(1.0, -11)) == 1.0f);
}

TEST_CASE("bits round-trip and rounding is the nearest representable value", "[dtype]") {
  for (DType dtype : {DType::f16, DType::bf16}) {
    INFO(dtype_name(dtype));
    for (unsigned bits = 0; bits < 65536; ++bits) {
      const float value = bits_to_float(dtype, uint16_t(bits));
      if (std::isnan(value)) continue;
      if (float_to_bits(dtype, value) != bits)
        FAIL("bits " << bits << " decode to " << value << " and re-encode differently");
    }
    const uint64_t seed = std::random_device{}();
    INFO("seed " << seed);
    std::mt19937_64 rng(seed);
    std::normal_distribution<double> normal(0.0, 100.0);
    for (int trial = 0; trial < 20000; ++trial) {
      const double value = normal(rng);
      const float rounded = round_to(dtype, value);
      const uint16_t bits = float_to_bits(dtype, rounded);
      // Neighbours one step away in the bit pattern are never closer.
      const double error = std::fabs(rounded - value);
      CHECK(std::fabs(bits_to_float(dtype, uint16_t(bits + 1)) - value) >= error);
      if ((bits & 0x7fff) != 0) CHECK(std::fabs(bits_to_float(dtype, uint16_t(bits - 1)) - value) >= error);
    }
  }
}

TEST_CASE("dtype names parse and unknown ones are rejected", "[dtype][errors]") {
  CHECK(parse_dtype("fp16") == DType::f16);
  CHECK(parse_dtype("float16") == DType::f16);
  CHECK(parse_dtype("bf16") == DType::bf16);
  CHECK(parse_dtype("bfloat16") == DType::bf16);
  CHECK(dtype_name(DType::f16) == "fp16");
  CHECK(dtype_name(DType::bf16) == "bf16");
  CHECK(output_tolerance(DType::f16) == 2e-3);
  CHECK(output_tolerance(DType::bf16) == 4e-3);
  try {
    parse_dtype("fp32");
    FAIL("fp32 accepted");
  } catch (const Error& error) {
    CHECK(error.status() == Status::invalid_argument);
    CHECK_THAT(error.what(), Catch::Contains("fp32") && Catch::Contains("bf16"));
  }
}
