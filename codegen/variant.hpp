// Every tunable knob of one kernel set. Plain data; which values are legal for a spec and
// architecture is variant_space's business.
#pragma once

#include <span>
#include <string>
#include <string_view>

namespace glqjit {

struct Variant {
  // 1: templates/matmul_fused.cuh, family 2's multiply with both transforms inside, the whole
  // forward in one kernel (small batches). 2: templates/matmul.cuh, mma.sync straight from the
  // compressed weights, between transform kernels (small batches). 3:
  // templates/matmul_staged.cuh, activation tiles staged in shared memory so that a weight is
  // decoded once per 64 or 128 batch columns.
  int family = 2;
  int wgmma = 0;          // family 3's multiply: 1 warpgroup MMAs (sm_90a only), 0 mma.sync
  int warps = 4;          // 16-row tiles per matmul CTA (family 3: 4 or 8, whole warpgroups)
  int k_warps = 1;        // warps per row tile, splitting the CTA's K slice; added in shared memory
  int k_split = 1;        // CTAs along K; their partial sums are added in a fixed order
  int batch_tiles = 1;    // 8-column tiles per warp (batch columns per CTA = 8 * batch_tiles)
  int prefetch = 2;       // k-tiles of weights and activations in flight (family 2: per warp)
  int ctas_per_sm = 0;    // matmul CTAs an SM must hold at once, ptxas fitting registers to it (0: its choice)
  int table_copies = 8;   // copies of each codebook in shared memory (8: conflict-free lookups)
  int transform_threads = 128;  // threads per Hadamard-transform CTA

  // "family=2 wgmma=0 warps=4 k_warps=2 k_split=1 batch_tiles=1 prefetch=4 ctas_per_sm=0 table_copies=8
  // transform_threads=128"
  std::string canonical() const;
  bool operator==(const Variant&) const = default;
};

// One knob of Variant: its name in canonical() text and parse_variant, and a line saying what
// it sets (for --help and glq-dump).
struct VariantKnob {
  std::string_view name;
  int Variant::*member;
  std::string_view meaning;
};

// Every knob of Variant, in the order canonical() prints them.
std::span<const VariantKnob> variant_knobs();

// Reads canonical() text, or any subset of its "name=value" parts (separated by spaces or
// commas) over `base`; throws Error(invalid_argument) naming an unknown part or bad value.
Variant parse_variant(std::string_view text, const Variant& base = {});

// The largest batch a forward takes (the transform kernels put the batch row in grid.y).
inline constexpr int kMaxBatch = 65535;

// Batch buckets: powers of two; forward with batch b runs the kernels of bucket_for(b).
// Throws Error(invalid_argument) for a batch outside 1..kMaxBatch.
int bucket_for(int batch);
}  // namespace glqjit
