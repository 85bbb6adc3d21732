// The E8P and E81B codebooks against the facts and test vectors of FORMAT.md sections 2 and 3.
#include <catch2/catch.hpp>
#include <set>

#include "format/codebook.hpp"
#include "glqjit/error.hpp"
#include "support/sha256.hpp"

using namespace glqjit;

namespace {

std::array<double, 8> values(std::initializer_list<double> list) {
  std::array<double, 8> out{};
  std::copy(list.begin(), list.end(), out.begin());
  return out;
}

// The check values of section 2.1 are in half units, like ABS itself.
std::array<int8_t, 8> halves(std::initializer_list<int> list) {
  std::array<int8_t, 8> out{};
  std::copy(list.begin(), list.end(), out.begin());
  return out;
}

}  // namespace

TEST_CASE("E8P abs rows match the check values of section 2.1", "[codebook]") {
  const auto& rows = e8p_abs_rows();
  CHECK(rows[0] == halves({1, 1, 1, 1, 1, 1, 1, 1}));
  CHECK(rows[1] == halves({1, 1, 1, 1, 1, 1, 1, -3}));
  CHECK(rows[3] == halves({1, 1, 1, 1, 1, 1, 3, -1}));
  CHECK(rows[226] == halves({5, 3, 1, 1, 1, 1, 1, -1}));
  CHECK(rows[255] == halves({3, 3, 1, 1, 3, 3, 3, -1}));
  // The first appended row of step 3 (3 1 1 1 3 3 3 3, half-unit sum 18, odd half) lands at 227.
  CHECK(rows[227] == halves({3, 1, 1, 1, 3, 3, 3, -3}));
}

TEST_CASE("E8P abs rows are odd half units with even value sums, constructed rows sorted", "[codebook]") {
  const auto& rows = e8p_abs_rows();
  std::array<int8_t, 8> previous{};
  for (int a = 0; a < 256; ++a) {
    INFO("ABS[" << a << "]");
    int sum = 0, squares = 0;
    std::array<int8_t, 8> magnitudes;
    for (int i = 0; i < 8; ++i) {
      CHECK(rows[a][i] % 2 != 0);
      sum += rows[a][i];
      squares += rows[a][i] * rows[a][i];
      magnitudes[i] = int8_t(std::abs(rows[a][i]));
    }
    CHECK(sum % 4 == 0);
    if (a < 227) {
      CHECK(squares <= 40);
      CHECK(std::all_of(rows[a].begin(), rows[a].begin() + 7, [](int8_t h) { return h > 0; }));
      if (a > 0) CHECK(previous < magnitudes);
    }
    previous = magnitudes;
  }
  CHECK(std::set<std::array<int8_t, 8>>(rows.begin(), rows.end()).size() == 256);
}

TEST_CASE("E8P decodes the eight test vectors of section 2.2", "[codebook]") {
  CHECK(decode_e8p(0x0000) == values({0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75}));
  CHECK(decode_e8p(0x0001) == values({0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25, 0.25}));
  CHECK(decode_e8p(0x0003) == values({-0.25, 0.75, -0.25, 0.75, 0.75, 0.75, 0.75, 0.75}));
  CHECK(decode_e8p(0x0100) == values({0.75, 0.75, 0.75, 0.75, 0.75, 0.75, 0.75, -1.25}));
  CHECK(decode_e8p(0x00ff) == values({-0.25, -0.25, -0.25, -0.25, -0.25, -0.25, -0.25, -0.25}));
  CHECK(decode_e8p(0x1234) == values({-0.75, -0.75, 0.25, -0.75, -1.75, 0.25, 0.25, 1.25}));
  CHECK(decode_e8p(0xabcd) == values({1.25, 0.25, 0.25, 1.25, -0.75, -1.75, -0.75, 0.25}));
  CHECK(decode_e8p(0xffff) == values({-1.25, -1.25, -0.25, -0.25, -1.25, -1.25, -1.25, 0.75}));
}

