// spec + variant + batch bucket + arch -> the CUDA source of one kernel set and its NVRTC options.
#pragma once

#include <string>
#include <string_view>
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
  std::string source_hash;           // source_hash_of the specialization and the constant parts in `source`
  std::vector<std::string> options;  // canonical order
  LaunchPlan launch;
};

// Throws Error if the spec is unsupported or the variant is not legal for it.
GeneratedKernel generate_kernel(const LinearSpec& spec, const Variant& variant, int batch_bucket, const Arch& arch);

std::string join_options(const std::vector<std::string>& options);

// The content hash of a source made of `specialization` followed by constant parts (the codebook
// tables, then the templates): SHA-256 over the specialization and each part's name and own
// SHA-256, so that any byte of any of them changes it while the constant parts are hashed once
// per process, not once per kernel set (the whole source hashed took ~0.5 ms, most of a warm
// store lookup).
struct PartHash {
  std::string_view name;
  std::string sha256;
};
std::string source_hash_of(std::string_view specialization, const std::vector<PartHash>& parts);

}  // namespace glqjit
