// Which variants are legal for a spec, batch bucket and architecture, and which one runs when
// nothing has been tuned.
#pragma once

#include <optional>
#include <string>
#include <string_view>
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

// Kernel family 1 runs by default up to this batch bucket, and so does a group's one kernel
// (runtime/linear_group.hpp): at bucket 8 on the H200 family 1 took 44.8 us for Llama-3-8B's
// q+k+v as one group at 2 bpw, the three linears one at a time with family 2 far less.
inline constexpr int kFusedUpToBucket = 1;

// fused: family=1 (templates/matmul_fused.cuh); direct: family=2 (templates/matmul.cuh); staged:
// family=3 (templates/matmul_staged.cuh), with wgmma where the architecture has it.
enum class MatmulFamily { automatic, fused, direct, staged };

// The variant that runs when nothing has been tuned: kernel family 1 up to kFusedUpToBucket for
// layers with Hadamard blocks of at most 4096 outputs and 4096 inputs (where its shared memory
// fits), family 3 from batch bucket 64 (with wgmma on sm_90a), else family 2; family 1 always for
// a group of linears. A named family gives that family's default, which may not be legal (check
// it). Throws Error(unsupported_shape) if no variant can serve the spec on this architecture (a
// Hadamard block too large for its shared memory, say, or a group that cannot run as one kernel).
Variant default_variant(const LinearSpec& spec, int batch_bucket, const Arch& arch, int sm_count,
                        MatmulFamily family = MatmulFamily::automatic);

// The default of `family` where it is legal for the spec, else nothing (the tuner's walk starts
// from each family's).
std::optional<Variant> legal_family_default(const LinearSpec& spec, int batch_bucket, const Arch& arch, int sm_count,
                                            MatmulFamily family);

// `parts` (parse_variant's text) over the default variant, or over the default of the kernel
// family the parts name with family=1, 2 or 3. Not checked for legality.
Variant variant_over_default(std::string_view parts, const LinearSpec& spec, int batch_bucket, const Arch& arch,
                             int sm_count);

// Every legal variant of a coarse grid around the default (the tuner's search space).
std::vector<Variant> legal_variants(const LinearSpec& spec, int batch_bucket, const Arch& arch, int sm_count);

}  // namespace glqjit
