// Kernel family 3, batches of 64 and more: z = Wscale * sum_s c_s * (D_s u) for a slice of K,
// with the activations staged in shared memory so that a weight is decoded once per CTA_COLUMNS
// batch columns.
//
// A CTA has MATMUL_WARPS warps (whole warpgroups of four). Warp w owns 16-row tile
// blockIdx.y * MATMUL_WARPS + w; the CTA covers CTA_COLUMNS batch columns from
// blockIdx.x * CTA_COLUMNS and k-tiles of 64 columns of its K split. Per k-tile every warp
// decodes its word of each stage into mma A fragments (decode.cuh), folds the stages into one
// fp16 set a = d_0 + c_1 d_1 + ... (staged.cuh), and multiplies it by the activation tile in
// shared memory: with wgmma on sm_90a (staged_wgmma.cuh), else with mma.sync over ldmatrix
// (staged_mma.cuh); the generated source includes one of the two. The activation tiles come in
// by cp.async, ACT_AHEAD tiles ahead, through a ring of ACT_BUFFERS; the input transform stored u
// in the k order of the decoded fragments (decode.cuh, u_position), so the tile's plain k order
// meets A's.
//
// Folding rounds each weight to fp16 once where the recipe has more than one stage (2 bpw has
// one and is exact); matmul.cuh keeps per-stage fp32 sums instead. docs/kernel-notes.md has the
// measured errors, and the two other ways of feeding wgmma that measured slower.
//
// Dynamic shared memory: the codebooks (tile.cuh), then the activation ring.

extern "C" __global__ void __launch_bounds__(glq::THREADS, 1)
glq_matmul(glq::Weights w, const u16* __restrict__ u, float* __restrict__ partial, int batch) {
  using namespace glq;
  extern __shared__ __align__(128) uint4 matmul_shared[];
  load_codebooks(matmul_shared);

  const int lane = threadIdx.x & 31;
  const int row_tile = blockIdx.y * MATMUL_WARPS + (threadIdx.x >> 5);
  // A warp past the last row tile still takes part (wgmma is per warpgroup), with zero weights.
  const bool active = row_tile < M_TILES;
  const int first_column = blockIdx.x * CTA_COLUMNS;
  const int k_first = blockIdx.z * K_TILES_PER_SPLIT;
  const int tiles = max(0, min(K_TILES - k_first, K_TILES_PER_SPLIT));  // the same in every thread
  const u32 shared_base = shared_address(matmul_shared);
  const u32 lane_table = shared_base + (lane % TABLE_COPIES) * 16;
  const u32 act_ring = shared_base + CODEBOOK_BYTES;
  const WordCursor cursor = word_cursor(w, active ? row_tile : 0, k_first, lane);
  u32 stage_scale[STAGES] = {};
  for (int s = 1; s < STAGES; ++s) {
    const u32 half = f32_to_f16(w.inv_resid_scale[s - 1]);
    stage_scale[s] = half | half << 16;
  }

#pragma unroll
  for (int p = 0; p < ACT_AHEAD; ++p) {
    if (p < tiles) copy_activation_tile(u, batch, first_column, k_first + p, act_ring + p * ACT_TILE_BYTES);
    commit_copies();
  }
  // Words: a ring of PREFETCH + 1 slots, unrolled so that slot indices are constants (matmul.cuh).
  constexpr int RING = PREFETCH + 1;
  uint2 ring[RING][STAGES];
#pragma unroll
  for (int p = 0; p < PREFETCH; ++p) {
    if (active && p < tiles) load_words<1>(cursor, p, ring[p]);
  }
  __syncthreads();  // the codebooks

  float acc[ACCUMULATORS];
#pragma unroll
  for (int i = 0; i < ACCUMULATORS; ++i) acc[i] = 0.0f;
  start_tiles(acc);
  for (int j = 0; j < tiles; j += RING) {
#pragma unroll
    for (int p = 0; p < RING; ++p) {
      const int tile = j + p;
      if (tile < tiles) {
        u32 a[4][4] = {};
        if (active) {
          if (tile + PREFETCH < tiles) load_words<1>(cursor, tile + PREFETCH, ring[(p + PREFETCH) % RING]);
          decode_folded(ring[p], lane_table, lane_table + E81B_TABLE_OFFSET, stage_scale, a);
        }
        // Tile `tile` has landed for every thread, and no warp reads the buffer the next copy
        // reuses any more (ACT_AHEAD).
        wait_copies<ACT_AHEAD - 1>();
        publish_copies();
        __syncthreads();
        const int ahead = tile + ACT_AHEAD;
        if (ahead < tiles) {
          copy_activation_tile(u, batch, first_column, k_first + ahead,
                               act_ring + (ahead % ACT_BUFFERS) * ACT_TILE_BYTES);
        }
        commit_copies();
        multiply_tile(acc, a, act_ring + (tile % ACT_BUFFERS) * ACT_TILE_BYTES);
      }
    }
  }
  finish_tiles(acc);

  float z[CTA_COLUMNS / 8][4];
#pragma unroll
  for (int nb = 0; nb < CTA_COLUMNS / 8; ++nb) {
#pragma unroll
    for (int e = 0; e < 4; ++e) z[nb][e] = w.wscale * acc[4 * nb + e];
  }
  if (active) store_partial(z, partial, row_tile, first_column, batch, lane);
}
