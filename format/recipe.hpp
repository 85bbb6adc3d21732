// Residual stages and scales per bpw (FORMAT.md section 4).
#pragma once

#include <vector>

namespace glqjit {

enum class StageKind { e8p, e81b };

struct Recipe {
  int bpw = 0;
  std::vector<StageKind> stages;  // stage 0 first
};

constexpr int kMinBpw = 2;
constexpr int kMaxBpw = 8;

Recipe recipe_for_bpw(int bpw);

// Whether any stage of the recipe decodes with this codebook.
bool uses(const Recipe& recipe, StageKind kind);  // throws Error(unsupported_shape) outside 2..8

// The nominal c_1.. c_k (k = stages - 1) a quantizer writes; checkpoints store their own values.
std::vector<float> nominal_inv_resid_scales(const Recipe& recipe);

}  // namespace glqjit
