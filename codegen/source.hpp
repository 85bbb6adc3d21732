// spec + variant + batch bucket + arch -> the CUDA source of one kernel set and its NVRTC options.
#pragma once

#include <string>
#include <vector>

#include "codegen/arch.hpp"
#include "codegen/launch.hpp"
#include "codegen/spec.hpp"
#include "codegen/variant.hpp"

namespace glqjit {

struct GeneratedKernel {
  LinearSpec spec;
  Variant variant;
  int batch_bucket = 1;
  Arch arch;
  std::string source;
  std::vector<std::string> options;  // canonical order
  LaunchPlan launch;
};

// Throws Error if the spec is unsupported or the variant is not legal for it.
GeneratedKernel generate_kernel(const LinearSpec& spec, const Variant& variant, int batch_bucket, const Arch& arch);

std::string join_options(const std::vector<std::string>& options);

}  // namespace glqjit
