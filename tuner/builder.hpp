// Turning candidates into loadable kernels: generated and compiled in parallel (or found in the
// store), one failure being that candidate's result, not the batch's.
#pragma once

#include <string>
#include <vector>

#include "cache/store.hpp"
#include "codegen/arch.hpp"
#include "codegen/nvrtc.hpp"
#include "codegen/spec.hpp"
#include "codegen/variant.hpp"
#include "tuner/measurement.hpp"

namespace glqjit {

struct BuildResult {
  MeasurementStatus status = MeasurementStatus::ok;  // ok or compile_failed (over_resources from other builders)
  std::string reason;
  std::string kernel_digest;  // the kernel set's key (cache/key.hpp); empty when it failed
  std::vector<KernelResources> resources;
};

class Builder {
 public:
  virtual ~Builder() = default;
  // The key digest a candidate's kernel set has, without compiling it: a stored measurement
  // of another digest was made with other code and is measured again.
  virtual std::string kernel_digest(const Variant& variant) = 0;
  virtual std::vector<BuildResult> build(const std::vector<Variant>& variants) = 0;
};

// NVRTC through the store (runtime/kernel_binary.hpp), for one spec, batch bucket and arch.
// Spills are kept in the resources but do not disqualify: the first Llama-3-8B tune on the H200
// refused 321 candidates for them, the default variants of 25 keys among them, for 4 to 8 bytes
// spilled in kernels that run correctly. Timing decides.
class KernelBuilder final : public Builder {
 public:
  KernelBuilder(Store* store, const LinearSpec& spec, int batch_bucket, const Arch& arch)
      : store_(store), spec_(spec), batch_bucket_(batch_bucket), arch_(arch) {}
  std::string kernel_digest(const Variant& variant) override;
  std::vector<BuildResult> build(const std::vector<Variant>& variants) override;

 private:
  Store* store_;
  LinearSpec spec_;
  int batch_bucket_;
  Arch arch_;
};

}  // namespace glqjit
