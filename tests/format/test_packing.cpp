// The packed stage layouts of section 6: round trips, bits checked against the definition, shapes.
#include <catch2/catch.hpp>
#include <random>

#include "format/geometry.hpp"
#include "format/packing.hpp"
#include "glqjit/error.hpp"

using namespace glqjit;

namespace {

template <typename Code>
std::vector<Code> random_codes(std::mt19937_64& rng, const Geometry& g) {
  std::vector<Code> codes(size_t(g.m_pad * (g.n_pad / 8)));
  for (Code& code : codes) code = Code(rng());
  return codes;
}

// Shapes (in, out) with in_features not a multiple of 64 and/or out_features not a multiple of 16.
const std::vector<std::pair<int64_t, int64_t>> kShapes = {{1000, 2080}, {2080, 1000}, {1536, 576}, {100, 40}, {64, 16}};

}  // namespace

TEST_CASE("E8P pack then unpack is the identity on random codes", "[packing]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (auto [in, out] : kShapes) {
    INFO(in << " inputs, " << out << " outputs");
    const Geometry g = make_geometry(in, out);
    const std::vector<uint16_t> codes = random_codes<uint16_t>(rng, g);
    const std::vector<uint64_t> words = pack_e8p(codes, g.m_pad, g.n_pad);
    CHECK(int64_t(words.size()) == g.m_pad / 16 * (g.n_pad / 64) * 8 * 4);
    CHECK(unpack_e8p(words, g.m_pad, g.n_pad) == codes);
  }
}

TEST_CASE("E81B pack then unpack is the identity on random codes", "[packing]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (auto [in, out] : kShapes) {
    INFO(in << " inputs, " << out << " outputs");
    const Geometry g = make_geometry(in, out);
    const std::vector<uint8_t> codes = random_codes<uint8_t>(rng, g);
    const std::vector<uint64_t> words = pack_e81b(codes, g.m_pad, g.n_pad);
    CHECK(int64_t(words.size()) == g.m_pad * (g.n_pad / 64));
    CHECK(unpack_e81b(words, g.m_pad, g.n_pad) == codes);
  }
}

TEST_CASE("packed E8P bits follow section 6 at random positions", "[packing]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  const Geometry g = make_geometry(2080, 1000);
  const std::vector<uint16_t> codes = random_codes<uint16_t>(rng, g);
  const std::vector<uint64_t> P = pack_e8p(codes, g.m_pad, g.n_pad);
  const int64_t C_count = g.n_pad / 64;
  // Walk the definition forwards: word P[R][C][r][c], slot i -> idx16[16R + 2r + p][8C + 2c + q].
  for (int trial = 0; trial < 500; ++trial) {
    const int64_t R = int64_t(rng() % uint64_t(g.m_pad / 16)), C = int64_t(rng() % uint64_t(C_count));
    const int r = int(rng() % 8), c = int(rng() % 4), i = int(rng() % 4);
    const int p = i & 1, q = i >> 1;
    const uint64_t word = P[size_t(((R * C_count + C) * 8 + r) * 4 + c)];
    const uint16_t code = codes[size_t((16 * R + 2 * r + p) * (g.n_pad / 8) + 8 * C + 2 * c + q)];
    INFO("R " << R << " C " << C << " r " << r << " c " << c << " i " << i);
    CHECK(((word & 0xffffffffu) >> (8 * i) & 0xff) == uint64_t(code >> 8));
    for (int j = 0; j < 8; ++j) CHECK(((word >> 32) >> (4 * j + i) & 1) == uint64_t(code >> j & 1));
  }
}

TEST_CASE("one E8P code lands in the word and bits section 6 names", "[packing]") {
  std::vector<uint16_t> codes(16 * 8, 0);
  codes[3 * 8 + 5] = 0xabcd;  // idx16[3][5]: R 0, r 1, p 1; C 0, c 2, q 1; so word 6, slot 3
  const std::vector<uint64_t> words = pack_e8p(codes, 16, 64);
  REQUIRE(words.size() == 32);
  for (size_t w = 0; w < words.size(); ++w) {
    INFO("word " << w);
    // Low byte 3 holds 0xab; high bits 4j + 3 hold bit j of 0xcd (bits 0, 2, 3, 6, 7).
    CHECK(words[w] == (w == 6 ? 0x88008808ab000000ull : 0ull));
  }
}

TEST_CASE("E81B words hold eight codes little-endian", "[packing]") {
  std::vector<uint8_t> codes(16 * 16, 0);
  for (int k = 0; k < 8; ++k) codes[size_t(16 * 3 + 8 + k)] = uint8_t(0x10 + k);  // idx8[3][8..15]
  const std::vector<uint64_t> words = pack_e81b(codes, 16, 128);
  REQUIRE(words.size() == 32);
  CHECK(words[3 * 2 + 1] == 0x1716151413121110ull);
  CHECK(std::count(words.begin(), words.end(), 0ull) == 31);
}

TEST_CASE("stage tensor shapes and their check", "[packing][errors]") {
  CHECK(stage_tensor_shape(StageKind::e8p, 1008, 2112) == std::vector<int64_t>{63, 33, 8, 4});
  CHECK(stage_tensor_shape(StageKind::e81b, 1008, 2112) == std::vector<int64_t>{1008, 33});
  const std::vector<int64_t> good = {63, 33, 8, 4};
  CHECK_NOTHROW(check_stage_tensor_shape(StageKind::e8p, 0, good, 1008, 2112));
  const std::vector<int64_t> bad = {1008, 33};
  try {
    check_stage_tensor_shape(StageKind::e8p, 2, bad, 1008, 2112);
    FAIL("accepted");
  } catch (const Error& error) {
    CHECK(error.status() == Status::invalid_argument);
    CHECK_THAT(error.what(),
               Catch::Contains("stage 2") && Catch::Contains("(1008, 33)") && Catch::Contains("(63, 33, 8, 4)"));
  }
  const std::vector<int64_t> wrong_width = {1008, 32};
  CHECK_THROWS_WITH(check_stage_tensor_shape(StageKind::e81b, 1, wrong_width, 1008, 2112),
                    Catch::Contains("stage 1") && Catch::Contains("(1008, 32)") && Catch::Contains("(1008, 33)"));
}

TEST_CASE("packing rejects code and word lists of the wrong size", "[packing][errors]") {
  const std::vector<uint16_t> codes16(16 * 8 - 1);
  const std::vector<uint8_t> codes8(16 * 8 + 8);
  const std::vector<uint64_t> words(31);
  const auto expect_invalid = [](auto&& call, const std::string& mentions) {
    try {
      call();
      FAIL("accepted");
    } catch (const Error& error) {
      CHECK(error.status() == Status::invalid_argument);
      CHECK_THAT(error.what(), Catch::Contains(mentions));
    }
  };
  expect_invalid([&] { pack_e8p(codes16, 16, 64); }, "127");
  expect_invalid([&] { pack_e81b(codes8, 16, 64); }, "136");
  expect_invalid([&] { unpack_e8p(words, 16, 64); }, "31");
  expect_invalid([&] { unpack_e81b(words, 16, 64); }, "31");
  expect_invalid([&] { pack_e8p(std::vector<uint16_t>(12 * 8), 12, 64); }, "m_pad 12");
  expect_invalid([&] { stage_tensor_shape(StageKind::e8p, 16, 100); }, "n_pad 100");
}
