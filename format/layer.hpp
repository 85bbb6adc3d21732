// One quantized linear layer held on the CPU, and a seeded generator of random valid ones.
#pragma once

#include <cstdint>
#include <vector>

#include "format/dtype.hpp"
#include "format/geometry.hpp"
#include "format/recipe.hpp"

namespace glqjit {

struct QuantizedLayer {
  Geometry geometry;
  Recipe recipe;
  std::vector<std::vector<uint64_t>> stages;  // packed as FORMAT.md section 6, one per stage
  std::vector<uint16_t> su;                   // fp16 bits of +-1, m_pad values
  std::vector<uint16_t> sv;                   // fp16 bits of +-1, n_pad values
  float wscale = 1.0f;
  std::vector<float> inv_resid_scales;  // c_1 .. c_k, one per stage after the first
  std::vector<float> bias;              // empty, or out_features values representable in the dtype
};

struct RandomLayerOptions {
  bool with_bias = false;
  bool legacy_single_block = false;
  DType bias_dtype = DType::f16;
};

// Uniformly random codes and signs, nominal residual scales, a Wscale that keeps outputs
// near unit size for unit inputs; the same seed gives the same layer.
QuantizedLayer random_layer(int64_t in_features, int64_t out_features, int bpw, uint64_t seed,
                            const RandomLayerOptions& options = {});

// Throws Error(invalid_argument) if any tensor's size disagrees with geometry and recipe.
void validate_layer(const QuantizedLayer& layer);

}  // namespace glqjit
