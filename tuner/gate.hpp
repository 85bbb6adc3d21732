// Whether a candidate computes the layer: every candidate must pass before it may be timed, so
// that a fast wrong kernel can never win (reference_gate.hpp checks on the GPU against the fp64
// reference of FORMAT.md section 1).
#pragma once

#include <string>

#include "codegen/variant.hpp"
#include "tuner/measurement.hpp"

namespace glqjit {

struct GateResult {
  MeasurementStatus status = MeasurementStatus::ok;  // ok, wrong_result or launch_failed
  double worst_error = 0;                            // relative L2 error, worst batch checked
  std::string reason;                                // why it failed, in words
};

class Gate {
 public:
  virtual ~Gate() = default;
  virtual GateResult check(const Variant& variant) = 0;
};

}  // namespace glqjit
