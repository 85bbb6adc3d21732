// z = Wscale * sum_s c_s * (D_s u) for a slice of K, on the tensor cores, from compressed weights.
//
// A CTA has MATMUL_WARPS x K_WARPS warps: MATMUL_WARPS consecutive 16-row tiles, each walked by
// K_WARPS warps that take every K_WARPS-th 64-column k-tile of the CTA's K slice. Per k-tile a
// lane loads one word per stage (8 bytes for E8P, 4 for repacked E81B) and the 16 activations
// its fragments need, decodes in registers (decode.cuh) and issues four mmas per stage and
// 8-column batch tile, and up to two batch tiles one more m16n8k8 for E8P's coset offsets
// (multiply_tile). A ring of PREFETCH tiles keeps loads in flight ahead of use. Every stage
// has its own fp32 accumulators, so c_s and Wscale are applied in fp32 as the reference does.
// The K_WARPS partial results are added in shared memory in a fixed order; the K_SPLIT CTAs
// along K write theirs to the workspace, where the output transform adds them.
//
// glq_matmul (kernel family 2) reads u from the workspace; glq_fused (family 1,
// matmul_fused.cuh) runs the same loop over a slice of u it computed into shared memory.
//
// Dynamic shared memory: the codebooks (tile.cuh), then the K_WARPS reduction buffer.

namespace glq {


struct TileOperands {
  uint2 words[STAGES];
  u32 act[BATCH_TILES][8];  // fp16 pairs of u[column][64 k + 16t .. + 15]
};

constexpr int ACT_PER_STEP = K_WARPS * 64 / 8;  // uint4 (8 activations) between a warp's tiles

// A lane's 16 activations of its first tile in every batch tile, in u in global memory (null
// where the lane's batch column is empty). Tile j of the warp is K_WARPS * j tiles further on.
// (Loading the last row there is for an empty column instead, without the branch and the
// zeroing, measured 4 % slower at 57344x8192 batch 1: kernel-notes v8.)
struct GlobalActivations {
  const uint4* first[BATCH_TILES];
  __device__ __forceinline__ bool has(int nb) const { return first[nb] != nullptr; }
  __device__ __forceinline__ void load(int j, int nb, uint4& lo, uint4& hi) const {
    const uint4* p = first[nb] + j * ACT_PER_STEP;
    lo = p[0];
    hi = p[1];
  }
};

// The same in a slice of u in shared memory (shared-space addresses; present[nb] says which).
struct SharedActivations {
  u32 first[BATCH_TILES];
  bool present[BATCH_TILES];
  __device__ __forceinline__ bool has(int nb) const { return present[nb]; }
  __device__ __forceinline__ void load(int j, int nb, uint4& lo, uint4& hi) const {
    const u32 p = first[nb] + j * ACT_PER_STEP * 16;
    lo = load_shared_u32x4(p);
    hi = load_shared_u32x4(p + 16);
  }
};

// Where a warp's tiles start: the lane's word of its first tile in every stage, and its
// activations.
template <class Activations>
struct TileCursor {
  WordCursor words;
  Activations act;
};

// The activations of an empty batch column are never loaded: they keep the zeros the ring
// starts with, so no tile spends instructions zeroing them.
template <class Activations>
__device__ __forceinline__ void load_tile(const TileCursor<Activations>& cursor, int j, TileOperands& op) {
  load_words<K_WARPS>(cursor.words, j, op.words);
#pragma unroll
  for (int nb = 0; nb < BATCH_TILES; ++nb) {
    if (!cursor.act.has(nb)) continue;
    uint4 lo, hi;
    cursor.act.load(j, nb, lo, hi);
    const u32 words[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
    for (int i = 0; i < 8; ++i) op.act[nb][i] = words[i];
  }
}

// E8P's coset offsets by one m16n8k8 mma per stage and batch tile (+-1/4 per code times the sum
// of the 8 activations the code multiplies) instead of 16 fp16 additions and 16 instructions of
// offset constants per word; the sums cost 9 instructions per batch tile, so this pays up to two.
constexpr bool OFFSETS_BY_MMA = BATCH_TILES <= 2;

// The sums of u over the two groups of 8 tile columns a lane's activations of one batch tile
// cover (groups 2t and 2t + 1 of batch column g): the B fragment of the offsets' mma.
__device__ __forceinline__ u32 group_sums(const u32 (&act)[8]) {
  const u32 first = add_f16x2(add_f16x2(act[0], act[1]), add_f16x2(act[2], act[3]));  // (even, odd) halves
  const u32 second = add_f16x2(add_f16x2(act[4], act[5]), add_f16x2(act[6], act[7]));
  return add_f16x2(byte_permute(first, second, 0x5410), byte_permute(first, second, 0x7632));
}

__device__ __forceinline__ void multiply_tile(const TileOperands& op, u32 e8p_table, u32 e81b_table,
                                              float (&acc)[STAGES][BATCH_TILES][4]) {
  u32 sums[BATCH_TILES];
  if constexpr (HAS_E8P && OFFSETS_BY_MMA) {
#pragma unroll
    for (int nb = 0; nb < BATCH_TILES; ++nb) sums[nb] = group_sums(op.act[nb]);
  }
  static_for<STAGES>([&](auto s) {
    u32 a[4][4];
    const u32 parities = decode_stage<s.value, !OFFSETS_BY_MMA>(op.words[s.value], e8p_table, e81b_table, a);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int nb = 0; nb < BATCH_TILES; ++nb) mma_16x8x16(acc[s.value][nb], a[j], op.act[nb][2 * j], op.act[nb][2 * j + 1]);
    }
    if constexpr (OFFSETS_BY_MMA && stage_kind(s.value) == StageKind::e8p) {
      u32 offsets[2];
      offset_fragment(parities, offsets);
#pragma unroll
      for (int nb = 0; nb < BATCH_TILES; ++nb) mma_16x8x8(acc[s.value][nb], offsets, sums[nb]);
    }
  });
}

