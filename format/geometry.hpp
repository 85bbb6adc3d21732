// Padding and Hadamard block lists of a layer (FORMAT.md section 5).
#pragma once

#include <cstdint>
#include <vector>

namespace glqjit {

// Features beyond this are rejected as absurd (no LLM layer comes near it).
constexpr int64_t kMaxFeatures = int64_t(1) << 20;

struct Geometry {
  int64_t in_features = 0;   // n
  int64_t out_features = 0;  // m
  int64_t n_pad = 0;
  int64_t m_pad = 0;
  std::vector<int64_t> in_blocks;   // Hadamard blocks of n_pad, in order
  std::vector<int64_t> out_blocks;  // Hadamard blocks of m_pad, in order
  bool legacy_single_block = false;
};

// Throws Error(unsupported_shape) naming the bad value for features outside 1..kMaxFeatures.
Geometry make_geometry(int64_t in_features, int64_t out_features, bool legacy_single_block = false);

// Descending powers of two that sum to `padded` (e.g. 11008 -> 8192 2048 512 256).
std::vector<int64_t> hadamard_blocks(int64_t padded);

}  // namespace glqjit
