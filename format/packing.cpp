#include "format/packing.hpp"

#include <algorithm>
#include <string>

#include "glqjit/error.hpp"

namespace glqjit {
namespace {

void check_padded(int64_t m_pad, int64_t n_pad) {
  if (m_pad < 16 || m_pad % 16 != 0 || n_pad < 64 || n_pad % 64 != 0) {
    throw Error(Status::invalid_argument, "padded shape m_pad " + std::to_string(m_pad) + ", n_pad " +
                                              std::to_string(n_pad) +
                                              " is not whole 16 x 64 tiles; take m_pad and n_pad from make_geometry()");
  }
}

void check_size(const char* what, size_t given, int64_t expected, int64_t m_pad, int64_t n_pad) {
  if (int64_t(given) != expected) {
    throw Error(Status::invalid_argument, std::string(what) + " has " + std::to_string(given) + " entries but m_pad " +
                                              std::to_string(m_pad) + " x n_pad " + std::to_string(n_pad) + " needs " +
                                              std::to_string(expected));
  }
}

std::string shape_text(std::span<const int64_t> shape) {
  std::string text = "(";
  for (size_t i = 0; i < shape.size(); ++i) text += (i ? ", " : "") + std::to_string(shape[i]);
  return text + ")";
}

// Position of idx16[row][g] in the packed E8P tensor: (word index, code slot i of section 6).
struct E8pSlot {
  int64_t word;
  int slot;
};

E8pSlot e8p_slot(int64_t row, int64_t g, int64_t n_pad) {
  const int64_t tile_row = row / 16, pair = (row % 16) / 2;
  const int64_t tile_col = g / 8, quad = (g % 8) / 2;
  const int slot = int(row & 1) | int(g & 1) << 1;
  return {((tile_row * (n_pad / 64) + tile_col) * 8 + pair) * 4 + quad, slot};
}

}  // namespace

std::vector<uint64_t> pack_e8p(std::span<const uint16_t> codes, int64_t m_pad, int64_t n_pad) {
  check_padded(m_pad, n_pad);
  check_size("E8P code list", codes.size(), m_pad * (n_pad / 8), m_pad, n_pad);
  std::vector<uint64_t> words(size_t(m_pad * n_pad / 32), 0);
  for (int64_t row = 0; row < m_pad; ++row) {
    for (int64_t g = 0; g < n_pad / 8; ++g) {
      const uint64_t code = codes[size_t(row * (n_pad / 8) + g)];
      const E8pSlot at = e8p_slot(row, g, n_pad);
      uint64_t word = (code >> 8) << (8 * at.slot);
      for (int j = 0; j < 8; ++j) word |= (code >> j & 1) << (32 + 4 * j + at.slot);
      words[size_t(at.word)] |= word;
    }
  }
  return words;
}

std::vector<uint16_t> unpack_e8p(std::span<const uint64_t> words, int64_t m_pad, int64_t n_pad) {
  check_padded(m_pad, n_pad);
  check_size("packed E8P stage", words.size(), m_pad * n_pad / 32, m_pad, n_pad);
  std::vector<uint16_t> codes(size_t(m_pad * (n_pad / 8)));
  for (int64_t row = 0; row < m_pad; ++row) {
    for (int64_t g = 0; g < n_pad / 8; ++g) {
      const E8pSlot at = e8p_slot(row, g, n_pad);
      const uint64_t word = words[size_t(at.word)];
      unsigned code = unsigned(word >> (8 * at.slot) & 0xff) << 8;
      for (int j = 0; j < 8; ++j) code |= unsigned(word >> (32 + 4 * j + at.slot) & 1) << j;
      codes[size_t(row * (n_pad / 8) + g)] = uint16_t(code);
    }
  }
  return codes;
}

std::vector<uint64_t> pack_e81b(std::span<const uint8_t> codes, int64_t m_pad, int64_t n_pad) {
  check_padded(m_pad, n_pad);
  check_size("E81B code list", codes.size(), m_pad * (n_pad / 8), m_pad, n_pad);
  std::vector<uint64_t> words(size_t(m_pad * n_pad / 64), 0);
  for (size_t k = 0; k < codes.size(); ++k) words[k / 8] |= uint64_t(codes[k]) << (8 * (k % 8));
  return words;
}

std::vector<uint8_t> unpack_e81b(std::span<const uint64_t> words, int64_t m_pad, int64_t n_pad) {
  check_padded(m_pad, n_pad);
  check_size("packed E81B stage", words.size(), m_pad * n_pad / 64, m_pad, n_pad);
  std::vector<uint8_t> codes(size_t(m_pad * (n_pad / 8)));
  for (size_t k = 0; k < codes.size(); ++k) codes[k] = uint8_t(words[k / 8] >> (8 * (k % 8)));
  return codes;
}

std::vector<int64_t> stage_tensor_shape(StageKind kind, int64_t m_pad, int64_t n_pad) {
  check_padded(m_pad, n_pad);
  if (kind == StageKind::e8p) return {m_pad / 16, n_pad / 64, 8, 4};
  return {m_pad, n_pad / 64};
}

void check_stage_tensor_shape(StageKind kind, int stage, std::span<const int64_t> shape, int64_t m_pad, int64_t n_pad) {
  const std::vector<int64_t> expected = stage_tensor_shape(kind, m_pad, n_pad);
  if (std::equal(expected.begin(), expected.end(), shape.begin(), shape.end())) return;
  throw Error(Status::invalid_argument, "stage " + std::to_string(stage) +
                                            (kind == StageKind::e8p ? " (e8p)" : " (e81b)") + " tensor has shape " +
                                            shape_text(shape) + " but m_pad " + std::to_string(m_pad) + ", n_pad " +
                                            std::to_string(n_pad) + " needs " + shape_text(expected) +
                                            " (FORMAT.md section 6); check the bpw and shape of this layer");
}

}  // namespace glqjit
