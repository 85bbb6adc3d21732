// FP8 e4m3 on the host, for glq-bench's FP8 baseline: the weights and activations it hands to
// cuBLASLt are random values converted here. e4m3 as NVIDIA and OCP define it ("E4M3FN"): a sign,
// four exponent bits (bias 7) and three mantissa bits; exponent field 0 holds the subnormals
// (multiples of 2^-9), there are no infinities, and S.1111.111 is the only NaN, so the largest
// finite magnitude is 1.75 * 2^8 = 448.
#pragma once

#include <cstdint>

namespace glqjit::bench {

inline constexpr float kE4m3Max = 448.0f;
inline constexpr uint8_t kE4m3NaN = 0x7F;

// Rounds to the nearest e4m3 value, ties to even mantissa (what cvt.rn.satfinite.e4m3x2.f32 and
// CUDA's __nv_cvt_float_to_fp8(x, __NV_SATFINITE, __NV_E4M3) give): magnitudes above 448, infinities
// included, saturate to +-448; every NaN becomes 0x7F (sign dropped, as CUDA does); -0 stays 0x80.
uint8_t e4m3_from_float(float value);

// The exact value of an e4m3 byte (NaN for 0x7F and 0xFF).
float e4m3_to_float(uint8_t bits);

}  // namespace glqjit::bench
