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

// Kernel family 1 runs by default up to this batch bucket for one linear (at bucket 2 on the
// H200, 2 bpw, 4096x4096 took 14.6 us with it against family 2's 13.0: kernel-notes v13).
inline constexpr int kFusedUpToBucket = 1;

// A group of linears (runtime/linear_group.hpp) runs as one kernel by default up to this bucket,
// beyond it one linear at a time. On the H200 at 2 bpw (kernel-notes v13) Llama-3-8B's q+k+v as
// one kernel took 13.9 / 18.1 us at buckets 2 / 4 against 34.5 / 35.8 one at a time, gate+up
// 33.1 / 43.1 against 40.8 / 42.7; at bucket 8 gate+up lost (64.6 against 47.5).
inline constexpr int kGroupOneKernelUpToBucket = 4;

// Up to which batch bucket (a power of two, at most kGroupOneKernelUpToBucket) the group runs as
// one kernel by default on this card: every bucket up to it has a legal default; 0 where bucket
// 1 has none. `why` says what stopped it below kGroupOneKernelUpToBucket.
struct GroupOneKernelLimit {
  int bucket = 0;
  std::string why;
};
GroupOneKernelLimit group_one_kernel_limit(const LinearSpec& group, const Arch& arch, int sm_count);

// fused: family=1 (templates/matmul_fused.cuh); direct: family=2 (templates/matmul.cuh); staged:
// family=3 (templates/matmul_staged.cuh), with wgmma where the architecture has it.
enum class MatmulFamily { automatic, fused, direct, staged };

// The variant that runs when nothing has been tuned: kernel family 1 up to kFusedUpToBucket for
// layers with Hadamard blocks of at most 4096 outputs and 4096 inputs (where its shared memory
// fits), family 3 from batch bucket 64 (with wgmma on sm_90a), else family 2; family 1 always for
// a group of linears (group_one_kernel_limit: the buckets where a group runs as one). A named
// family gives that family's default, which may not be legal (check it). Throws
// Error(unsupported_shape) if no variant can serve the spec on this architecture (a Hadamard block
// too large for its shared memory, say, or a group that cannot run as one kernel).
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
