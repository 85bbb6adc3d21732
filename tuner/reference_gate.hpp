// A random layer on the GPU with fp64 reference outputs (FORMAT.md sections 1 and 8) for some
// batches: the GPU suite checks every kernel set with it, and the tuner's gate checks every
// candidate with it before timing.
#pragma once

#include <cstdint>
#include <vector>

#include "codegen/spec.hpp"
#include "runtime/context.hpp"
#include "runtime/linear.hpp"
#include "tuner/device_layer.hpp"
#include "tuner/gate.hpp"

namespace glqjit {

struct BatchCheck {
  int batch = 0;
  double error = 0;       // relative L2 error of the checked rows against the reference
  size_t not_finite = 0;  // NaN or infinite outputs among all rows
  double tolerance = 0;   // FORMAT.md section 8's bound for the output dtype
  bool passed() const { return not_finite == 0 && error < tolerance; }
};

class ReferenceCase {
 public:
  // A random layer of `spec` (bias and legacy block as the spec says; one per linear of a group
  // spec) from `seed`, uploaded; activations for each batch; the reference of every row of small
  // cases, else of the first, the last and six random rows of each batch (a group's row: its
  // linears' references side by side).
  ReferenceCase(Context& context, const LinearSpec& spec, const std::vector<int>& batches, uint64_t seed);

  const QuantizedLayer& layer() const { return layers_.front(); }  // a single linear's
  const std::vector<DeviceWeights>& weights() const { return weights_; }  // one per linear

  // One forward of `linear` per batch, on the legacy stream, into outputs poisoned first. A
  // failed forward throws Error; one that left the context unusable throws ContextLost.
  std::vector<BatchCheck> check(Linear& linear) const;

 private:
  struct Batch {
    int batch = 0;
    Activations x;
    std::vector<int> rows;           // rows compared with the reference
    std::vector<double> reference;   // [rows][out_features]
  };
  Context& context_;
  LinearSpec spec_;
  std::vector<QuantizedLayer> layers_;
  std::vector<UploadedLayer> uploaded_;
  std::vector<DeviceWeights> weights_;
  std::vector<Batch> batches_;
};

// The tuner's gate for one key: every candidate runs at the bucket's largest batch and at a
// partial one (bucket / 2 + 1) on one fresh random layer.
class ReferenceGate final : public Gate {
 public:
  ReferenceGate(Context& context, const LinearSpec& spec, int batch_bucket, uint64_t seed);
  GateResult check(const Variant& variant) override;

 private:
  Context& context_;
  LinearSpec spec_;
  int batch_bucket_;
  ReferenceCase case_;
};

}  // namespace glqjit
