// Recipes per bpw (section 4) and padding with Hadamard block lists (section 5).
#include <catch2/catch.hpp>

#include "format/geometry.hpp"
#include "format/recipe.hpp"
#include "glqjit/error.hpp"

using namespace glqjit;

namespace {
using Kinds = std::vector<StageKind>;
constexpr StageKind P = StageKind::e8p;
constexpr StageKind B = StageKind::e81b;
}  // namespace

TEST_CASE("recipes 2..8 bpw list E8P stages then E81B for odd bpw", "[recipe]") {
  CHECK(recipe_for_bpw(2).stages == Kinds{P});
  CHECK(recipe_for_bpw(3).stages == Kinds{P, B});
  CHECK(recipe_for_bpw(4).stages == Kinds{P, P});
  CHECK(recipe_for_bpw(5).stages == Kinds{P, P, B});
  CHECK(recipe_for_bpw(6).stages == Kinds{P, P, P});
  CHECK(recipe_for_bpw(7).stages == Kinds{P, P, P, B});
  CHECK(recipe_for_bpw(8).stages == Kinds{P, P, P, P});
  for (int bpw = 2; bpw <= 8; ++bpw) CHECK(recipe_for_bpw(bpw).bpw == bpw);
}

TEST_CASE("nominal residual scales are cumulative products of 3.45 and 2.04", "[recipe]") {
  CHECK(nominal_inv_resid_scales(recipe_for_bpw(2)).empty());
  CHECK(nominal_inv_resid_scales(recipe_for_bpw(3)) == std::vector<float>{float(1 / 2.04)});
  CHECK(nominal_inv_resid_scales(recipe_for_bpw(4)) == std::vector<float>{float(1 / 3.45)});
  CHECK(nominal_inv_resid_scales(recipe_for_bpw(7)) ==
        std::vector<float>{float(1 / 3.45), float(1 / (3.45 * 3.45)), float(1 / (3.45 * 3.45 * 2.04))});
  CHECK(nominal_inv_resid_scales(recipe_for_bpw(8)).size() == 3);
}

TEST_CASE("bpw outside 2..8 is an unsupported shape naming the value and the range", "[recipe][errors]") {
  for (int bpw : {1, 9, 0, -3, 16}) {
    INFO("bpw " << bpw);
    try {
      recipe_for_bpw(bpw);
      FAIL("accepted");
    } catch (const Error& error) {
      CHECK(error.status() == Status::unsupported_shape);
      CHECK_THAT(error.what(), Catch::Contains("bpw " + std::to_string(bpw)) && Catch::Contains("2..8"));
    }
  }
}

TEST_CASE("hadamard_blocks is the binary decomposition, largest first", "[geometry]") {
  CHECK(hadamard_blocks(11008) == std::vector<int64_t>{8192, 2048, 512, 256});
  CHECK(hadamard_blocks(5376) == std::vector<int64_t>{4096, 1024, 256});
  CHECK(hadamard_blocks(4096) == std::vector<int64_t>{4096});
  CHECK(hadamard_blocks(2112) == std::vector<int64_t>{2048, 64});
  CHECK_THROWS_AS(hadamard_blocks(0), Error);
}

TEST_CASE("padding rounds up to 64 inputs and 16 outputs", "[geometry]") {
  const Geometry g = make_geometry(2080, 1000);
  CHECK(g.in_features == 2080);
  CHECK(g.out_features == 1000);
  CHECK(g.n_pad == 2112);
  CHECK(g.m_pad == 1008);
  CHECK(g.in_blocks == std::vector<int64_t>{2048, 64});
  CHECK(g.out_blocks == std::vector<int64_t>{512, 256, 128, 64, 32, 16});
  CHECK_FALSE(g.legacy_single_block);

  const Geometry tiny = make_geometry(1, 1);
  CHECK(tiny.n_pad == 64);
  CHECK(tiny.m_pad == 16);
  CHECK(make_geometry(4096, 14336).m_pad == 14336);
  CHECK(make_geometry(11008, 4096).in_blocks == std::vector<int64_t>{8192, 2048, 512, 256});
}

TEST_CASE("legacy layers pad to one power-of-two block holding whole tiles", "[geometry]") {
  const Geometry g = make_geometry(2080, 1000, true);
  CHECK(g.legacy_single_block);
  CHECK(g.n_pad == 4096);
  CHECK(g.m_pad == 1024);
  CHECK(g.in_blocks == std::vector<int64_t>{4096});
  CHECK(g.out_blocks == std::vector<int64_t>{1024});
  const Geometry small = make_geometry(5, 3, true);
  CHECK(small.n_pad == 64);
  CHECK(small.m_pad == 16);
  CHECK(make_geometry(4096, 4096, true).n_pad == 4096);
}

TEST_CASE("features outside 1..kMaxFeatures are rejected by name", "[geometry][errors]") {
  const auto expect_rejected = [](int64_t in, int64_t out, const std::string& name, int64_t bad) {
    INFO(in << " x " << out);
    try {
      make_geometry(in, out);
      FAIL("accepted");
    } catch (const Error& error) {
      CHECK(error.status() == Status::unsupported_shape);
      CHECK_THAT(error.what(),
                 Catch::Contains(name + " " + std::to_string(bad)) && Catch::Contains(std::to_string(kMaxFeatures)));
    }
  };
  expect_rejected(0, 16, "in_features", 0);
  expect_rejected(64, -5, "out_features", -5);
  expect_rejected(kMaxFeatures + 1, 64, "in_features", kMaxFeatures + 1);
  expect_rejected(64, int64_t(1) << 40, "out_features", int64_t(1) << 40);
  CHECK(make_geometry(kMaxFeatures, 1).n_pad == kMaxFeatures);
}