// The warp's `tiles` k-tiles into per-stage accumulators. A ring of PREFETCH + 1 slots,
// unrolled so that slot indices are constants: tile j is multiplied from slot j % RING while
// tile j + PREFETCH loads into the slot freed last. With one stage the loop runs whole turns of
// the ring and checks no bounds (the checks cost 7 instructions a tile, 8 % of it: kernel-notes
// v13): a load past the last tile loads the last one again, whose slot is never multiplied, and
// the tiles of the last part turn are already in their slots when the loop ends. With more
// stages ptxas (NVRTC 13.0) spilled 8-16 bytes that way (bpw 3 in bf16 with a bias on sm_90a,
// bpw 6 at two batch tiles on sm_80-sm_89), so there each slot keeps its checks.
constexpr bool LOOP_IN_WHOLE_TURNS = STAGES == 1;

template <class Activations>
__device__ __forceinline__ void multiply_tiles(const TileCursor<Activations>& cursor, int tiles, u32 e8p_table,
                                               u32 e81b_table, float (&acc)[STAGES][BATCH_TILES][4]) {
  constexpr int RING = PREFETCH + 1;
  if (LOOP_IN_WHOLE_TURNS && tiles <= 0) return;
  TileOperands ring[RING] = {};
  auto load = [&](int j, TileOperands& slot) {
    if constexpr (LOOP_IN_WHOLE_TURNS) load_tile(cursor, min(j, tiles - 1), slot);
    else if (j < tiles) load_tile(cursor, j, slot);
  };
#pragma unroll
  for (int p = 0; p < PREFETCH; ++p) load(p, ring[p]);
  int j = 0;
  for (; LOOP_IN_WHOLE_TURNS ? j + RING <= tiles : j < tiles; j += RING) {
#pragma unroll
    for (int p = 0; p < RING; ++p) {
      if (LOOP_IN_WHOLE_TURNS || j + p < tiles) {
        load(j + p + PREFETCH, ring[(p + PREFETCH) % RING]);
        multiply_tile(ring[p], e8p_table, e81b_table, acc);
      }
    }
  }
  if constexpr (LOOP_IN_WHOLE_TURNS) {
#pragma unroll
    for (int p = 0; p < RING - 1; ++p) {
      if (j + p < tiles) multiply_tile(ring[p], e8p_table, e81b_table, acc);
    }
  }
}

