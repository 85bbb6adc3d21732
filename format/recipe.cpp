#include "format/recipe.hpp"

#include <algorithm>

#include <string>

#include "glqjit/error.hpp"

namespace glqjit {

Recipe recipe_for_bpw(int bpw) {
  if (bpw < kMinBpw || bpw > kMaxBpw) {
    throw Error(Status::unsupported_shape, "bpw " + std::to_string(bpw) +
                                               " is not supported: glqjit supports integer bpw " +
                                               std::to_string(kMinBpw) + ".." + std::to_string(kMaxBpw) +
                                               " (FORMAT.md section 4); leave this layer unquantized or requantize it");
  }
  Recipe recipe{bpw, std::vector<StageKind>(bpw / 2, StageKind::e8p)};
  if (bpw % 2 != 0) recipe.stages.push_back(StageKind::e81b);
  return recipe;
}

std::vector<float> nominal_inv_resid_scales(const Recipe& recipe) {
  std::vector<float> scales;
  double product = 1.0;
  for (size_t k = 1; k < recipe.stages.size(); ++k) {
    product *= recipe.stages[k] == StageKind::e81b ? 2.04 : 3.45;
    scales.push_back(float(1.0 / product));
  }
  return scales;
}

bool uses(const Recipe& recipe, StageKind kind) {
  return std::find(recipe.stages.begin(), recipe.stages.end(), kind) != recipe.stages.end();
}

}  // namespace glqjit
