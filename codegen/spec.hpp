// What one linear layer is, as far as the generated code cares.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "format/dtype.hpp"
#include "format/geometry.hpp"
#include "format/recipe.hpp"

namespace glqjit {

// The most linears one group (LinearSpec::shard_out_features) may hold.
inline constexpr int kMaxGroupShards = 8;

struct LinearSpec {
  int64_t in_features = 0;
  int64_t out_features = 0;
  int bpw = 2;
  DType dtype = DType::f16;
  bool has_bias = false;
  bool legacy_single_block = false;
  // Empty for one linear. For a group of linears that read the same input (q, k, v; gate, up),
  // each with its own checkpoint tensors (FORMAT.md 7), the out_features of each in order;
  // out_features is then their sum, the width of the outputs written side by side, and the
  // group's rows are each linear's padded rows one after another.
  std::vector<int64_t> shard_out_features = {};

  // "in=4096 out=4096 bpw=2 dtype=fp16 bias=0 rht=blocks", a group's with " shards=4096,1024,1024"
  std::string canonical() const;
  // Throws Error(unsupported_shape) for bad features. A group's: m_pad and out_blocks are its
  // linears' one after another, out_features their sum.
  Geometry geometry() const;
  Recipe recipe() const;  // throws Error(unsupported_shape) for bad bpw
  bool is_group() const { return !shard_out_features.empty(); }
  int shard_count() const { return is_group() ? int(shard_out_features.size()) : 1; }
  LinearSpec shard(int index) const;  // linear `index` of a group alone (a single linear: itself)
  int64_t shard_first_row(int index) const;  // where linear `index` starts in the group's rows
  bool operator==(const LinearSpec&) const = default;
};

// The spec of a group of 1 to kMaxGroupShards linears that read the same input (in_features and
// dtype shared; the rest taken from linear 0), in their order. Throws Error(invalid_argument)
// saying which linear does not fit.
LinearSpec group_of(const std::vector<LinearSpec>& linears);

}  // namespace glqjit
