// What the GPU tests share: the one context (and kernel store) of the test process, and the
// library's device objects bound to it.
#pragma once

#include <cstdint>
#include <random>
#include <vector>

#include "format/layer.hpp"
#include "runtime/context.hpp"
#include "runtime/device_objects.hpp"
#include "runtime/driver.hpp"
#include "runtime/linear.hpp"
#include "tuner/device_layer.hpp"

namespace glqjit::test {

// The context of this test process on device 0 (GLQJIT_CACHE picks its store).
Context& context();

DeviceBuffer device_buffer(size_t bytes);
template <class T>
DeviceBuffer device_copy(const std::vector<T>& values) {
  return DeviceBuffer::from(context().cu(), values, "test data");
}
UploadedLayer upload(const QuantizedLayer& layer, DType dtype);

// A seed from the system, printed by the caller so that a failure can be reproduced.
uint64_t fresh_seed();

}  // namespace glqjit::test
