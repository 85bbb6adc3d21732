// The CPU reference forward of FORMAT.md section 1, in fp64 and in the numerics of section 8.
// x is [batch, in_features] row-major; results are [batch, out_features] row-major.
#pragma once

#include <span>
#include <vector>

#include "format/dtype.hpp"
#include "format/layer.hpp"

namespace glqjit {

// Decoded stage s as a dense m_pad x n_pad row-major matrix (D_s of section 1, unscaled).
std::vector<double> decode_stage(const QuantizedLayer& layer, int stage);

std::vector<double> reference_forward_fp64(const QuantizedLayer& layer, std::span<const double> x, int batch);

// Section 8: u rounded to fp16, fp32 accumulation, Wscale and c_s in fp32, output transform
// in fp32, one rounding to `dtype` at the end (returned as float values of that dtype).
std::vector<float> reference_forward_numerics(const QuantizedLayer& layer, std::span<const float> x, int batch,
                                              DType dtype);

// ||got - ref|| / ||ref||; infinity if got holds a NaN or infinity.
double relative_l2_error(std::span<const double> got, std::span<const double> ref);
double relative_l2_error(std::span<const float> got, std::span<const double> ref);

}  // namespace glqjit
