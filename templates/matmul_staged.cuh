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
// (staged_mma.cuh); the generated source includes one of the two. Each k-tile's activations
// and packed words come in by cp.async, PREFETCH tiles ahead, through a ring of TILE_BUFFERS
// (staged.cuh); the input transform stored u in the k order of the decoded fragments
// (decode.cuh, u_position), so the tile's plain k order meets A's. With no ring of words in
// registers, the wgmma kernel fits 128 registers, so two CTAs can share an SM (CTAS_PER_SM;
// docs/kernel-notes.md v6).
//
// Folding rounds each weight to fp16 once where the recipe has more than one stage (2 bpw has
// one and is exact); matmul.cuh keeps per-stage fp32 sums instead. docs/kernel-notes.md has the
// measured errors, and the two other ways of feeding wgmma that measured slower.
//
// Dynamic shared memory: the codebooks (tile.cuh), then the ring of staged k-tiles.

extern "C" __global__ void __launch_bounds__(glq::THREADS, CTAS_PER_SM)
glq_matmul(glq::Weights w, const u16* __restrict__ u, float* __restrict__ partial, int batch) {
  using namespace glq;
  extern __shared__ __align__(128) uint4 matmul_shared[];
  load_codebooks(matmul_shared);
  wait_for_previous_kernel();  // u

  const int lane = threadIdx.x & 31;
  const int row_tile = blockIdx.y * MATMUL_WARPS + (threadIdx.x >> 5);
  // A warp past the last row tile still takes part (wgmma is per warpgroup), with zero weights.
  const bool active = row_tile < M_TILES;
  const int first_column = blockIdx.x * CTA_COLUMNS;
  const int k_first = blockIdx.z * K_TILES_PER_SPLIT;
  const int tiles = max(0, min(K_TILES - k_first, K_TILES_PER_SPLIT));  // the same in every thread
  const u32 shared_base = shared_address(matmul_shared);
  const u32 lane_table = shared_base + (lane % TABLE_COPIES) * 16;
  const u32 ring = shared_base + CODEBOOK_BYTES;
  const u32 warp_words = ACT_TILE_BYTES + (threadIdx.x >> 5) * WARP_WORD_BYTES;  // within a buffer
  const WordCursor cursor = word_cursor(w, active ? row_tile : 0, k_first, 0);
  u32 stage_scale[STAGES] = {};
  for (int s = 1; s < STAGES; ++s) {
    const u32 half = f32_to_f16(w.inv_resid_scale[s - 1]);
    stage_scale[s] = half | half << 16;
  }
  auto copy_tile = [&](int tile) {
    const u32 buffer = ring + (tile % TILE_BUFFERS) * BUFFER_BYTES;
    copy_activation_tile(u, batch, first_column, k_first + tile, buffer);
    if (active) copy_word_tile(cursor, tile, buffer + warp_words, lane);
  };

#pragma unroll
  for (int p = 0; p < PREFETCH; ++p) {
    if (p < tiles) copy_tile(p);
    commit_copies();
  }
  __syncthreads();  // the codebooks

  float acc[ACCUMULATORS];
#pragma unroll
  for (int i = 0; i < ACCUMULATORS; ++i) acc[i] = 0.0f;
  start_tiles(acc);
  // Two sets of A fragments, alternating: the wgmmas of one tile read theirs while the next is
  // decoded (staged_wgmma.cuh).
  u32 a[2][4][4] = {};  // a warp past the last row tile multiplies zeros
  for (int j = 0; j < tiles; j += 2) {
#pragma unroll
    for (int p = 0; p < 2; ++p) {
      const int tile = j + p;
      if (tile < tiles) {
        // This thread's copies of tile `tile` have landed; __syncwarp shows the warp's words to
        // all its lanes, so the warp decodes while others may still wait for their copies.
        wait_copies<PREFETCH - 1>();
        __syncwarp();
        const u32 buffer = ring + (tile % TILE_BUFFERS) * BUFFER_BYTES;
        if (active) {
          uint2 words[STAGES];
          read_words(buffer + warp_words, lane, words);
          decode_folded(words, lane_table, lane_table + E81B_TABLE_OFFSET, stage_scale, a[p]);
        }
        // The whole activation tile has landed, and no warp reads the buffer the next copies
        // reuse any more (TILE_BUFFERS).
        publish_copies();
        __syncthreads();
        if (tile + PREFETCH < tiles) copy_tile(tile + PREFETCH);
        commit_copies();
        multiply_tile(acc, a[p], buffer);
      }
    }
  }
  finish_tiles(acc);
  let_next_kernel_start();  // late: the output transform's CTAs would take the space of later waves

  float z[CTA_COLUMNS / 8][4];
#pragma unroll
  for (int nb = 0; nb < CTA_COLUMNS / 8; ++nb) {
#pragma unroll
    for (int e = 0; e < 4; ++e) z[nb][e] = w.wscale * acc[4 * nb + e];
  }
  if (active) store_partial(z, partial, row_tile, first_column, batch, lane);
}
