// Every tunable knob of one kernel set. Plain data; which values are legal for a spec and
// architecture is variant_space's business.
#pragma once

#include <string>
#include <string_view>

namespace glqjit {

struct Variant {
  int warps = 4;          // warps per matmul CTA; each owns one 16-row tile
  int k_split = 1;        // CTAs along K; their partial sums are added in a fixed order
  int batch_tiles = 1;    // 8-column mma tiles per warp (batch columns per CTA = 8 * batch_tiles)
  int prefetch = 2;       // k-tiles of weights and activations each warp keeps in flight
  int transform_threads = 256;  // threads per Hadamard-transform CTA

  std::string canonical() const;  // "warps=4 k_split=16 batch_tiles=1 prefetch=4 transform_threads=256"
  bool operator==(const Variant&) const = default;
};

// Reads canonical() text, or any subset of its "name=value" parts (separated by spaces or
// commas) over `base`; throws Error(invalid_argument) naming an unknown part or bad value.
Variant parse_variant(std::string_view text, const Variant& base = {});

// Batch buckets: powers of two; forward with batch b runs the kernels of bucket_for(b).
int bucket_for(int batch);
}  // namespace glqjit
