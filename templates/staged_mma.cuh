// Kernel family 3's multiply with mma.sync, for every architecture: each warp reads the B
// fragments of the activation tile from shared memory with ldmatrix and multiplies its 16 rows
// by all CTA_COLUMNS columns. A core matrix (staged.cuh) is one 8x8 ldmatrix matrix, 8 batch
// columns of 8 k at 16 bytes each, so lane (g, t) receives column g, k 2t and 2t + 1: the B
// fragment of mma.m16n8k16. The four k-groups of a column group that one ldmatrix.x4 reads
// are 512 consecutive bytes, so lane l gives the row address base + 16 l.

namespace glq {

// Once every warp has passed the barrier of tile j it has finished reading tile j - 1, so the
// copies of tile j + PREFETCH can reuse its buffer.
static_assert(TILE_BUFFERS == PREFETCH + 1, "the ring holds the tiles in flight and the one being read");

// The copies are read by ldmatrix, in the generic proxy: the CTA barrier is enough.
__device__ __forceinline__ void publish_copies() {}

__device__ __forceinline__ void load_b_fragments(u32 address, u32 (&b)[4]) {
  asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
               : "=r"(b[0]), "=r"(b[1]), "=r"(b[2]), "=r"(b[3])
               : "r"(address));
}

__device__ __forceinline__ void start_tiles(float (&)[ACCUMULATORS]) {}

// acc += a (this warp's 16 rows x 64 k) * the activation tile at `buffer`.
__device__ __forceinline__ void multiply_tile(float (&acc)[ACCUMULATORS], const u32 (&a)[4][4], u32 buffer) {
  const u32 lane_row = buffer + (threadIdx.x & 31) * 16;
#pragma unroll
  for (int nb = 0; nb < CTA_COLUMNS / 8; ++nb) {
    u32 b[2][4];  // k-groups 0-3 and 4-7 of column group nb
    load_b_fragments(lane_row + nb * COLUMN_GROUP_STRIDE, b[0]);
    load_b_fragments(lane_row + nb * COLUMN_GROUP_STRIDE + 4 * K_GROUP_STRIDE, b[1]);
    float (&d)[4] = reinterpret_cast<float (&)[4]>(acc[4 * nb]);
#pragma unroll
    for (int step = 0; step < 4; ++step) {
      const u32(&k_groups)[4] = b[step / 2];  // k-step `step` is k-groups 2 step and 2 step + 1
      mma_16x8x16(d, a[step], k_groups[2 * (step % 2)], k_groups[2 * (step % 2) + 1]);
    }
  }
}

__device__ __forceinline__ void finish_tiles(float (&)[ACCUMULATORS]) {}

}  // namespace glq
