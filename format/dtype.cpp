#include "format/dtype.hpp"

#include <bit>
#include <cmath>
#include <limits>
#include <string>

#include "glqjit/error.hpp"

namespace glqjit {
namespace {

struct Layout {
  int mantissa_bits;  // explicit fraction bits
  int min_exponent;   // exponent of the smallest normal value
  int max_exponent;   // exponent of the largest finite value
};

Layout layout_of(DType dtype) { return dtype == DType::f16 ? Layout{10, -14, 15} : Layout{7, -126, 127}; }

// Rounds straight from double: going through float first would round twice and can land on
// the wrong neighbour at a tie of the narrow format.
double round_double(DType dtype, double value) {
  if (!std::isfinite(value) || value == 0.0) return value;
  const Layout layout = layout_of(dtype);
  int exponent = std::ilogb(value);
  if (exponent < layout.min_exponent) exponent = layout.min_exponent;  // subnormals share one quantum
  const double quantum = std::ldexp(1.0, exponent - layout.mantissa_bits);
  const double rounded = std::nearbyint(value / quantum) * quantum;  // default mode: ties to even
  const double max_finite = std::ldexp(2.0 - std::ldexp(1.0, -layout.mantissa_bits), layout.max_exponent);
  if (std::fabs(rounded) > max_finite) return std::copysign(std::numeric_limits<double>::infinity(), value);
  return rounded;
}

uint16_t encode_f16(float value) {
  const uint16_t sign = std::signbit(value) ? 0x8000 : 0;
  if (std::isnan(value)) return sign | 0x7e00;
  if (std::isinf(value)) return sign | 0x7c00;
  const float magnitude = std::fabs(value);
  if (magnitude == 0.0f) return sign;
  const int exponent = std::ilogb(magnitude);
  if (exponent < -14) return sign | uint16_t(std::ldexp(magnitude, 24));
  const auto fraction = uint16_t(std::ldexp(magnitude, 10 - exponent) - 1024.0f);
  return sign | uint16_t((exponent + 15) << 10) | fraction;
}

float decode_f16(uint16_t bits) {
  const float sign = (bits & 0x8000) ? -1.0f : 1.0f;
  const int biased = (bits >> 10) & 0x1f;
  const int fraction = bits & 0x3ff;
  if (biased == 0x1f) return fraction ? std::numeric_limits<float>::quiet_NaN() : sign * INFINITY;
  if (biased == 0) return sign * std::ldexp(float(fraction), -24);
  return sign * std::ldexp(float(1024 + fraction), biased - 25);
}

}  // namespace

std::string_view dtype_name(DType dtype) { return dtype == DType::f16 ? "fp16" : "bf16"; }

DType parse_dtype(std::string_view name) {
  if (name == "fp16" || name == "float16") return DType::f16;
  if (name == "bf16" || name == "bfloat16") return DType::bf16;
  throw Error(Status::invalid_argument,
              "unknown dtype '" + std::string(name) + "': glqjit activations are fp16 (float16) or bf16 (bfloat16)");
}

float round_to(DType dtype, double value) { return float(round_double(dtype, value)); }

uint16_t float_to_bits(DType dtype, float value) {
  const float rounded = round_to(dtype, value);
  if (dtype == DType::f16) return encode_f16(rounded);
  if (std::isnan(rounded)) return std::signbit(rounded) ? 0xffc0 : 0x7fc0;
  return uint16_t(std::bit_cast<uint32_t>(rounded) >> 16);  // rounded has no bits below the top 16
}

float bits_to_float(DType dtype, uint16_t bits) {
  if (dtype == DType::f16) return decode_f16(bits);
  return std::bit_cast<float>(uint32_t(bits) << 16);
}

double output_tolerance(DType dtype) { return dtype == DType::f16 ? 2e-3 : 4e-3; }

}  // namespace glqjit
