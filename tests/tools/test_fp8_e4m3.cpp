// glq-bench's fp32 -> e4m3 converter (tools/fp8_e4m3): values worked out by hand for every
// case the format has (zeros, subnormals, ties, saturation, NaN), then agreement with CUDA's own
// host conversion (__nv_cvt_float_to_fp8, __NV_SATFINITE) around every e4m3 value and midpoint
// and over a sweep of all float bit patterns.
#include <cuda_fp8.h>

#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "tools/fp8_e4m3.hpp"

using glqjit::bench::e4m3_from_float;
using glqjit::bench::e4m3_to_float;

namespace {

// 2^exponent, exactly.
float power_of_two(int exponent) { return std::ldexp(1.0f, exponent); }

uint8_t cuda_e4m3(float value) { return uint8_t(__nv_cvt_float_to_fp8(value, __NV_SATFINITE, __NV_E4M3)); }

}  // namespace

TEST_CASE("e4m3: zeros keep their sign", "[fp8]") {
  CHECK(e4m3_from_float(0.0f) == 0x00);
  CHECK(e4m3_from_float(-0.0f) == 0x80);
}

TEST_CASE("e4m3: exact normal values", "[fp8]") {
  CHECK(e4m3_from_float(1.0f) == 0x38);          // exponent field 7, mantissa 0
  CHECK(e4m3_from_float(1.125f) == 0x39);        // 1 + 1/8
  CHECK(e4m3_from_float(-2.5f) == 0xC2);         // -1.25 * 2^1: field 8, mantissa 2
  CHECK(e4m3_from_float(240.0f) == 0x77);        // 1.875 * 2^7
  CHECK(e4m3_from_float(416.0f) == 0x7D);        // 1.625 * 2^8
  CHECK(e4m3_from_float(448.0f) == 0x7E);        // the largest finite value
  CHECK(e4m3_from_float(-448.0f) == 0xFE);
  CHECK(e4m3_from_float(power_of_two(-6)) == 0x08);  // the smallest normal
}

TEST_CASE("e4m3: subnormals are multiples of 2^-9", "[fp8]") {
  CHECK(e4m3_from_float(power_of_two(-9)) == 0x01);  // the smallest subnormal
  CHECK(e4m3_from_float(3 * power_of_two(-9)) == 0x03);
  CHECK(e4m3_from_float(7 * power_of_two(-9)) == 0x07);  // the largest subnormal
  CHECK(e4m3_from_float(-5 * power_of_two(-9)) == 0x85);
  // Under half the smallest subnormal rounds to zero; fp32 subnormals too.
  CHECK(e4m3_from_float(std::nextafter(power_of_two(-10), 0.0f)) == 0x00);
  CHECK(e4m3_from_float(power_of_two(-12)) == 0x00);
  CHECK(e4m3_from_float(std::numeric_limits<float>::denorm_min()) == 0x00);
  CHECK(e4m3_from_float(-std::numeric_limits<float>::denorm_min()) == 0x80);
}

TEST_CASE("e4m3: round to nearest, ties to even mantissa", "[fp8]") {
  // Normals: the quantum at [1, 2) is 1/8.
  CHECK(e4m3_from_float(1.0625f) == 0x38);  // 1 + 1/16: tie between 1.0 (even) and 1.125
  CHECK(e4m3_from_float(std::nextafter(1.0625f, 2.0f)) == 0x39);
  CHECK(e4m3_from_float(1.1875f) == 0x3A);  // 1 + 3/16: tie between 1.125 and 1.25 (even)
  CHECK(e4m3_from_float(1.9375f) == 0x40);  // 1 + 15/16: tie between 1.875 and 2.0 (even, next binade)
  CHECK(e4m3_from_float(0.1f) == 0x1D);     // 1.6 * 2^-4 -> 1.625 * 2^-4 = 0.1015625
  CHECK(e4m3_from_float(424.0f) == 0x7D);   // nearer 416 than 448
  CHECK(e4m3_from_float(432.0f) == 0x7E);   // tie between 416 and 448 (even)
  // Subnormals: the quantum is 2^-9.
  CHECK(e4m3_from_float(power_of_two(-10)) == 0x00);      // tie between 0 (even) and 2^-9
  CHECK(e4m3_from_float(std::nextafter(power_of_two(-10), 1.0f)) == 0x01);
  CHECK(e4m3_from_float(3 * power_of_two(-10)) == 0x02);  // 1.5 quanta: tie between 1 and 2 (even)
  CHECK(e4m3_from_float(15 * power_of_two(-10)) == 0x08); // 7.5 quanta: up to the smallest normal
}

