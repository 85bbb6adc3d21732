// What the tuner learned about one candidate variant of one tuning key: a value, kept whole in
// the store (as JSON) so that a later run need not measure it again and glq-dump can show why
// the winner won.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "codegen/nvrtc.hpp"
#include "codegen/variant.hpp"

namespace glqjit {

enum class MeasurementStatus {
  ok,              // timed
  compile_failed,  // NVRTC or ptxas refused it (reason: the log's first lines)
  launch_failed,   // a forward failed on the GPU
  wrong_result,    // outputs beyond FORMAT.md section 8 against the reference, or not finite
  over_resources,  // spills, or more registers or shared memory than the launch can have
};

std::string_view status_name(MeasurementStatus status);
// Throws Error(invalid_argument) for a name status_name does not give.
MeasurementStatus parse_status(std::string_view name);

struct Measurement {
  Variant variant;
  std::string kernel_digest;  // the kernel set measured (cache/key.hpp); other code is measured again
  MeasurementStatus status = MeasurementStatus::ok;
  double median_us = 0;               // per forward; ok only
  double spread = 0;                  // (max - min) / 2 / median of the samples; ok only
  std::vector<double> samples_us;     // one per timed replay
  std::string reason;                 // why it is not ok, in words
  double gate_error = 0;              // worst relative L2 error against the reference
  std::vector<KernelResources> resources;  // per kernel of its module, as ptxas reported them

  bool ok() const { return status == MeasurementStatus::ok; }
};

// The store keeps a measurement as this JSON text (variant, status, median_us, spread,
// samples_us, reason, gate_error, resources).
std::string to_json(const Measurement& measurement);
// Throws Error(invalid_argument) naming what is missing or mistyped.
Measurement measurement_from_json(std::string_view json);

// median and spread of samples (spread as in Measurement); both 0 for no samples.
void summarize_samples(Measurement& measurement);

}  // namespace glqjit
