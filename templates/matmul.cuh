// z = Wscale * sum_s c_s * (D_s u) for a slice of K, on the tensor cores, from compressed weights.
//
// A CTA has MATMUL_WARPS x K_WARPS warps: MATMUL_WARPS consecutive 16-row tiles, each walked by
// K_WARPS warps that take every K_WARPS-th 64-column k-tile of the CTA's K slice. Per k-tile a
// lane loads one word per stage (8 bytes for E8P, 4 for repacked E81B) and the 16 activations
// its fragments need, decodes in registers (decode.cuh) and issues four mmas per stage and
// 8-column batch tile. A ring of PREFETCH tiles keeps loads in flight ahead of use. Every stage
// has its own fp32 accumulators, so c_s and Wscale are applied in fp32 as the reference does.
// The K_WARPS partial results are added in shared memory in a fixed order; the K_SPLIT CTAs
// along K write theirs to the workspace, where the output transform adds them.
//
// Dynamic shared memory: the codebooks (tile.cuh), then the K_WARPS reduction buffer.

namespace glq {

constexpr int REDUCE_OFFSET = CODEBOOK_BYTES;

struct TileOperands {
  uint2 words[STAGES];
  u32 act[BATCH_TILES][8];  // fp16 pairs of u[column][64 k + 16t .. + 15]
};

// Where a warp's tiles start: the lane's word of its first tile in every stage, and its 16
// activations of that tile in every batch tile (null where the lane's batch column is empty).
// Tile j of the warp is K_WARPS * j tiles further on.
struct TileCursor {
  WordCursor words;
  const uint4* act[BATCH_TILES];
};
constexpr int ACT_PER_STEP = K_WARPS * 64 / 8;  // uint4 (8 activations) between a warp's tiles

__device__ __forceinline__ void load_tile(const TileCursor& cursor, int j, TileOperands& op) {
  load_words<K_WARPS>(cursor.words, j, op.words);
#pragma unroll
  for (int nb = 0; nb < BATCH_TILES; ++nb) {
    uint4 lo = make_uint4(0, 0, 0, 0), hi = lo;
    if (cursor.act[nb] != nullptr) {
      const uint4* p = cursor.act[nb] + j * ACT_PER_STEP;
      lo = p[0];
      hi = p[1];
    }
    const u32 words[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
    for (int i = 0; i < 8; ++i) op.act[nb][i] = words[i];
  }
}

__device__ __forceinline__ void multiply_tile(const TileOperands& op, u32 e8p_table, u32 e81b_table,
                                              float (&acc)[STAGES][BATCH_TILES][4]) {
  static_for<STAGES>([&](auto s) {
    u32 a[4][4];
    decode_stage<s.value>(op.words[s.value], e8p_table, e81b_table, a);
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int nb = 0; nb < BATCH_TILES; ++nb) mma_16x8x16(acc[s.value][nb], a[j], op.act[nb][2 * j], op.act[nb][2 * j + 1]);
    }
  });
}

}  // namespace glq

extern "C" __global__ void __launch_bounds__(MATMUL_WARPS * K_WARPS * 32, CTAS_PER_SM)
glq_matmul(glq::Weights w, const u16* __restrict__ u, float* __restrict__ partial, int batch) {
  using namespace glq;
  extern __shared__ __align__(16) uint4 matmul_shared[];
  load_codebooks(matmul_shared);
  wait_for_previous_kernel();  // u
  __syncthreads();

  const int lane = threadIdx.x & 31;
  const int row_warp = (threadIdx.x >> 5) % MATMUL_WARPS;
  const int k_warp = (threadIdx.x >> 5) / MATMUL_WARPS;
  const int row_tile = blockIdx.y * MATMUL_WARPS + row_warp;
  const bool active = row_tile < M_TILES;  // the last CTA may hang over the end; it still joins the barriers
  const int batch_base = blockIdx.x * BATCH_TILES * 8;
  const int k_first = blockIdx.z * K_TILES_PER_SPLIT + k_warp;
  const int k_end = min(K_TILES, (int(blockIdx.z) + 1) * K_TILES_PER_SPLIT);
  const int tiles = active && k_first < k_end ? (k_end - k_first + K_WARPS - 1) / K_WARPS : 0;
  const u32 lane_table = shared_address(matmul_shared) + (lane % TABLE_COPIES) * 16;
  const u32 e8p_table = lane_table;
  const u32 e81b_table = lane_table + E81B_TABLE_OFFSET;

  TileCursor cursor;
  cursor.words = word_cursor(w, row_tile, k_first, lane);
#pragma unroll
  for (int nb = 0; nb < BATCH_TILES; ++nb) {
    const int column = nb * 8 + (lane >> 2);
    const int row = batch_base + column;
    cursor.act[nb] = column < BATCH_BUCKET && row < batch
                         ? reinterpret_cast<const uint4*>(u + size_t(row) * N_PAD + k_first * 64 + (lane & 3) * 16)
                         : nullptr;
  }

  // A ring of PREFETCH + 1 slots, unrolled so that slot indices are constants: tile j is
  // multiplied from slot j % RING while tile j + PREFETCH loads into the slot freed last.
  constexpr int RING = PREFETCH + 1;
  float acc[STAGES][BATCH_TILES][4] = {};
  TileOperands ring[RING];
#pragma unroll
  for (int p = 0; p < PREFETCH; ++p) {
    if (p < tiles) load_tile(cursor, p, ring[p]);
  }
  for (int j = 0; j < tiles; j += RING) {
#pragma unroll
    for (int p = 0; p < RING; ++p) {
      if (j + p < tiles) {
        if (j + p + PREFETCH < tiles) load_tile(cursor, j + p + PREFETCH, ring[(p + PREFETCH) % RING]);
        multiply_tile(ring[p], e8p_table, e81b_table, acc);
      }
    }
  }
  let_next_kernel_start();  // late: the output transform's CTAs would take the space of later waves

  // z[nb][e]: row 2g + (e >> 1), batch column 8 nb + 2t + (e & 1) of this warp's tile and K part.
  float z[BATCH_TILES][4];
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
    float* reduce = reinterpret_cast<float*>(reinterpret_cast<char*>(matmul_shared) + REDUCE_OFFSET);
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
    if (k_warp > 0) return;
    for (int kw = 1; kw < K_WARPS; ++kw) {
#pragma unroll
      for (int nb = 0; nb < BATCH_TILES; ++nb) {
#pragma unroll
        for (int e = 0; e < 4; ++e) z[nb][e] += *slot(kw, nb, e);
      }
    }
  }
  if (active) store_partial(z, partial, row_tile, batch_base, batch, lane);
}
