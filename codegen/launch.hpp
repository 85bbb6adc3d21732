// Launch geometry of one kernel set: what the runtime needs to launch what codegen generated.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "codegen/spec.hpp"
#include "codegen/variant.hpp"

namespace glqjit {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

// Hadamard transforms run in chunks of this many elements (templates/transforms.cuh); larger
// blocks add a strided pass over up to kMaxStridedRadix chunks.
inline constexpr int64_t kTransformChunk = 2048;
inline constexpr int64_t kMaxStridedRadix = 32;

// One chunk of the chunk pass: `length` elements from `offset`; `final` when it is a whole block.
struct TransformChunk {
  int64_t offset;
  int64_t length;
  bool final;
};

// The chunks of a side, and the blocks (offset, block length) that need the strided pass.
struct TransformPlan {
  std::vector<TransformChunk> chunks;
  std::vector<std::pair<int64_t, int64_t>> strided_blocks;
};
TransformPlan make_transform_plan(const std::vector<int64_t>& blocks);

struct KernelLaunch {
  std::string name;  // empty: this kernel set has no such kernel
  unsigned threads = 0;
  unsigned dynamic_shared_bytes = 0;
};

// Kernel names as the templates define them (extern "C").
inline constexpr const char* kInputChunksKernel = "glq_input_chunks";
inline constexpr const char* kInputStridedKernel = "glq_input_strided";
inline constexpr const char* kMatmulKernel = "glq_matmul";
inline constexpr const char* kFusedKernel = "glq_fused";
inline constexpr const char* kOutputChunksKernel = "glq_output_chunks";
inline constexpr const char* kOutputStridedKernel = "glq_output_strided";
inline constexpr const char* kRepackE81bKernel = "glq_repack_e81b";

// Kernel family 1's shared memory (templates/matmul_fused.cuh): the codebooks, its slice of u
// (rows of the CTA's batch columns, each `u_columns` fp16 and a 16-byte pad, so that the
// activation loads of a warp do not conflict), SV of the input blocks the slice overlaps (at most
// `sv_columns` fp16, copied before the kernel waits on the one before it), then one region that
// serves as the Hadamard scratch of either side (transform_rows batch rows of the largest block at
// once) and as the K_WARPS reduction, then a word of flags.
struct FusedLayout {
  int rows = 0;
  int transform_rows = 0;
  int u_columns = 0;
  unsigned u_row_bytes = 0;
  unsigned u_offset = 0;
  int sv_columns = 0;
  unsigned sv_offset = 0;
  unsigned scratch_offset = 0;
  unsigned flags_offset = 0;
  unsigned bytes = 0;
};
FusedLayout fused_layout(const LinearSpec& spec, const Variant& variant, int batch_bucket);

// Family 1 transforms as many batch rows at once (a power of two, at most its rows) as fit this
// much Hadamard scratch: four rows of a 4096 block, eight of 2048. With one CTA per SM at batch
// bucket 8 that keeps 4096 blocks within sm_90's shared memory beside the codebooks and the u slice.
inline constexpr unsigned kFusedTransformScratchBytes = 72 * 1024;

// The output Hadamard blocks of family 1 count their CTAs' arrivals in the first bytes of the
// workspace, one u32 each (at most 32 blocks: a padded size has at most 20 bits).
inline constexpr size_t kArrivalBytes = 256;

struct LaunchPlan {
  // Families 2 and 3: the transform kernels around glq_matmul in `matmul`; family 1: glq_fused
  // alone in `matmul`, the other names empty.
  KernelLaunch input_chunks, input_strided, matmul, output_chunks, output_strided, repack_e81b;
  bool fused = false;
  int64_t n_pad = 0, m_pad = 0;
  int in_chunk_count = 0, out_chunk_count = 0;
  int in_strided_columns = 0, out_strided_columns = 0;  // strided blocks x chunk
  int m_tiles = 0, k_tiles = 0;
  int row_tiles_per_cta = 1;
  int k_split = 1;
  int batch_columns_per_cta = 8;

  // Grids of kernels this set does not launch (an empty name) are empty.
  Dim3 input_chunks_grid(int batch) const { return {unsigned(in_chunk_count), unsigned(batch), 1}; }
  Dim3 input_strided_grid(int batch) const { return strided_grid(in_strided_columns, input_strided, batch); }
  Dim3 matmul_grid(int batch) const {
    return {unsigned((batch + batch_columns_per_cta - 1) / batch_columns_per_cta),
            unsigned((m_tiles + row_tiles_per_cta - 1) / row_tiles_per_cta), unsigned(k_split)};
  }
  Dim3 output_chunks_grid(int batch) const { return {unsigned(out_chunk_count), unsigned(batch), 1}; }
  Dim3 output_strided_grid(int batch) const { return strided_grid(out_strided_columns, output_strided, batch); }
  // The repack of one linear's E81B stage, `row_tiles` of 16 rows (a group repacks each of its own).
  Dim3 repack_grid(int row_tiles) const { return {unsigned((int64_t(row_tiles) * k_tiles * 32 + 255) / 256), 1, 1}; }

  // Workspace, in this order: family 1's arrival counters (kArrivalBytes, zero between
  // forwards; every family keeps them, because the buckets of a linear share its workspace and
  // a family 2 forward at batch 2 that wrote u over them left the next batch-1 forward
  // unwritten); u (fp16 [batch][n_pad]; family 3 keeps each row's k-tiles in fragment order,
  // templates/decode.cuh u_position; none in family 1); the input's staged fp32 values when it
  // has a strided pass; the K-split partial sums (fp32 [k_split][batch][m_pad]); the output's
  // staged fp32 values when it has a strided pass. Every part starts 256-byte aligned.
  size_t arrival_bytes() const { return kArrivalBytes; }
  size_t activation_bytes(int batch) const;
  size_t input_staged_bytes(int batch) const;
  size_t partial_bytes(int batch) const;
  size_t output_staged_bytes(int batch) const;
  size_t workspace_bytes(int batch) const;

 private:
  static Dim3 strided_grid(int columns, const KernelLaunch& launch, int batch) {
    if (launch.name.empty()) return {0, 0, 0};
    return {unsigned(columns) / launch.threads, unsigned(batch), 1};
  }
};

LaunchPlan make_launch_plan(const LinearSpec& spec, const Variant& variant, int batch_bucket);

// Shared memory of the matmul kernel: the codebooks it decodes, then the K_WARPS reduction
// (family 2) or the ring of staged k-tiles (family 3). Family 1's is fused_layout(...).bytes.
unsigned matmul_shared_bytes(const Recipe& recipe, const Variant& variant);
unsigned codebook_bytes(const Recipe& recipe, const Variant& variant);

// Family 3 (templates/staged.cuh) stages each k-tile's activations and words in one of
// prefetch + 2 (wgmma: the tensor cores may still read two) or prefetch + 1 ring buffers.
int staged_tile_buffers(const Variant& variant);
// One k-tile's packed words of every stage for one 16-row tile: 32 words of 8 (E8P) or 4 bytes.
unsigned warp_word_bytes(const Recipe& recipe);

}  // namespace glqjit
