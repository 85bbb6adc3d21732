// Family 3, batches of 64 and more on sm_90a: z = Wscale * sum_s c_s * (D_s u) for a slice of
// K, with warpgroup MMAs that take the decoded weights from registers.
//
// A CTA has MATMUL_WARPS warps (whole warpgroups of four). Warp w owns 16-row tile
// blockIdx.y * MATMUL_WARPS + w; the CTA covers WGMMA_N batch columns from blockIdx.x * WGMMA_N
// and k-tiles of 64 columns of its K split. Per k-tile every warp decodes its word of each stage
// into mma A fragments (decode.cuh), folds the stages into one fp16 set a = d_0 + c_1 d_1 + ...,
// and its warpgroup issues four wgmma.m64nNk16 with A from those registers and B from the
// activation tile in shared memory. So a weight is decoded once for WGMMA_N batch columns, and
// the tensor cores multiply tile j while the warps decode tile j + 1. The activation tiles come
// in by cp.async, ACT_AHEAD tiles ahead, through a ring of ACT_BUFFERS; the input transform
// stored u in the k order of the decoded fragments (decode.cuh, u_position), so B's plain k
// order in shared memory meets A's.
//
// Folding rounds each weight to fp16 once where the recipe has more than one stage (2 bpw has
// one and is exact); matmul.cuh keeps per-stage fp32 sums instead. docs/kernel-notes.md has the
// measured errors, and the two other ways of feeding B that measured slower.
//
// Dynamic shared memory: the codebooks (tile.cuh), then the activation ring.

namespace glq {

constexpr int THREADS = MATMUL_WARPS * 32;
constexpr int ACT_AHEAD = ACT_BUFFERS - 2;  // tiles j and j - 1 may still be in the tensor cores
constexpr u32 ACT_TILE_BYTES = WGMMA_N * 64 * 2;

// An activation tile is B of the wgmma, K-major without swizzle: "core matrices" of 8 batch
// columns x 8 k (16 bytes per column, 128 bytes each), the 8 k-groups of a column group side by
// side. Column c, k at ((c / 8) * 8 + k / 8) * 128 + (c % 8) * 16 + (k % 8) * 2.
constexpr u32 CORE_BYTES = 128;
constexpr u32 K_GROUP_STRIDE = CORE_BYTES;           // the descriptor's leading-dimension offset
constexpr u32 COLUMN_GROUP_STRIDE = 8 * CORE_BYTES;  // its stride-dimension offset

__device__ __forceinline__ u64 activation_descriptor(u32 address) {
  return u64((address >> 4) & 0x3fff) | u64(K_GROUP_STRIDE >> 4) << 16 | u64(COLUMN_GROUP_STRIDE >> 4) << 32;
}

// 16 bytes global -> shared, zero-filled past `bytes`.
__device__ __forceinline__ void copy_async_16(u32 shared, const void* global, u32 bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(shared), "l"(global), "r"(bytes) : "memory");
}
__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int PENDING>
__device__ __forceinline__ void wait_copies() {
  asm volatile("cp.async.wait_group %0;" ::"n"(PENDING) : "memory");
}
// What this thread's copies wrote becomes visible to the tensor cores (the async proxy).
__device__ __forceinline__ void fence_for_tensor_cores() {
  asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int PENDING>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(PENDING) : "memory");
}
// Keeps the compiler from moving reads of the accumulators across a wgmma wait.
__device__ __forceinline__ void pin_accumulators(float (&acc)[WGMMA_N / 2]) {
#pragma unroll
  for (int i = 0; i < WGMMA_N / 2; ++i) asm volatile("" : "+f"(acc[i])::"memory");
}

