// What one linear layer is, as far as the generated code cares.
#pragma once

#include <cstdint>
#include <string>

#include "format/dtype.hpp"
#include "format/geometry.hpp"
#include "format/recipe.hpp"

namespace glqjit {

struct LinearSpec {
  int64_t in_features = 0;
  int64_t out_features = 0;
  int bpw = 2;
  DType dtype = DType::f16;
  bool has_bias = false;
  bool legacy_single_block = false;

  std::string canonical() const;  // "in=4096 out=4096 bpw=2 dtype=fp16 bias=0 rht=blocks"
  Geometry geometry() const;      // throws Error(unsupported_shape) for bad features
  Recipe recipe() const;          // throws Error(unsupported_shape) for bad bpw
  bool operator==(const LinearSpec&) const = default;
};

}  // namespace glqjit
