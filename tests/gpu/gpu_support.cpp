#include "gpu_support.hpp"

#include <utility>

#include "format/dtype.hpp"

namespace glqjit::test {

DeviceBuffer::DeviceBuffer(size_t bytes) : bytes_(bytes) {
  ScopedContext scope(context().cu());
  check_cuda(driver().cuMemAlloc(&pointer_, bytes), "cuMemAlloc in a test");
}

DeviceBuffer::~DeviceBuffer() {
  if (pointer_ == 0) return;
  ScopedContext scope(context().cu());
  driver().cuMemFree(pointer_);
}

DeviceBuffer::DeviceBuffer(DeviceBuffer&& other) noexcept
    : pointer_(std::exchange(other.pointer_, 0)), bytes_(other.bytes_) {}

void DeviceBuffer::upload(const void* host, size_t bytes) {
  ScopedContext scope(context().cu());
  check_cuda(driver().cuMemcpyHtoD(pointer_, host, bytes), "cuMemcpyHtoD in a test");
}

void DeviceBuffer::download(void* host, size_t bytes) const {
  ScopedContext scope(context().cu());
  check_cuda(driver().cuStreamSynchronize(nullptr), "synchronizing before a download");
  check_cuda(driver().cuMemcpyDtoH(host, pointer_, bytes), "cuMemcpyDtoH in a test");
}

void DeviceBuffer::poison() {
  ScopedContext scope(context().cu());
  check_cuda(driver().cuMemsetD8(pointer_, 0xff, bytes_), "poisoning a buffer");
}

UploadedLayer upload(const QuantizedLayer& layer, DType dtype) {
  UploadedLayer uploaded;
  for (const auto& stage : layer.stages) uploaded.stages.push_back(DeviceBuffer::from(stage));
  uploaded.vectors.push_back(DeviceBuffer::from(layer.su));
  uploaded.vectors.push_back(DeviceBuffer::from(layer.sv));
  for (size_t s = 0; s < uploaded.stages.size(); ++s) uploaded.weights.stages[s] = uploaded.stages[s].get();
  uploaded.weights.su = uploaded.vectors[0].get();
  uploaded.weights.sv = uploaded.vectors[1].get();
  if (!layer.bias.empty()) {
    std::vector<uint16_t> bias_bits;
    for (float b : layer.bias) bias_bits.push_back(float_to_bits(dtype, b));
    uploaded.vectors.push_back(DeviceBuffer::from(bias_bits));
    uploaded.weights.bias = uploaded.vectors[2].get();
  }
  uploaded.weights.wscale = layer.wscale;
  for (size_t s = 0; s < layer.inv_resid_scales.size(); ++s) uploaded.weights.inv_resid_scale[s] = layer.inv_resid_scales[s];
  return uploaded;
}

Activations random_activations(int batch, int64_t features, DType dtype, std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0.0, 1.0);
  Activations a;
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

Context& context() {
  static Context instance(0, ContextOptions{});
  return instance;
}

uint64_t fresh_seed() {
  std::random_device device;
  return (uint64_t(device()) << 32) | device();
}

}  // namespace glqjit::test
