#include "tools/fp8_e4m3.hpp"

#include <algorithm>
#include <bit>
#include <cmath>
#include <limits>

namespace glqjit::bench {
namespace {

constexpr int kMantissaBits = 3;
constexpr int kExponentBias = 7;
constexpr int kMinNormalExponent = 1 - kExponentBias;                     // 2^-6
constexpr int kSubnormalQuantumExponent = kMinNormalExponent - kMantissaBits;  // 2^-9

}  // namespace

uint8_t e4m3_from_float(float value) {
  const uint32_t bits = std::bit_cast<uint32_t>(value);
  const uint8_t sign = uint8_t((bits >> 24) & 0x80u);
  const uint32_t magnitude = bits & 0x7FFFFFFFu;
  if (magnitude > 0x7F800000u) return kE4m3NaN;
  if (std::bit_cast<float>(magnitude) >= kE4m3Max) return sign | 0x7E;  // saturate, infinity too
  const uint32_t biased_exponent = magnitude >> 23;
  // fp32 zeros and subnormals are below 2^-126, far under half the smallest e4m3 subnormal.
  if (biased_exponent == 0) return sign;

  // magnitude = significand * 2^(exponent - 23), significand with its implicit leading one.
  const int exponent = int(biased_exponent) - 127;
  const uint32_t significand = (magnitude & 0x7FFFFFu) | 0x800000u;
  // The e4m3 quantum at this magnitude: 2^(exponent - 3) for normals, 2^-9 for subnormals.
  const int quantum_exponent = std::max(exponent, kMinNormalExponent) - kMantissaBits;
  const int shift = quantum_exponent - (exponent - 23);  // 20 for normals, more below 2^-6
  if (shift > 25) return sign;                           // under a quarter quantum: zero
  const uint32_t quanta = significand >> shift;
  const uint32_t remainder = significand & ((1u << shift) - 1);
  const uint32_t half = 1u << (shift - 1);
  const bool round_up = remainder > half || (remainder == half && (quanta & 1u) != 0);
  const uint32_t rounded = quanta + (round_up ? 1 : 0);
  if (exponent < kMinNormalExponent) {
    // A subnormal count of 2^-9 quanta; 8 of them is the smallest normal, whose code is also 8.
    return sign | uint8_t(rounded);
  }
  // rounded is 8..16 (the implicit one is 8); 16 carries into the next binade, which the sum
  // below encodes on its own. Below 448 nothing carries past exponent field 15.
  return sign | uint8_t(((exponent + kExponentBias) << kMantissaBits) + int(rounded) - 8);
}

float e4m3_to_float(uint8_t bits) {
  const int exponent_field = (bits >> kMantissaBits) & 0xF;
  const int mantissa = bits & 0x7;
  const float sign = (bits & 0x80) != 0 ? -1.0f : 1.0f;
  if (exponent_field == 0xF && mantissa == 0x7) return std::numeric_limits<float>::quiet_NaN();
  if (exponent_field == 0) return sign * std::ldexp(float(mantissa), kSubnormalQuantumExponent);
  return sign * std::ldexp(float(8 + mantissa), exponent_field - kExponentBias - kMantissaBits);
}

}  // namespace glqjit::bench
