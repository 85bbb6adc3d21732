// A CPU layer on the device and random activations for it: what the gate, the timer and the GPU
// tests put on the GPU, made one way.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "codegen/spec.hpp"
#include "format/dtype.hpp"
#include "format/layer.hpp"
#include "runtime/device_objects.hpp"
#include "runtime/linear.hpp"

namespace glqjit {

struct UploadedLayer {
  std::vector<DeviceBuffer> stages;
  std::vector<DeviceBuffer> vectors;  // SU, SV, bias
  DeviceWeights weights;
};

// One random layer per linear of `spec` (a group's shards, or the one linear), bias and legacy
// block as the spec says, biases drawn in bf16 (values in range are exact in fp16 too).
std::vector<QuantizedLayer> random_layers(const LinearSpec& spec, uint64_t seed);

// The checkpoint tensors of `layer` (the bias in `dtype`) and its scalars.
UploadedLayer upload_layer(CUcontext context, const QuantizedLayer& layer, DType dtype);

// Normal(0, 1) activations rounded to dtype, as bits and as the doubles those bits mean.
struct Activations {
  std::vector<uint16_t> bits;
  std::vector<double> values;
};
Activations random_activations(int batch, int64_t features, DType dtype, std::mt19937_64& rng);

std::vector<double> to_doubles(const std::vector<uint16_t>& bits, DType dtype);

}  // namespace glqjit
