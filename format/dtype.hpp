// Activation dtypes and their rounding on the CPU (round to nearest, ties to even).
#pragma once

#include <cstdint>
#include <string_view>

namespace glqjit {

enum class DType { f16, bf16 };

std::string_view dtype_name(DType dtype);  // "fp16", "bf16"
DType parse_dtype(std::string_view name);  // "fp16"/"float16"/"bf16"/"bfloat16"; throws Error otherwise

uint16_t float_to_bits(DType dtype, float value);
float bits_to_float(DType dtype, uint16_t bits);
float round_to(DType dtype, double value);  // the nearest value representable in dtype

// FORMAT.md section 8: the largest relative L2 error of y against the fp64 evaluation.
double output_tolerance(DType dtype);

}  // namespace glqjit
