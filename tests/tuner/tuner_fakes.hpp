// A builder and a gate with planted failures, for the CPU tests of the tuning loop: the kernel
// digest is the variant's text, and nothing is compiled or run.
#pragma once

#include <set>
#include <string>
#include <vector>

#include "tuner/builder.hpp"
#include "tuner/gate.hpp"

namespace glqjit {

class FakeBuilder final : public Builder {
 public:
  std::set<std::string> fails_to_compile, spills;
  int built = 0;
  std::vector<std::vector<Variant>> batches;  // what each build call was given
  std::string kernel_digest(const Variant& variant) override { return "digest of " + variant.canonical(); }
  std::vector<BuildResult> build(const std::vector<Variant>& variants) override {
    batches.push_back(variants);
    std::vector<BuildResult> results;
    for (const Variant& v : variants) {
      ++built;
      BuildResult r;
      r.kernel_digest = kernel_digest(v);
      if (fails_to_compile.count(v.canonical())) r.status = MeasurementStatus::compile_failed, r.reason = "planted";
      if (spills.count(v.canonical())) r.status = MeasurementStatus::over_resources, r.reason = "planted";
      results.push_back(r);
    }
    return results;
  }
};

class FakeGate final : public Gate {
 public:
  std::set<std::string> wrong;
  int checked = 0;
  GateResult check(const Variant& variant) override {
    ++checked;
    GateResult result;
    if (wrong.count(variant.canonical())) {
      result.status = MeasurementStatus::wrong_result;
      result.worst_error = 0.5;
      result.reason = "planted";
    }
    return result;
  }
};

}  // namespace glqjit