// Copies k-tile `k_tile` of batch columns first_column .. + WGMMA_N - 1 (zeros past `batch`).
// Neighbouring threads take the two 16-byte halves of one 32-byte sector of a column.
__device__ __forceinline__ void copy_activation_tile(const u16* u, int batch, int first_column, int k_tile,
                                                     u32 buffer) {
  constexpr int CHUNKS = WGMMA_N * 8;
  static_assert(CHUNKS % THREADS == 0, "every thread copies the same number of chunks");
#pragma unroll
  for (int i = 0; i < CHUNKS / THREADS; ++i) {
    const int chunk = int(threadIdx.x) + i * THREADS;
    const int k_group = (chunk & 1) + 2 * (chunk / (2 * WGMMA_N));
    const int column = (chunk >> 1) % WGMMA_N;
    const int row = first_column + column;
    const bool present = row < batch;
    const u16* source = present ? u + size_t(row) * N_PAD + k_tile * 64 + k_group * 8 : u;
    copy_async_16(buffer + ((column >> 3) * 8 + k_group) * CORE_BYTES + (column & 7) * 16, source, present ? 16 : 0);
  }
}

__device__ __forceinline__ u32 fma_f16x2(u32 a, u32 b, u32 c) {
  u32 d;
  asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}

// a = d_0 + c_1 d_1 + ... + c_{S-1} d_{S-1}, every stage's A fragments folded into one.
__device__ __forceinline__ void decode_folded(const uint2 (&words)[STAGES], u32 e8p_table, u32 e81b_table,
                                              const u32 (&stage_scale)[STAGES], u32 (&a)[4][4]) {
  decode_stage<0>(words[0], e8p_table, e81b_table, a);
  static_for<STAGES - 1>([&](auto previous) {
    constexpr int s = previous.value + 1;
    u32 d[4][4];
    decode_stage<s>(words[s], e8p_table, e81b_table, d);
#pragma unroll
    for (int r = 0; r < 4; ++r) {
#pragma unroll
      for (int i = 0; i < 4; ++i) a[r][i] = fma_f16x2(d[r][i], stage_scale[s], a[r][i]);
    }
  });
}

}  // namespace glq

extern "C" __global__ void __launch_bounds__(glq::THREADS, 1)
glq_matmul(glq::Weights w, const u16* __restrict__ u, float* __restrict__ partial, int batch) {
  using namespace glq;
  extern __shared__ __align__(128) uint4 matmul_shared[];
  load_codebooks(matmul_shared);

  const int lane = threadIdx.x & 31;
  const int row_tile = blockIdx.y * MATMUL_WARPS + (threadIdx.x >> 5);
  // A warp past the last row tile still joins its warpgroup's wgmmas, with zero weights.
  const bool active = row_tile < M_TILES;
  const int first_column = blockIdx.x * WGMMA_N;
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

  float acc[WGMMA_N / 2];
#pragma unroll
  for (int i = 0; i < WGMMA_N / 2; ++i) acc[i] = 0.0f;
  pin_accumulators(acc);
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
        // Tile `tile` has landed for every thread, and every warpgroup is done with tile - 2,
        // whose buffer the next copy reuses.
        wait_copies<ACT_AHEAD - 1>();
        fence_for_tensor_cores();
        __syncthreads();
        const int ahead = tile + ACT_AHEAD;
        if (ahead < tiles) {
          copy_activation_tile(u, batch, first_column, k_first + ahead,
                               act_ring + (ahead % ACT_BUFFERS) * ACT_TILE_BYTES);
        }
        commit_copies();
        const u32 buffer = act_ring + (tile % ACT_BUFFERS) * ACT_TILE_BYTES;
        wgmma_fence();
#pragma unroll
        for (int step = 0; step < 4; ++step) {
          wgmma_rs(acc, a[step], activation_descriptor(buffer + step * 2 * CORE_BYTES));
        }
        wgmma_commit();
        wgmma_wait<1>();
      }
    }
  }
  wgmma_wait<0>();
  pin_accumulators(acc);

  float z[WGMMA_N / 8][4];
#pragma unroll
  for (int nb = 0; nb < WGMMA_N / 8; ++nb) {
#pragma unroll
    for (int e = 0; e < 4; ++e) z[nb][e] = w.wscale * acc[4 * nb + e];
  }
  if (active) store_partial(z, partial, row_tile, first_column, batch, lane);
}
