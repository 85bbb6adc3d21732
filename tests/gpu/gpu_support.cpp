#include "gpu_support.hpp"

namespace glqjit::test {

Context& context() {
  static Context instance(0, ContextOptions{});
  return instance;
}

DeviceBuffer device_buffer(size_t bytes) { return DeviceBuffer(context().cu(), bytes, "test data"); }

UploadedLayer upload(const QuantizedLayer& layer, DType dtype) { return upload_layer(context().cu(), layer, dtype); }

uint64_t fresh_seed() {
  std::random_device device;
  return (uint64_t(device()) << 32) | device();
}

}  // namespace glqjit::test
