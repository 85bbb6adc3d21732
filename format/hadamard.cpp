#include "format/hadamard.hpp"

#include <bit>
#include <cmath>
#include <string>

#include "glqjit/error.hpp"

namespace glqjit {
namespace {

void check_blocks(size_t size, const std::vector<int64_t>& blocks) {
  int64_t total = 0;
  for (int64_t block : blocks) {
    if (block < 1 || !std::has_single_bit(uint64_t(block))) {
      throw Error(Status::invalid_argument, "Hadamard block " + std::to_string(block) +
                                                " is not a power of two; use hadamard_blocks() to split a size");
    }
    total += block;
  }
  if (total != int64_t(size)) {
    throw Error(Status::invalid_argument, "Hadamard blocks sum to " + std::to_string(total) + " but the vector has " +
                                              std::to_string(size) + " values; pass the padded vector");
  }
}

// Sylvester butterflies: after the pass of width h, each pair (i, i + h) holds (a + b, a - b),
// which builds (-1)^popcount(i & j) one bit at a time.
template <typename T>
void transform(std::span<T> v, const std::vector<int64_t>& blocks) {
  check_blocks(v.size(), blocks);
  T* block_start = v.data();
  for (int64_t block : blocks) {
    for (int64_t half = 1; half < block; half *= 2) {
      for (int64_t start = 0; start < block; start += 2 * half) {
        for (int64_t i = start; i < start + half; ++i) {
          const T a = block_start[i];
          const T b = block_start[i + half];
          block_start[i] = a + b;
          block_start[i + half] = a - b;
        }
      }
    }
    const T scale = T(1.0 / std::sqrt(double(block)));
    for (int64_t i = 0; i < block; ++i) block_start[i] *= scale;
    block_start += block;
  }
}

}  // namespace

void hadamard_inplace(std::span<double> v, const std::vector<int64_t>& blocks) { transform(v, blocks); }
void hadamard_inplace(std::span<float> v, const std::vector<int64_t>& blocks) { transform(v, blocks); }

}  // namespace glqjit
