#include "format/layer.hpp"

#include <cmath>
#include <cstdio>
#include <random>
#include <string>

#include "format/packing.hpp"
#include "glqjit/error.hpp"

namespace glqjit {
namespace {

constexpr uint16_t kPlusOne = 0x3c00;
constexpr uint16_t kMinusOne = 0xbc00;

void check_count(const std::string& what, size_t given, int64_t expected, const std::string& because) {
  if (int64_t(given) != expected) {
    throw Error(Status::invalid_argument, what + " has " + std::to_string(given) + " values but " + because +
                                              " needs " + std::to_string(expected));
  }
}

std::string hex_bits(uint16_t bits) {
  char text[8];
  std::snprintf(text, sizeof text, "0x%04x", unsigned(bits));
  return text;
}

void check_signs(const char* name, const std::vector<uint16_t>& signs) {
  for (size_t i = 0; i < signs.size(); ++i) {
    if (signs[i] != kPlusOne && signs[i] != kMinusOne) {
      throw Error(Status::invalid_argument,
                  std::string(name) + "[" + std::to_string(i) + "] holds fp16 bits " + hex_bits(signs[i]) +
                      " but sign vectors hold only +1 (0x3c00) or -1 (0xbc00) (FORMAT.md section 5)");
    }
  }
}

}  // namespace

QuantizedLayer random_layer(int64_t in_features, int64_t out_features, int bpw, uint64_t seed,
                            const RandomLayerOptions& options) {
  QuantizedLayer layer;
  layer.geometry = make_geometry(in_features, out_features, options.legacy_single_block);
  layer.recipe = recipe_for_bpw(bpw);
  const int64_t m_pad = layer.geometry.m_pad, n_pad = layer.geometry.n_pad;
  std::mt19937_64 rng(seed);

  const size_t code_count = size_t(m_pad * (n_pad / 8));
  for (StageKind kind : layer.recipe.stages) {
    if (kind == StageKind::e8p) {
      std::vector<uint16_t> codes(code_count);
      for (uint16_t& code : codes) code = uint16_t(rng());
      layer.stages.push_back(pack_e8p(codes, m_pad, n_pad));
    } else {
      std::vector<uint8_t> codes(code_count);
      for (uint8_t& code : codes) code = uint8_t(rng());
      layer.stages.push_back(pack_e81b(codes, m_pad, n_pad));
    }
  }
  const auto random_signs = [&](int64_t count) {
    std::vector<uint16_t> signs(static_cast<size_t>(count));
    for (uint16_t& sign : signs) sign = (rng() & 1) ? kMinusOne : kPlusOne;
    return signs;
  };
  layer.su = random_signs(m_pad);
  layer.sv = random_signs(n_pad);
  // u has unit-size entries for unit-size x and E8P entries are about unit size, so a row's
  // dot product grows like sqrt(n_pad); this brings outputs back to unit size.
  layer.wscale = float(1.0 / std::sqrt(double(n_pad)));
  layer.inv_resid_scales = nominal_inv_resid_scales(layer.recipe);
  if (options.with_bias) {
    std::uniform_real_distribution<double> uniform(-1.0, 1.0);
    for (int64_t i = 0; i < out_features; ++i) layer.bias.push_back(round_to(options.bias_dtype, uniform(rng)));
  }
  return layer;
}

void validate_layer(const QuantizedLayer& layer) {
  const Geometry& g = layer.geometry;
  const Geometry expected = make_geometry(g.in_features, g.out_features, g.legacy_single_block);
  if (g.n_pad != expected.n_pad || g.m_pad != expected.m_pad || g.in_blocks != expected.in_blocks ||
      g.out_blocks != expected.out_blocks) {
    throw Error(Status::invalid_argument,
                "layer geometry (n_pad " + std::to_string(g.n_pad) + ", m_pad " + std::to_string(g.m_pad) +
                    ") disagrees with in_features " + std::to_string(g.in_features) + ", out_features " +
                    std::to_string(g.out_features) + " (expected n_pad " + std::to_string(expected.n_pad) + ", m_pad " +
                    std::to_string(expected.m_pad) + "); build it with make_geometry()");
  }
  const Recipe recipe = recipe_for_bpw(layer.recipe.bpw);
  if (recipe.stages != layer.recipe.stages) {
    throw Error(Status::invalid_argument, "layer recipe stages disagree with bpw " + std::to_string(recipe.bpw) +
                                              "; build it with recipe_for_bpw()");
  }
  const std::string shape = "a " + std::to_string(g.m_pad) + " x " + std::to_string(g.n_pad) + " padded layer";
  const std::string stage_count = std::to_string(recipe.stages.size());
  check_count("stage list", layer.stages.size(), int64_t(recipe.stages.size()), "bpw " + std::to_string(recipe.bpw));
  for (size_t s = 0; s < recipe.stages.size(); ++s) {
    const bool e8p = recipe.stages[s] == StageKind::e8p;
    check_count("stage " + std::to_string(s) + (e8p ? " (e8p)" : " (e81b)"), layer.stages[s].size(),
                g.m_pad * g.n_pad / (e8p ? 32 : 64), shape + " (int64 words, FORMAT.md section 6)");
  }
  check_count("SU", layer.su.size(), g.m_pad, "m_pad " + std::to_string(g.m_pad));
  check_count("SV", layer.sv.size(), g.n_pad, "n_pad " + std::to_string(g.n_pad));
  check_signs("SU", layer.su);
  check_signs("SV", layer.sv);
  check_count("inv_resid_scales", layer.inv_resid_scales.size(), int64_t(recipe.stages.size()) - 1,
              "a " + stage_count + "-stage recipe");
  if (!layer.bias.empty()) check_count("bias", layer.bias.size(), g.out_features, "out_features");
}

}  // namespace glqjit
