// Kernel family 1: the whole forward of a small batch in one launch, glq_fused.
//
// Five dependent kernels cost about 10 us of fixed time per layer at batch 1 (kernel-notes v8),
// more than a 4096x4096 layer takes to read at 2 bpw. So each CTA of glq_fused
//   1. fills its codebooks, copies SV of its input blocks into shared memory and asks L2 for its
//      weights, SU and the bias, none of which the kernel before it writes (it may start early,
//      programmatic dependent launch, so all this overlaps that kernel's tail);
//   2. computes the slice of u = H_n (SV * x) its K range needs, for its batch columns, into
//      shared memory: every input Hadamard block that overlaps the slice, whole;
//   3. runs glq_matmul's loop (matmul.cuh) over that slice and writes its partial sums;
//   4. counts itself in at every output Hadamard block its rows touch; the CTA that arrives last
//      at a block adds the block's K_SPLIT partial sums in a fixed order and applies H_m, SU and
//      the bias: the output transform of that block, with no other CTA waiting on it.
// The sums are the same, in the same order, as the five-kernel forward's, so both give the
// same bits and every run does.
//
// One launch may also serve a group of linears that read the same input (SHARDS of them: q, k
// and v, say), each with its own tensors: their rows follow one another in the kernel's rows
// (M_PAD, the output blocks), each CTA works for one of them, and their outputs sit side by
// side in y (OUT_FEATURES columns in all). One linear is a group of one.
//
// Dynamic shared memory: the codebooks, the u slice (FUSED_ROWS rows of U_ROW_BYTES), SV of the
// input blocks the slice overlaps (at most SV_COLUMNS), then one region that is first the Hadamard
// scratch of the input side, then the K_WARPS reduction, then the scratch of the output side;
// then a word of flags.