TEST_CASE("all 65536 E8P codes decode to distinct vectors of odd quarters up to 2.75", "[codebook]") {
  std::set<std::array<double, 8>> seen;
  for (unsigned code = 0; code < 65536; ++code) {
    const std::array<double, 8> v = decode_e8p(uint16_t(code));
    for (double value : v) {
      const double quarters = value * 4.0;
      if (!(quarters == std::round(quarters) && std::fmod(std::fabs(quarters), 2.0) == 1.0 &&
            std::fabs(value) <= 2.75)) {
        FAIL("code " << code << " decodes to " << value);
      }
    }
    seen.insert(v);
  }
  CHECK(seen.size() == 65536);
}

TEST_CASE("E81B rows match the anchors of section 3", "[codebook]") {
  const auto& rows = e81b_rows();
  CHECK(rows[0] == values({-1, -1, 0, 0, 0, 0, 0, 0}));
  CHECK(rows[1] == values({-1, 0, -1, 0, 0, 0, 0, 0}));
  CHECK(rows[56] == values({0, 0, 0, 0, 0, 0, 0, 0}));
  CHECK(rows[112] == values({1, 1, 0, 0, 0, 0, 0, 0}));
  CHECK(rows[113] == values({-0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5, -0.5}));
  CHECK(rows[240] == values({0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5, 0.5}));
  CHECK(rows[241] == values({2, 0, 0, 0, 0, 0, 0, 0}));
  CHECK(rows[248] == values({0, 0, 0, 0, 0, 0, 0, 2}));
  CHECK(rows[249] == values({-2, 0, 0, 0, 0, 0, 0, 0}));
  CHECK(rows[255] == values({0, 0, 0, 0, 0, 0, -2, 0}));
  for (unsigned code = 0; code < 256; ++code) CHECK(decode_e81b(uint8_t(code)) == rows[code]);
  CHECK(std::set<std::array<double, 8>>(rows.begin(), rows.end()).size() == 256);
}

TEST_CASE("codebook dumps have the line format and SHA-256 of FORMAT.md", "[codebook]") {
  const std::string e8p = codebook_dump(Codebook::e8p);
  CHECK(e8p.find("0x1234 -0.75 -0.75 0.25 -0.75 -1.75 0.25 0.25 1.25\n") != std::string::npos);
  CHECK(e8p.rfind("0x0000 0.75 0.75 0.75 0.75 0.75 0.75 0.75 0.75\n", 0) == 0);
  CHECK(std::count(e8p.begin(), e8p.end(), '\n') == 65536);
  CHECK(sha256_hex(e8p) == "da2412dae23533e449ac136929d2b955a7be7bfdadae2b86bceaeeb4b6ff9e57");

  const std::string e81b = codebook_dump(Codebook::e81b);
  CHECK(e81b.rfind("0 -1 -1 0 0 0 0 0 0\n", 0) == 0);
  CHECK(e81b.find("\n113 -0.5 -0.5 -0.5 -0.5 -0.5 -0.5 -0.5 -0.5\n") != std::string::npos);
  CHECK(std::count(e81b.begin(), e81b.end(), '\n') == 256);
  CHECK(sha256_hex(e81b) == "8a8cd541983b4a64e3ced1118ddb8c5bcd734b6e499fb827f833ecab02bf1038");
}

TEST_CASE("codebook names parse, unknown ones name the choices", "[codebook][errors]") {
  CHECK(parse_codebook("e8p") == Codebook::e8p);
  CHECK(parse_codebook("e81b") == Codebook::e81b);
  for (const char* name : {"E8P", "e8", "", "e81b "}) {
    INFO("name '" << name << "'");
    try {
      parse_codebook(name);
      FAIL("accepted");
    } catch (const Error& error) {
      CHECK(error.status() == Status::invalid_argument);
      CHECK_THAT(error.what(),
                 Catch::Contains("'" + std::string(name) + "'") && Catch::Contains("e8p") && Catch::Contains("e81b"));
    }
  }
}
