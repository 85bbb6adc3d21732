// parse_model_config_text and model_shapes (tuner/model_config.hpp), what glq-tune --model and
// glq-bench --model read a config.json through, on any text. Asserts: they throw nothing but
// glqjit::Error; an accepted config has the seven linears of a decoder layer with features in
// 1..kMaxFeatures, 1..100000 layers, and layer_bpw values of 2..8; its shapes are linears of the
// config with bpw 0 (no layer_bpw) or 2..8, counts that add up to at most the layers times the
// roles, and distinct_shapes keeps every shape and count.
#include <cstdint>
#include <set>
#include <string>
#include <string_view>
#include <tuple>

#include "format/geometry.hpp"
#include "format/recipe.hpp"
#include "fuzz_check.hpp"
#include "tuner/model_config.hpp"

namespace {

using namespace glqjit;

void check_config(const ModelConfig& config) {
  fuzz::check(config.layer_linears.size() == 7, "a decoder layer without its seven linears");
  for (const ModelLinear& linear : config.layer_linears) {
    fuzz::check(linear.in_features >= 1 && linear.in_features <= kMaxFeatures && linear.out_features >= 1 &&
                    linear.out_features <= kMaxFeatures,
                "a linear with features outside 1..kMaxFeatures: " + linear.name);
    fuzz::check(linear.bpw == 0 && linear.count == 1, "a decoder-layer linear with a bpw or a count");
  }
  fuzz::check(config.num_hidden_layers >= 1 && config.num_hidden_layers <= 100'000, "num_hidden_layers out of range");
  fuzz::check(config.glq.has_value() == (config.quant_method == "glq"), "GLQ keys kept for another quant_method");
  if (config.glq && config.glq->layer_bpw) {
    for (const auto& [layer, bpw] : *config.glq->layer_bpw) {
      fuzz::check(bpw >= kMinBpw && bpw <= kMaxBpw, "a layer_bpw outside 2..8 for " + layer);
    }
  }
}

void check_shapes(const ModelConfig& config, const ModelShapes& shapes) {
  const bool by_layer = config.glq && config.glq->layer_bpw;
  int64_t counted = 0;
  for (const ModelLinear& linear : shapes.linears) {
    bool of_config = false;
    for (const ModelLinear& role : config.layer_linears) {
      of_config = of_config || (role.name == linear.name && role.in_features == linear.in_features &&
                                role.out_features == linear.out_features && role.has_bias == linear.has_bias);
    }
    fuzz::check(of_config, "a model shape that is no linear of the config: " + linear.name);
    fuzz::check(by_layer ? linear.bpw >= kMinBpw && linear.bpw <= kMaxBpw : linear.bpw == 0,
                "a model shape with a bpw layer_bpw does not give");
    fuzz::check(linear.count >= 1, "a model shape counted less than once");
    counted += linear.count;
  }
  fuzz::check(counted <= int64_t(config.num_hidden_layers) * 7 || by_layer,
              "more linears counted than the layers have");
  if (by_layer) fuzz::check(counted == int64_t(config.glq->layer_bpw->size()), "layer_bpw entries lost or doubled");

  std::set<std::tuple<int64_t, int64_t, int, bool>> kinds;
  int64_t merged_count = 0;
  for (const ModelLinear& linear : shapes.linears)
    kinds.emplace(linear.in_features, linear.out_features, linear.bpw, linear.has_bias);
  const std::vector<ModelLinear> merged = distinct_shapes(shapes.linears);
  for (const ModelLinear& linear : merged) merged_count += linear.count;
  fuzz::check(merged.size() == kinds.size() && merged_count == counted, "distinct_shapes lost or merged wrongly");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  ModelConfig config;
  if (!fuzz::parses([&] { config = parse_model_config_text(text, "fuzz/config.json"); })) return 0;
  check_config(config);
  ModelShapes shapes;
  if (!fuzz::parses([&] { shapes = model_shapes(config, "fuzz/config.json"); })) return 0;
  check_shapes(config, shapes);
  return 0;
}