namespace glq {

// The tensors of every linear of the group, one kernel parameter.
struct Shards {
  Weights w[SHARDS];
};

// A linear of the group: where its rows start in the kernel's rows, how many outputs it has, and
// where they start in a row of y.
struct ShardRows {
  int first_row, out_features, y_column;
};

// The linear a CTA works for: every CTA's rows lie within one (codegen checks that each starts
// at a CTA's first row), and so does every output block.
__device__ __forceinline__ int cta_shard() {
  const int first_row = blockIdx.y * 16 * MATMUL_WARPS;
  int shard = 0;
  static_for<SHARDS>([&](auto s) {
    if (SHARD_FIRST_ROW[s.value] <= first_row) shard = s.value;
  });
  return shard;
}

// Whether the block of 2^log_block elements from `offset` shares any element with [first, end).
__device__ __forceinline__ bool block_overlaps(int offset, int log_block, int first, int end) {
  return offset < end && offset + (1 << log_block) > first;
}

// How many CTAs add partial sums to output block b: every batch chunk and K part of each row
// group that overlaps it.
__device__ __forceinline__ int arrivals_expected(int block) {
  constexpr int rows_per_cta = 16 * MATMUL_WARPS;
  const int first = OUT_BLOCK_OFFSET[block];
  const int last = first + (1 << OUT_BLOCK_LOG2[block]) - 1;
  return int(gridDim.x) * K_SPLIT * (last / rows_per_cta - first / rows_per_cta + 1);
}

// The input columns [first, end) of the Hadamard blocks that overlap the K slice from
// `first_column`: the SV a CTA stages.
struct ColumnRange {
  int first, end;
};

__device__ __forceinline__ ColumnRange covering_blocks(int first_column) {
  ColumnRange range{N_PAD, 0};
  for (int b = 0; b < IN_BLOCKS; ++b) {
    if (!block_overlaps(IN_BLOCK_OFFSET[b], IN_BLOCK_LOG2[b], first_column, first_column + U_COLUMNS)) continue;
    range.first = min(range.first, IN_BLOCK_OFFSET[b]);
    range.end = IN_BLOCK_OFFSET[b] + (1 << IN_BLOCK_LOG2[b]);
  }
  return range;
}

// What the CTA reads that the kernel before it does not write: SV of its input blocks, by
// cp.async into shared memory (one commit group), and, asked of L2, the words of its row tiles'
// K slice in every stage (k_tiles of them), and SU and the bias of its rows.
__device__ __forceinline__ void stage_independent_operands(const Weights& w, const ShardRows& shard, ColumnRange sv_range,
                                                           u16* sv_shared, int cta_k_first, int k_tiles) {
  for (int c = threadIdx.x * 8; c < sv_range.end - sv_range.first; c += blockDim.x * 8) {
    copy_async_16(shared_address(sv_shared + c), w.sv + sv_range.first + c, 16);
  }
  commit_copies();
  const int row_tiles = min(MATMUL_WARPS, M_TILES - int(blockIdx.y) * MATMUL_WARPS);
  const int first_row_tile = blockIdx.y * MATMUL_WARPS - shard.first_row / 16;  // the linear's own
  const int range = threadIdx.x;  // one range per thread: (row tile, stage), then SU, then bias
  if (range < row_tiles * STAGES) {
    if (k_tiles <= 0) return;  // a last K part past the end (ceil(K_TILES / K_SPLIT) rounds up)
    const int row_tile = first_row_tile + range / STAGES;
    static_for<STAGES>([&](auto s) {
      if (range % STAGES != s.value) return;
      const size_t first_word = (size_t(row_tile) * K_TILES + cta_k_first) * 32;
      prefetch_range_to_l2(static_cast<const char*>(w.stage[s.value]) + first_word * stage_word_bytes(s.value),
                           u32(k_tiles) * 32 * stage_word_bytes(s.value));
    });
  } else if (range == row_tiles * STAGES) {
    prefetch_range_to_l2(w.su + first_row_tile * 16, u32(row_tiles) * 32);
  } else if (HAS_BIAS && range == row_tiles * STAGES + 1) {
    const int rows = min(row_tiles * 16, shard.out_features - first_row_tile * 16) & ~7;  // whole 16-byte pieces
    if (rows > 0) prefetch_range_to_l2(w.bias + first_row_tile * 16, u32(rows) * 2);
  }
}

// u of the CTA's batch columns [batch_base, batch_base + FUSED_ROWS) and input columns
// [first_column, first_column + U_COLUMNS), as fp16, u_shared[row][column - first_column];
// sv_shared holds SV from column sv_first. TRANSFORM_ROWS batch rows at a time.
__device__ __forceinline__ void transform_input_slice(const u16* x, int batch, int batch_base, int first_column,
                                                      const u16* sv_shared, int sv_first, u16* u_shared,
                                                      float* scratch) {
  const int rows = min(FUSED_ROWS, batch - batch_base);
  for (int b = 0; b < IN_BLOCKS; ++b) {
    const int offset = IN_BLOCK_OFFSET[b];
    const int log_block = IN_BLOCK_LOG2[b];
    if (!block_overlaps(offset, log_block, first_column, first_column + U_COLUMNS)) continue;
#pragma unroll 1  // a bound known when compiled: one pass where all rows fit, no loop left
    for (int first_row = 0; first_row < FUSED_ROWS; first_row += TRANSFORM_ROWS) {
      if (first_row >= rows) break;
      hadamard_block<TRANSFORM_ROWS>(
          scratch, log_block, min(TRANSFORM_ROWS, rows - first_row),
          [&](int r, int i, float (&v)[16]) {
            const u16* x_row = x + size_t(batch_base + first_row + r) * IN_FEATURES;
            load_input16(x_row, sv_shared + (offset + i - sv_first), offset + i, v);
          },
          [&](int r, int first, int stride, const auto& values) {
            u16* u_row = u_shared + (first_row + r) * (U_ROW_BYTES / 2);
            for_each_value(offset + first - first_column, stride, values, [&](int column, float value) {
              if (column >= 0 && column < U_COLUMNS) u_row[column] = f32_to_f16(value);
            });
          });
    }
  }
}

// The output side of block b (of the linear `shard`) for every batch row, TRANSFORM_ROWS at a
// time, from the partial sums of all CTAs.
__device__ __forceinline__ void transform_output_block(const Weights& w, const ShardRows& shard, const float* partial,
                                                       u16* y, int y_row_stride, int batch, int b, float* scratch) {
  const int offset = OUT_BLOCK_OFFSET[b];
#pragma unroll 1
  for (int first_row = 0; first_row < BATCH_BUCKET; first_row += TRANSFORM_ROWS) {
    if (first_row >= batch) break;
    hadamard_block<TRANSFORM_ROWS>(
        scratch, OUT_BLOCK_LOG2[b], min(TRANSFORM_ROWS, batch - first_row),
        [&](int r, int i, float (&v)[16]) { load_partial_sums16(partial, batch, first_row + r, offset + i, v); },
        [&](int r, int first, int stride, const auto& values) {
          u16* y_row = y + size_t(first_row + r) * y_row_stride + shard.y_column;
          store_outputs(w, y_row, shard.out_features, offset - shard.first_row + first, stride, values);
        });
  }
}

// The forward of linear S of the group, by a CTA that works for it. One copy of the code per
// linear, so that the linear's tensors and rows are constants (kernel parameters, immediates):
// indexing the parameters by a CTA's linear at run time held their addresses in registers, and
// at 64 registers a thread, with three linears, spilled.
template <int S>
__device__ __forceinline__ void fused_forward(const Weights& w, const u16* __restrict__ x, u16* __restrict__ y,
                                              int y_row_stride, char* __restrict__ workspace, int batch) {
  constexpr ShardRows shard{SHARD_FIRST_ROW[S], SHARD_OUT_FEATURES[S], SHARD_Y_COLUMN[S]};
  extern __shared__ __align__(16) uint4 matmul_shared[];
  char* shared = reinterpret_cast<char*>(matmul_shared);
  u32& last_arrivals = *reinterpret_cast<u32*>(shared + FLAGS_OFFSET);  // bit b: this CTA transforms output block b
  u16* u_shared = reinterpret_cast<u16*>(shared + U_OFFSET);
  u16* sv_shared = reinterpret_cast<u16*>(shared + SV_OFFSET);
  float* scratch = reinterpret_cast<float*>(shared + SCRATCH_OFFSET);
  u32* arrivals = reinterpret_cast<u32*>(workspace);
  float* partial = reinterpret_cast<float*>(workspace + ARRIVAL_BYTES);

  const MatmulThread t = matmul_thread(matmul_shared);
  TileCursor<SharedActivations> cursor;
  const int cta_k_first = blockIdx.z * K_TILES_PER_SPLIT;
  const ColumnRange sv_range = covering_blocks(cta_k_first * 64);
  cursor.words = word_cursor(w, t.row_tile - shard.first_row / 16, t.k_first, t.lane);
  stage_independent_operands(w, shard, sv_range, sv_shared, cta_k_first,
                             min(K_TILES, cta_k_first + K_TILES_PER_SPLIT) - cta_k_first);
  load_codebooks<true>(matmul_shared);  // the commit group after SV's
  if constexpr (!HAS_BULK_PREFETCH) {
    for (int p = 0; p < PREFETCH && p < t.tiles; ++p) prefetch_words<K_WARPS>(cursor.words, p);
  }
  wait_for_previous_kernel();  // x, and the previous forward done with the workspace

  wait_copies<1>();
  __syncthreads();  // SV in shared memory
  transform_input_slice(x, batch, t.batch_base, cta_k_first * 64, sv_shared, sv_range.first, u_shared, scratch);
  wait_copies<0>();
  __syncthreads();  // u and the codebooks in shared memory
#pragma unroll
  for (int nb = 0; nb < BATCH_TILES; ++nb) {
    const int column = nb * 8 + (t.lane >> 2);
    cursor.act.present[nb] = column < FUSED_ROWS && t.batch_base + column < batch;
    cursor.act.first[nb] = shared_address(u_shared) + column * U_ROW_BYTES +
                           ((t.k_first - cta_k_first) * 64 + (t.lane & 3) * 16) * 2;
  }
  float acc[STAGES][BATCH_TILES][4] = {};
  multiply_tiles(cursor, t.tiles, t.e8p_table, t.e81b_table, acc);
  let_next_kernel_start();

  float z[BATCH_TILES][4];
  const bool holds_sum = sum_k_warps(w, acc, z, scratch, t.row_warp, t.k_warp, t.lane);
  if (holds_sum && t.active) store_partial(z, partial, t.row_tile, t.batch_base, batch, t.lane);
  __syncthreads();  // every partial sum of this CTA is stored

  if (threadIdx.x == 0) {
    const int first_row = blockIdx.y * 16 * MATMUL_WARPS;
    const int end_row = min(M_PAD, first_row + 16 * MATMUL_WARPS);
    u32 last = 0;
    for (int b = 0; b < OUT_BLOCKS; ++b) {
      if (!block_overlaps(OUT_BLOCK_OFFSET[b], OUT_BLOCK_LOG2[b], first_row, end_row)) continue;
      if (count_arrival(arrivals + b) == u32(arrivals_expected(b) - 1)) {
        arrivals[b] = 0;  // for the next forward: every other CTA of this block has counted
        last |= 1u << b;
      }
    }
    last_arrivals = last;
  }
  __syncthreads();
  for (int b = 0; b < OUT_BLOCKS; ++b) {
    if (last_arrivals & (1u << b)) transform_output_block(w, shard, partial, y, y_row_stride, batch, b, scratch);
  }
}

}  // namespace glq

// workspace: OUT_BLOCKS arrival counters (zero between forwards), then from byte ARRIVAL_BYTES
// the partial sums, fp32 [K_SPLIT][batch][M_PAD]. Rows of y are y_row_stride elements apart.
extern "C" __global__ void __launch_bounds__(MATMUL_WARPS * K_WARPS * 32, CTAS_PER_SM)
glq_fused(const glq::Shards shards, const u16* __restrict__ x, u16* __restrict__ y, char* __restrict__ workspace,
          int batch, int y_row_stride) {
  const int shard = glq::cta_shard();
  glq::static_for<SHARDS>([&](auto s) {
    if (shard == s.value) glq::fused_forward<s.value>(shards.w[s.value], x, y, y_row_stride, workspace, batch);
  });
}
