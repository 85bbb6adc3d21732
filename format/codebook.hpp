// The E8P and E81B codebooks of FORMAT.md sections 2 and 3, built by construction.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace glqjit {

enum class Codebook { e8p, e81b };
Codebook parse_codebook(std::string_view name);  // "e8p" or "e81b"; throws Error naming both

// ABS[a] of section 2.1 in half units (value = h / 2), after the sign fix of step 4.
const std::array<std::array<int8_t, 8>, 256>& e8p_abs_rows();
std::array<double, 8> decode_e8p(uint16_t code);

// The 256 rows of section 3 (values, not half units).
const std::array<std::array<double, 8>, 256>& e81b_rows();
std::array<double, 8> decode_e81b(uint8_t code);

// The whole table as tools print it (sections 2.2 and 3), one line per code, each ending in '\n'.
std::string codebook_dump(Codebook codebook);

}  // namespace glqjit
