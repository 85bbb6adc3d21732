#include "codegen/spec.hpp"

#include <fmt/format.h>

namespace glqjit {

std::string LinearSpec::canonical() const {
  return fmt::format("in={} out={} bpw={} dtype={} bias={} rht={}", in_features, out_features, bpw, dtype_name(dtype),
                     has_bias ? 1 : 0, legacy_single_block ? "single" : "blocks");
}

Geometry LinearSpec::geometry() const { return make_geometry(in_features, out_features, legacy_single_block); }

Recipe LinearSpec::recipe() const { return recipe_for_bpw(bpw); }

}  // namespace glqjit
