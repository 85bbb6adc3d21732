// The quantized linears of a GLQ checkpoint folder (FORMAT.md section 7): config.json and the
// safetensors headers (never the tensor data) give each linear's exact shape and bpw.
#pragma once

#include <string>

#include "tuner/model_config.hpp"

namespace glqjit {

// Throws glqjit::Error(invalid_argument) naming the file, the tensor and what to do for a
// missing or foreign config, a truncated or lying safetensors header, a missing tensor, or a
// tensor of the wrong dtype or shape.
ModelShapes read_glq_checkpoint(const std::string& folder);

}  // namespace glqjit
