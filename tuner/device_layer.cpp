#include "tuner/device_layer.hpp"

#include <fmt/format.h>

namespace glqjit {

std::vector<QuantizedLayer> random_layers(const LinearSpec& spec, uint64_t seed) {
  std::mt19937_64 rng(seed);
  RandomLayerOptions options;
  options.with_bias = spec.has_bias;
  options.legacy_single_block = spec.legacy_single_block;
  options.bias_dtype = DType::bf16;
  std::vector<QuantizedLayer> layers;
  for (int k = 0; k < spec.shard_count(); ++k) {
    const LinearSpec linear = spec.shard(k);
    layers.push_back(random_layer(linear.in_features, linear.out_features, linear.bpw, rng(), options));
  }
  return layers;
}

UploadedLayer upload_layer(CUcontext context, const QuantizedLayer& layer, DType dtype) {
  UploadedLayer uploaded;
  for (size_t s = 0; s < layer.stages.size(); ++s) {
    uploaded.stages.push_back(DeviceBuffer::from(context, layer.stages[s], fmt::format("weight stage {}", s)));
    uploaded.weights.stages[s] = uploaded.stages.back().get();
  }
  uploaded.vectors.push_back(DeviceBuffer::from(context, layer.su, "SU"));
  uploaded.vectors.push_back(DeviceBuffer::from(context, layer.sv, "SV"));
  uploaded.weights.su = uploaded.vectors[0].get();
  uploaded.weights.sv = uploaded.vectors[1].get();
  if (!layer.bias.empty()) {
    std::vector<uint16_t> bias_bits;
    for (float b : layer.bias) bias_bits.push_back(float_to_bits(dtype, b));
    uploaded.vectors.push_back(DeviceBuffer::from(context, bias_bits, "the bias"));
    uploaded.weights.bias = uploaded.vectors[2].get();
  }
  uploaded.weights.wscale = layer.wscale;
  for (size_t s = 0; s < layer.inv_resid_scales.size(); ++s) uploaded.weights.inv_resid_scale[s] = layer.inv_resid_scales[s];
  return uploaded;
}

Activations random_activations(int batch, int64_t features, DType dtype, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0.0, 1.0);
  Activations a;
  a.bits.reserve(size_t(batch) * features);
  a.values.reserve(size_t(batch) * features);
  for (int64_t i = 0; i < batch * features; ++i) {
    const uint16_t bits = float_to_bits(dtype, round_to(dtype, normal(rng)));
    a.bits.push_back(bits);
    a.values.push_back(bits_to_float(dtype, bits));
  }
  return a;
}

std::vector<double> to_doubles(const std::vector<uint16_t>& bits, DType dtype) {
  std::vector<double> values;
  values.reserve(bits.size());
  for (uint16_t b : bits) values.push_back(bits_to_float(dtype, b));
  return values;
}

}  // namespace glqjit
