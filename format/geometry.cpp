#include "format/geometry.hpp"

#include <bit>
#include <string>

#include "glqjit/error.hpp"

namespace glqjit {
namespace {

void check_features(const char* name, int64_t features) {
  if (features < 1 || features > kMaxFeatures) {
    throw Error(Status::unsupported_shape, std::string(name) + " " + std::to_string(features) +
                                               " is not supported: glqjit accepts 1.." + std::to_string(kMaxFeatures) +
                                               "; check the layer shape read from the checkpoint");
  }
}

int64_t round_up(int64_t value, int64_t multiple) { return (value + multiple - 1) / multiple * multiple; }

// Legacy checkpoints use one block, but it must still hold whole 16 x 64 tiles.
int64_t legacy_padded(int64_t features, int64_t tile) {
  return int64_t(std::bit_ceil(uint64_t(features < tile ? tile : features)));
}

}  // namespace

Geometry make_geometry(int64_t in_features, int64_t out_features, bool legacy_single_block) {
  check_features("in_features", in_features);
  check_features("out_features", out_features);
  Geometry geometry;
  geometry.in_features = in_features;
  geometry.out_features = out_features;
  geometry.legacy_single_block = legacy_single_block;
  if (legacy_single_block) {
    geometry.n_pad = legacy_padded(in_features, 64);
    geometry.m_pad = legacy_padded(out_features, 16);
    geometry.in_blocks = {geometry.n_pad};
    geometry.out_blocks = {geometry.m_pad};
  } else {
    geometry.n_pad = round_up(in_features, 64);
    geometry.m_pad = round_up(out_features, 16);
    geometry.in_blocks = hadamard_blocks(geometry.n_pad);
    geometry.out_blocks = hadamard_blocks(geometry.m_pad);
  }
  return geometry;
}

std::vector<int64_t> hadamard_blocks(int64_t padded) {
  if (padded < 1) {
    throw Error(Status::invalid_argument,
                "padded size " + std::to_string(padded) + " has no Hadamard blocks: it must be at least 1");
  }
  std::vector<int64_t> blocks;
  for (int bit = 62; bit >= 0; --bit) {
    if (padded >> bit & 1) blocks.push_back(int64_t(1) << bit);
  }
  return blocks;
}

}  // namespace glqjit