// z[nb][e] (row 2g + (e >> 1), batch column 8 nb + 2t + (e & 1) of the warp's row tile) of the
// CTA's K part: the stages scaled in fp32, then the K_WARPS warps of a row tile added in shared
// memory (`reduce`, (K_WARPS - 1) x MATMUL_WARPS x BATCH_TILES x 128 floats) in a fixed order.
// Every thread of the CTA calls it; true for the warps (k_warp 0) that then hold the sum.
__device__ __forceinline__ bool sum_k_warps(const Weights& w, const float (&acc)[STAGES][BATCH_TILES][4],
                                            float (&z)[BATCH_TILES][4], float* reduce, int row_warp, int k_warp,
                                            int lane) {
#pragma unroll
  for (int nb = 0; nb < BATCH_TILES; ++nb) {
#pragma unroll
    for (int e = 0; e < 4; ++e) {
      float sum = acc[0][nb][e];
#pragma unroll
      for (int s = 1; s < STAGES; ++s) sum += w.inv_resid_scale[s - 1] * acc[s][nb][e];
      z[nb][e] = w.wscale * sum;
    }
  }
  if constexpr (K_WARPS > 1) {
    // Lane-fastest layout: the stores and loads of a warp hit 32 different banks.
    auto slot = [&](int kw, int nb, int e) {
      return reduce + ((((kw - 1) * MATMUL_WARPS + row_warp) * BATCH_TILES + nb) * 4 + e) * 32 + lane;
    };
    if (k_warp > 0) {
#pragma unroll
      for (int nb = 0; nb < BATCH_TILES; ++nb) {
#pragma unroll
        for (int e = 0; e < 4; ++e) *slot(k_warp, nb, e) = z[nb][e];
      }
    }
    __syncthreads();
    if (k_warp > 0) return false;
    for (int kw = 1; kw < K_WARPS; ++kw) {
#pragma unroll
      for (int nb = 0; nb < BATCH_TILES; ++nb) {
#pragma unroll
        for (int e = 0; e < 4; ++e) z[nb][e] += *slot(kw, nb, e);
      }
    }
  }
  return k_warp == 0;
}

// Which row tile, K range and tables a thread works on.
struct MatmulThread {
  int lane, row_warp, k_warp, row_tile;
  bool active;     // the last CTA may hang over the end; it still joins the barriers
  int batch_base;  // first batch column of the CTA
  int k_first;     // the warp's first k-tile
  int tiles;       // how many it multiplies
  u32 e8p_table, e81b_table;
};

__device__ __forceinline__ MatmulThread matmul_thread(const void* shared) {
  MatmulThread t;
  t.lane = threadIdx.x & 31;
  t.row_warp = (threadIdx.x >> 5) % MATMUL_WARPS;
  t.k_warp = (threadIdx.x >> 5) / MATMUL_WARPS;
  t.row_tile = blockIdx.y * MATMUL_WARPS + t.row_warp;
  t.active = t.row_tile < M_TILES;
  t.batch_base = blockIdx.x * BATCH_TILES * 8;
  t.k_first = blockIdx.z * K_TILES_PER_SPLIT + t.k_warp;
  const int k_end = min(K_TILES, (int(blockIdx.z) + 1) * K_TILES_PER_SPLIT);
  t.tiles = t.active && t.k_first < k_end ? (k_end - t.k_first + K_WARPS - 1) / K_WARPS : 0;
  const u32 lane_table = shared_address(shared) + (t.lane % TABLE_COPIES) * 16;
  t.e8p_table = lane_table;
  t.e81b_table = lane_table + E81B_TABLE_OFFSET;
  return t;
}

}  // namespace glq

extern "C" __global__ void __launch_bounds__(MATMUL_WARPS * K_WARPS * 32, CTAS_PER_SM)
glq_matmul(glq::Weights w, const u16* __restrict__ u, float* __restrict__ partial, int batch) {
  using namespace glq;
  extern __shared__ __align__(16) uint4 matmul_shared[];
  load_codebooks(matmul_shared);
  wait_for_previous_kernel();  // u
  __syncthreads();

  const MatmulThread t = matmul_thread(matmul_shared);
  TileCursor<GlobalActivations> cursor;
  cursor.words = word_cursor(w, t.row_tile, t.k_first, t.lane);
#pragma unroll
  for (int nb = 0; nb < BATCH_TILES; ++nb) {
    const int column = nb * 8 + (t.lane >> 2);
    const int row = t.batch_base + column;
    cursor.act.first[nb] = column < BATCH_BUCKET && row < batch
                               ? reinterpret_cast<const uint4*>(u + size_t(row) * N_PAD + t.k_first * 64 + (t.lane & 3) * 16)
                               : nullptr;
  }
  float acc[STAGES][BATCH_TILES][4] = {};
  multiply_tiles(cursor, t.tiles, t.e8p_table, t.e81b_table, acc);
  let_next_kernel_start();  // late: the output transform's CTAs would take the space of later waves

  float z[BATCH_TILES][4];
  float* reduce = reinterpret_cast<float*>(reinterpret_cast<char*>(matmul_shared) + CODEBOOK_BYTES);
  const bool holds_sum = sum_k_warps(w, acc, z, reduce, t.row_warp, t.k_warp, t.lane);
  if (holds_sum && t.active) store_partial(z, partial, t.row_tile, t.batch_base, batch, t.lane);
}
