#include "format/codebook.hpp"

#include <algorithm>
#include <bit>
#include <cstdio>
#include <functional>
#include <set>
#include <vector>

#include "glqjit/error.hpp"

namespace glqjit {
namespace {

using HalfRow = std::array<int8_t, 8>;

// Depth-first over coordinate 0 first and values ascending, so visiting order is the nested
// loop order of FORMAT.md; branches whose squared norm is already too large are cut early.
void enumerate_rows(const std::vector<int>& values, int max_square_sum,
                    const std::function<void(const std::array<int, 8>&)>& visit) {
  std::array<int, 8> row{};
  std::function<void(int, int)> descend = [&](int coordinate, int square_sum) {
    if (coordinate == 8) {
      visit(row);
      return;
    }
    for (int value : values) {
      if (square_sum + value * value > max_square_sum) continue;
      row[coordinate] = value;
      descend(coordinate + 1, square_sum + value * value);
    }
  };
  descend(0, 0);
}

// Section 2.1 step 3, in half units.
constexpr int8_t kAppendedRows[29][8] = {
    {3, 1, 1, 1, 3, 3, 3, 3}, {1, 3, 1, 1, 3, 3, 3, 3}, {1, 1, 3, 1, 3, 3, 3, 3}, {1, 1, 1, 3, 3, 3, 3, 3},
    {3, 3, 3, 1, 3, 3, 1, 1}, {3, 3, 3, 1, 3, 1, 3, 1}, {3, 3, 3, 1, 1, 3, 3, 1}, {3, 3, 3, 1, 3, 1, 1, 3},
    {3, 3, 3, 1, 1, 3, 1, 3}, {3, 3, 3, 1, 1, 1, 3, 3}, {3, 3, 1, 3, 3, 3, 1, 1}, {3, 3, 1, 3, 3, 1, 3, 1},
    {3, 3, 1, 3, 1, 3, 3, 1}, {3, 3, 1, 3, 3, 1, 1, 3}, {3, 3, 1, 3, 1, 3, 1, 3}, {3, 3, 1, 3, 1, 1, 3, 3},
    {3, 1, 3, 3, 3, 3, 1, 1}, {3, 1, 3, 3, 3, 1, 3, 1}, {3, 1, 3, 3, 1, 3, 3, 1}, {3, 1, 3, 3, 3, 1, 1, 3},
    {3, 1, 3, 3, 1, 3, 1, 3}, {1, 3, 3, 3, 1, 1, 3, 3}, {1, 3, 3, 3, 3, 3, 1, 1}, {1, 3, 3, 3, 3, 1, 3, 1},
    {1, 3, 3, 3, 1, 3, 3, 1}, {1, 3, 3, 3, 3, 1, 1, 3}, {1, 3, 3, 3, 1, 3, 1, 3}, {1, 1, 3, 3, 1, 3, 3, 3},
    {3, 3, 1, 1, 3, 3, 3, 1},
};

std::array<HalfRow, 256> build_e8p_abs_rows() {
  std::set<HalfRow> distinct;  // std::set orders rows lexicographically, coordinate 0 first
  enumerate_rows({-7, -5, -3, -1, 1, 3, 5, 7}, 40, [&](const std::array<int, 8>& h) {
    int sum = 0;
    for (int value : h) sum += value;
    if (sum % 4 != 0) return;
    HalfRow magnitudes;
    for (int i = 0; i < 8; ++i) magnitudes[i] = int8_t(h[i] < 0 ? -h[i] : h[i]);
    distinct.insert(magnitudes);
  });
  if (distinct.size() != 227)
    throw Error(Status::internal,
                "E8P abs construction gave " + std::to_string(distinct.size()) + " rows, FORMAT.md 2.1 says 227");

  std::array<HalfRow, 256> rows;
  std::copy(distinct.begin(), distinct.end(), rows.begin());
  for (int k = 0; k < 29; ++k) std::copy(kAppendedRows[k], kAppendedRows[k] + 8, rows[227 + k].begin());
  for (HalfRow& row : rows) {
    int sum = 0;
    for (int8_t value : row) sum += value;
    if ((sum / 2) % 2 != 0) row[7] = int8_t(-row[7]);
  }
  return rows;
}

std::array<std::array<double, 8>, 256> build_e81b_rows() {
  std::vector<std::array<double, 8>> rows;
  // Even coordinate sum and squared norm <= 2, checked in doubled units so everything stays integral.
  const auto keep_if_in_lattice = [&](const std::array<int, 8>& doubled) {
    int sum = 0;
    for (int value : doubled) sum += value;
    if (sum % 4 != 0) return;
    std::array<double, 8> row;
    for (int i = 0; i < 8; ++i) row[i] = doubled[i] / 2.0;
    rows.push_back(row);
  };
  enumerate_rows({-8, -6, -4, -2, 0, 2, 4, 6}, 8, keep_if_in_lattice);
  enumerate_rows({-7, -5, -3, -1, 1, 3, 5, 7}, 8, keep_if_in_lattice);
  for (double sign : {2.0, -2.0}) {
    for (int i = 0; i < (sign > 0 ? 8 : 7); ++i) {
      std::array<double, 8> row{};
      row[i] = sign;
      rows.push_back(row);
    }
  }
  if (rows.size() != 256)
    throw Error(Status::internal,
                "E81B construction gave " + std::to_string(rows.size()) + " rows, FORMAT.md 3 says 256");
  std::array<std::array<double, 8>, 256> table;
  std::copy(rows.begin(), rows.end(), table.begin());
  return table;
}

void append_value(std::string& out, double value) {
  char text[32];
  std::snprintf(text, sizeof text, " %g", value);
  out += text;
}

}  // namespace

Codebook parse_codebook(std::string_view name) {
  if (name == "e8p") return Codebook::e8p;
  if (name == "e81b") return Codebook::e81b;
  throw Error(Status::invalid_argument, "unknown codebook '" + std::string(name) +
                                            "': glqjit knows 'e8p' and 'e81b' (FORMAT.md sections 2 and 3)");
}

const std::array<HalfRow, 256>& e8p_abs_rows() {
  static const std::array<HalfRow, 256> rows = build_e8p_abs_rows();
  return rows;
}

std::array<double, 8> decode_e8p(uint16_t code) {
  static constexpr int kPerm[8] = {0, 2, 4, 6, 1, 3, 5, 7};
  const HalfRow& abs_row = e8p_abs_rows()[code >> 8];
  const unsigned parity = std::popcount(unsigned(code & 0xff)) & 1u;
  const unsigned signs = (code & 0xffu) ^ parity;
  std::array<double, 8> v;
  for (int i = 0; i < 8; ++i) v[i] = abs_row[i] / 2.0;
  for (int j = 0; j < 8; ++j) {
    if (signs >> j & 1u) v[kPerm[j]] = -v[kPerm[j]];
  }
  for (double& value : v) value += parity ? -0.25 : 0.25;
  return v;
}

const std::array<std::array<double, 8>, 256>& e81b_rows() {
  static const std::array<std::array<double, 8>, 256> rows = build_e81b_rows();
  return rows;
}

std::array<double, 8> decode_e81b(uint8_t code) { return e81b_rows()[code]; }

std::string codebook_dump(Codebook codebook) {
  std::string out;
  char label[16];
  if (codebook == Codebook::e8p) {
    out.reserve(65536 * 56);
    for (unsigned code = 0; code < 65536; ++code) {
      std::snprintf(label, sizeof label, "0x%04x", code);
      out += label;
      for (double value : decode_e8p(uint16_t(code))) append_value(out, value);
      out += '\n';
    }
  } else {
    for (unsigned code = 0; code < 256; ++code) {
      out += std::to_string(code);
      for (double value : e81b_rows()[code]) append_value(out, value);
      out += '\n';
    }
  }
  return out;
}

}  // namespace glqjit
