// Which variants are legal for a spec, batch bucket and architecture, and which one runs when
// nothing has been tuned.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "codegen/arch.hpp"
#include "codegen/spec.hpp"
#include "codegen/variant.hpp"

namespace glqjit {

// The first limit the variant breaks, in words, or nothing when it is legal.
std::optional<std::string> variant_violation(const LinearSpec& spec, int batch_bucket, const Arch& arch,
                                             const Variant& variant);
// Throws Error(invalid_argument) with variant_violation's words.
void check_variant(const LinearSpec& spec, int batch_bucket, const Arch& arch, const Variant& variant);

// Throws Error(unsupported_shape) if no variant can serve the spec on this architecture
// (a Hadamard block too large for its shared memory, say).
Variant default_variant(const LinearSpec& spec, int batch_bucket, const Arch& arch, int sm_count);

// Every legal variant of a coarse grid around the default (the tuner's search space).
std::vector<Variant> legal_variants(const LinearSpec& spec, int batch_bucket, const Arch& arch, int sm_count);

}  // namespace glqjit
