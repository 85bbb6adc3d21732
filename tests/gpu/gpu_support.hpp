// What the GPU tests share: device buffers, uploading a CPU layer, random activations, and the
// one context (and kernel store) of the test process.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "format/layer.hpp"
#include "runtime/context.hpp"
#include "runtime/driver.hpp"
#include "runtime/linear.hpp"

namespace glqjit::test {

class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t bytes);
  ~DeviceBuffer();
  DeviceBuffer(DeviceBuffer&& other) noexcept;
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;

  CUdeviceptr get() const { return pointer_; }
  size_t bytes() const { return bytes_; }
  void upload(const void* host, size_t bytes);
  void download(void* host, size_t bytes) const;
  void poison();  // every byte 0xff: NaN in fp16, bf16 and fp32

  template <class T>
  static DeviceBuffer from(const std::vector<T>& values) {
    DeviceBuffer buffer(std::max<size_t>(values.size() * sizeof(T), 16));
    if (!values.empty()) buffer.upload(values.data(), values.size() * sizeof(T));
    return buffer;
  }

 private:
  CUdeviceptr pointer_ = 0;
  size_t bytes_ = 0;
};

struct UploadedLayer {
  std::vector<DeviceBuffer> stages;
  std::vector<DeviceBuffer> vectors;  // SU, SV, bias
  DeviceWeights weights;
};

UploadedLayer upload(const QuantizedLayer& layer, DType dtype);

// Normal(0, 1) activations rounded to dtype, as bits and as the doubles those bits mean.
struct Activations {
  std::vector<uint16_t> bits;
  std::vector<double> values;
};
Activations random_activations(int batch, int64_t features, DType dtype, std::mt19937_64& rng);

std::vector<double> to_doubles(const std::vector<uint16_t>& bits, DType dtype);

// The context of this test process on device 0 (GLQJIT_CACHE picks its store).
Context& context();

// A seed from the system, printed by the caller so that a failure can be reproduced.
uint64_t fresh_seed();

}  // namespace glqjit::test
