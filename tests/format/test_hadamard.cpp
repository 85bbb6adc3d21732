// The fast block-diagonal Walsh-Hadamard transform against H[i][j] = (-1)^popcount(i & j) / sqrt(b).
#include <bit>
#include <catch2/catch.hpp>
#include <cmath>
#include <random>

#include "format/geometry.hpp"
#include "format/hadamard.hpp"
#include "glqjit/error.hpp"

using namespace glqjit;

namespace {

double entry(int64_t i, int64_t j, int64_t block) {
  return (std::popcount(uint64_t(i & j)) % 2 ? -1.0 : 1.0) / std::sqrt(double(block));
}

// Output coordinate `row` of the block-diagonal operator, straight from the definition.
double dense_coordinate(const std::vector<double>& v, const std::vector<int64_t>& blocks, int64_t row) {
  int64_t start = 0;
  for (int64_t block : blocks) {
    if (row < start + block) {
      double sum = 0.0;
      for (int64_t j = 0; j < block; ++j) sum += entry(row - start, j, block) * v[size_t(start + j)];
      return sum;
    }
    start += block;
  }
  return NAN;
}

std::vector<double> random_vector(std::mt19937_64& rng, int64_t size) {
  std::normal_distribution<double> normal;
  std::vector<double> v(static_cast<size_t>(size));
  for (double& value : v) value = normal(rng);
  return v;
}

// The padded sizes of section 5 for these features as inputs and as outputs, plus a legacy block.
std::vector<std::vector<int64_t>> block_lists() {
  std::vector<std::vector<int64_t>> lists;
  for (int64_t features : {576, 2080, 11008, 14336, 28672}) {
    const Geometry g = make_geometry(features, features);
    lists.push_back(g.in_blocks);
    if (g.out_blocks != g.in_blocks) lists.push_back(g.out_blocks);
  }
  lists.push_back(make_geometry(2080, 1000, true).in_blocks);
  return lists;
}

}  // namespace

TEST_CASE("block lists of the test sizes are as section 5 computes them", "[hadamard]") {
  const auto lists = block_lists();
  REQUIRE(lists.size() == 7);
  CHECK(lists[0] == std::vector<int64_t>{512, 64});
  CHECK(lists[1] == std::vector<int64_t>{2048, 64});  // 2080 inputs pad to 2112
  CHECK(lists[2] == std::vector<int64_t>{2048, 32});  // 2080 outputs stay 2080
  CHECK(lists[3] == std::vector<int64_t>{8192, 2048, 512, 256});
  CHECK(lists[4] == std::vector<int64_t>{8192, 4096, 2048});
  CHECK(lists[5] == std::vector<int64_t>{16384, 8192, 4096});
  CHECK(lists[6] == std::vector<int64_t>{4096});
}

TEST_CASE("fast transform equals the dense block-diagonal matrix", "[hadamard]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (const auto& blocks : block_lists()) {
    int64_t size = 0;
    for (int64_t block : blocks) size += block;
    INFO("size " << size << ", " << blocks.size() << " blocks");
    const std::vector<double> v = random_vector(rng, size);
    std::vector<double> fast = v;
    hadamard_inplace(fast, blocks);
    // Small sizes: every coordinate; large ones: every block boundary plus a random sample.
    std::vector<int64_t> rows;
    if (size <= 2112) {
      for (int64_t i = 0; i < size; ++i) rows.push_back(i);
    } else {
      int64_t start = 0;
      for (int64_t block : blocks) {
        rows.insert(rows.end(), {start, start + 1, start + block - 1});
        start += block;
      }
      std::uniform_int_distribution<int64_t> pick(0, size - 1);
      for (int k = 0; k < 48; ++k) rows.push_back(pick(rng));
    }
    for (int64_t row : rows) {
      const double expected = dense_coordinate(v, blocks, row);
      if (std::fabs(fast[size_t(row)] - expected) > 1e-12 * std::sqrt(double(size))) {
        FAIL("coordinate " << row << ": fast " << fast[size_t(row)] << ", dense " << expected);
      }
    }
  }
}

TEST_CASE("the transform is its own inverse and keeps the norm", "[hadamard]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (const auto& blocks : block_lists()) {
    int64_t size = 0;
    for (int64_t block : blocks) size += block;
    const std::vector<double> v = random_vector(rng, size);
    std::vector<double> w = v;
    hadamard_inplace(w, blocks);
    double norm_v = 0.0, norm_w = 0.0, diff = 0.0;
    for (size_t i = 0; i < v.size(); ++i) {
      norm_v += v[i] * v[i];
      norm_w += w[i] * w[i];
    }
    CHECK(norm_w == Approx(norm_v).epsilon(1e-12));
    hadamard_inplace(w, blocks);
    for (size_t i = 0; i < v.size(); ++i) diff = std::max(diff, std::fabs(w[i] - v[i]));
    CHECK(diff < 1e-12);
  }
}

TEST_CASE("the float transform computes in float and stays close to the double one", "[hadamard]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 rng(seed);
  for (const auto& blocks : block_lists()) {
    int64_t size = 0;
    for (int64_t block : blocks) size += block;
    const std::vector<double> v = random_vector(rng, size);
    std::vector<float> f(v.begin(), v.end());
    std::vector<double> d(f.begin(), f.end());
    hadamard_inplace(f, blocks);
    hadamard_inplace(d, blocks);
    double worst = 0.0;
    bool any_inexact = false;
    for (size_t i = 0; i < v.size(); ++i) {
      worst = std::max(worst, std::fabs(double(f[i]) - d[i]));
      any_inexact = any_inexact || f[i] != float(d[i]);
    }
    CHECK(worst < 1e-5);
    CHECK(any_inexact);  // all equal would mean the float overload ran in double and rounded once
  }
}

TEST_CASE("hadamard_inplace rejects blocks that do not fit the vector", "[hadamard][errors]") {
  std::vector<double> v(96, 1.0);
  CHECK_THROWS_WITH(hadamard_inplace(v, {64}), Catch::Contains("64") && Catch::Contains("96"));
  CHECK_THROWS_WITH(hadamard_inplace(v, {48, 48}), Catch::Contains("48") && Catch::Contains("power of two"));
  std::vector<float> f(64, 1.0f);
  CHECK_THROWS_AS(hadamard_inplace(f, {32}), Error);
  hadamard_inplace(v, {64, 32});
  CHECK(v[0] == Approx(8.0));
  CHECK(v[64] == Approx(std::sqrt(32.0)));
  CHECK(v[1] == Approx(0.0).margin(1e-12));
}
