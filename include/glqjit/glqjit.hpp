// glqjit C++ API: RAII owners over the C ABI objects. Failures throw glqjit::Error with the
// C ABI's status and message; nothing throws across the C boundary itself.
#pragma once

#include <climits>
#include <string>
#include <utility>
#if __cplusplus >= 202002L
#include <span>
#endif

#include "glqjit/error.hpp"
#include "glqjit/glqjit.h"

namespace glqjit {

inline void throw_on_error(glqjit_status status) {
  if (status != GLQJIT_OK) throw Error(static_cast<Status>(status), glqjit_last_error());
}

// One device and the kernel store its linears share.
class Runtime {
 public:
  explicit Runtime(int device = 0, const glqjit_context_options* options = nullptr) {
    throw_on_error(glqjit_context_create(device, options, &handle_));
  }
  ~Runtime() { glqjit_context_destroy(handle_); }
  Runtime(Runtime&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Runtime& operator=(Runtime other) noexcept {
    std::swap(handle_, other.handle_);
    return *this;
  }
  glqjit_context* get() const { return handle_; }

 private:
  glqjit_context* handle_ = nullptr;
};

// One quantized linear layer: compiled or loaded at construction, launched by forward().
class QuantizedLinear {
 public:
  QuantizedLinear(const Runtime& runtime, const glqjit_linear_desc& desc, const glqjit_linear_weights& weights) {
    throw_on_error(glqjit_linear_create(runtime.get(), &desc, &weights, &handle_));
  }
  ~QuantizedLinear() { glqjit_linear_destroy(handle_); }
  QuantizedLinear(QuantizedLinear&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  QuantizedLinear& operator=(QuantizedLinear other) noexcept {
    std::swap(handle_, other.handle_);
    return *this;
  }
  glqjit_linear* get() const { return handle_; }

  void forward(const void* x, void* y, int batch, void* stream = nullptr) const {
    throw_on_error(glqjit_linear_forward(handle_, x, y, batch, stream));
  }

 private:
  glqjit_linear* handle_ = nullptr;
};

// Linears that read the same input (q/k/v, gate/up) as one forward, their outputs side by side
// in y ([batch, sum of out_features]). Not for ForwardGraph: capture the stream instead.
class QuantizedLinearGroup {
 public:
  // descs[i] and weights[i] for each of `count` linears (1..8), sharing in_features, dtype,
  // max_batch and flags.
  QuantizedLinearGroup(const Runtime& runtime, int count, const glqjit_linear_desc* descs,
                       const glqjit_linear_weights* weights) {
    throw_on_error(glqjit_linear_group_create(runtime.get(), count, descs, weights, &handle_));
  }
#if __cplusplus >= 202002L
  QuantizedLinearGroup(const Runtime& runtime, std::span<const glqjit_linear_desc> descs,
                       std::span<const glqjit_linear_weights> weights) {
    if (descs.size() != weights.size()) {
      throw Error(Status::invalid_argument,
                  "QuantizedLinearGroup: " + std::to_string(descs.size()) + " descs but " +
                      std::to_string(weights.size()) + " weights; pass one of each per linear");
    }
    // More than 8 fails in the C ABI, with its message; only keep the count from wrapping.
    const int count = descs.size() > size_t(INT_MAX) ? INT_MAX : static_cast<int>(descs.size());
    throw_on_error(glqjit_linear_group_create(runtime.get(), count, descs.data(), weights.data(), &handle_));
  }
#endif
  ~QuantizedLinearGroup() { glqjit_linear_group_destroy(handle_); }
  QuantizedLinearGroup(QuantizedLinearGroup&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  QuantizedLinearGroup& operator=(QuantizedLinearGroup other) noexcept {
    std::swap(handle_, other.handle_);
    return *this;
  }
  glqjit_linear_group* get() const { return handle_; }

  void forward(const void* x, void* y, int batch, void* stream = nullptr) const {
    throw_on_error(glqjit_linear_group_forward(handle_, x, y, batch, stream));
  }

 private:
  glqjit_linear_group* handle_ = nullptr;
};

// Forwards recorded into one CUDA graph; set_io repoints a forward without recapturing.
class ForwardGraph {
 public:
  explicit ForwardGraph(const Runtime& runtime) { throw_on_error(glqjit_graph_create(runtime.get(), &handle_)); }
  ~ForwardGraph() { glqjit_graph_destroy(handle_); }
  ForwardGraph(const ForwardGraph&) = delete;
  ForwardGraph& operator=(const ForwardGraph&) = delete;

  int add_forward(const QuantizedLinear& linear, const void* x, void* y, int batch) {
    int index = -1;
    throw_on_error(glqjit_graph_add_forward(handle_, linear.get(), x, y, batch, &index));
    return index;
  }
  void instantiate() { throw_on_error(glqjit_graph_instantiate(handle_)); }
  void set_io(int index, const void* x, void* y) { throw_on_error(glqjit_graph_set_io(handle_, index, x, y)); }
  void launch(void* stream = nullptr) { throw_on_error(glqjit_graph_launch(handle_, stream)); }

 private:
  glqjit_graph* handle_ = nullptr;
};

}  // namespace glqjit