TEST_CASE("e4m3: saturates to 448, infinities included", "[fp8]") {
  CHECK(e4m3_from_float(std::nextafter(448.0f, 1000.0f)) == 0x7E);
  CHECK(e4m3_from_float(464.0f) == 0x7E);  // would round to 480, which e4m3 does not have
  CHECK(e4m3_from_float(1e30f) == 0x7E);
  CHECK(e4m3_from_float(-1e30f) == 0xFE);
  CHECK(e4m3_from_float(std::numeric_limits<float>::infinity()) == 0x7E);
  CHECK(e4m3_from_float(-std::numeric_limits<float>::infinity()) == 0xFE);
}

TEST_CASE("e4m3: every NaN becomes 0x7F", "[fp8]") {
  CHECK(e4m3_from_float(std::numeric_limits<float>::quiet_NaN()) == 0x7F);
  CHECK(e4m3_from_float(-std::numeric_limits<float>::quiet_NaN()) == 0x7F);
  CHECK(e4m3_from_float(std::bit_cast<float>(0x7F800001u)) == 0x7F);  // a signalling NaN
  CHECK(std::isnan(e4m3_to_float(0x7F)));
  CHECK(std::isnan(e4m3_to_float(0xFF)));
}

TEST_CASE("e4m3: every finite code converts back to itself", "[fp8]") {
  for (int code = 0; code < 256; ++code) {
    if ((code & 0x7F) == 0x7F) continue;  // the NaNs
    INFO("code " << code);
    CHECK(e4m3_from_float(e4m3_to_float(uint8_t(code))) == code);
  }
  CHECK(e4m3_to_float(0x01) == power_of_two(-9));
  CHECK(e4m3_to_float(0x7E) == 448.0f);
  CHECK(e4m3_to_float(0xC2) == -2.5f);
}

TEST_CASE("e4m3: agrees with CUDA's host conversion", "[fp8]") {
  // Each finite code, its neighbours and the midpoints between neighbouring codes, one float
  // step either side: where rounding decides.
  std::vector<float> values;
  for (int code = 0; code < 0x7F; ++code) {
    const float here = e4m3_to_float(uint8_t(code));
    const float next = code < 0x7E ? e4m3_to_float(uint8_t(code + 1)) : 480.0f;
    const float midpoint = 0.5f * (here + next);  // exact: the codes are short
    for (float value : {here, midpoint}) {
      values.push_back(value);
      values.push_back(std::nextafter(value, 0.0f));
      values.push_back(std::nextafter(value, 1000.0f));
    }
  }
  size_t mismatches = 0;
  auto compare = [&](float value) {
    for (float signed_value : {value, -value}) {
      if (e4m3_from_float(signed_value) == cuda_e4m3(signed_value)) continue;
      if (++mismatches <= 10) {
        UNSCOPED_INFO("value " << signed_value << " (bits " << std::bit_cast<uint32_t>(signed_value) << "): ours "
                               << int(e4m3_from_float(signed_value)) << ", CUDA's " << int(cuda_e4m3(signed_value)));
      }
    }
  };
  for (float value : values) compare(value);
  // Then one float in every 4099 (a prime stride, so every mantissa pattern comes up), NaNs and
  // infinities included.
  for (uint64_t bits = 0; bits <= 0x7FFFFFFFu; bits += 4099) compare(std::bit_cast<float>(uint32_t(bits)));
  CHECK(mismatches == 0);
}
