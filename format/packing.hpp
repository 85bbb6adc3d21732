// The packed stage layouts of FORMAT.md section 6, both ways.
// Codes are row-major: e8p codes[row * (n_pad/8) + g] is idx16[row][g]; e81b likewise idx8.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "format/recipe.hpp"

namespace glqjit {

std::vector<uint64_t> pack_e8p(std::span<const uint16_t> codes, int64_t m_pad, int64_t n_pad);
std::vector<uint16_t> unpack_e8p(std::span<const uint64_t> words, int64_t m_pad, int64_t n_pad);
std::vector<uint64_t> pack_e81b(std::span<const uint8_t> codes, int64_t m_pad, int64_t n_pad);
std::vector<uint8_t> unpack_e81b(std::span<const uint64_t> words, int64_t m_pad, int64_t n_pad);

// The tensor shape a checkpoint holds for one stage: (m_pad/16, n_pad/64, 8, 4) or (m_pad, n_pad/64).
std::vector<int64_t> stage_tensor_shape(StageKind kind, int64_t m_pad, int64_t n_pad);
// Throws Error(invalid_argument) naming the stage, the expected and the given shape.
void check_stage_tensor_shape(StageKind kind, int stage, std::span<const int64_t> shape, int64_t m_pad,
                              int64_t n_pad);

}  // namespace glqjit
