// The block-diagonal normalized Walsh-Hadamard operator H_d of FORMAT.md section 5, in place.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace glqjit {

// v.size() must equal the sum of blocks; each block is a power of two.
void hadamard_inplace(std::span<double> v, const std::vector<int64_t>& blocks);
void hadamard_inplace(std::span<float> v, const std::vector<int64_t>& blocks);

}  // namespace glqjit
