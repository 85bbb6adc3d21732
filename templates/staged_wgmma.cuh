// Kernel family 3's multiply on sm_90a: per k-tile the warpgroup issues four
// wgmma.m64nNk16 (glq::wgmma_rs, generated for N = CTA_COLUMNS) with A, the decoded 16 rows of
// each warp, from registers and B, the activation tile, from shared memory. The tensor cores
// work on tile j while the warps decode tile j + 1.

namespace glq {

// When the copies of tile j + PREFETCH start, tiles j - 1 and j may still be in the tensor cores.
static_assert(TILE_BUFFERS == PREFETCH + 2, "the ring holds the tiles in flight and the two being read");

__device__ __forceinline__ u64 activation_descriptor(u32 address) {
  return u64((address >> 4) & 0x3fff) | u64(K_GROUP_STRIDE >> 4) << 16 | u64(COLUMN_GROUP_STRIDE >> 4) << 32;
}

// What this thread's copies wrote becomes visible to the tensor cores (the async proxy).
__device__ __forceinline__ void publish_copies() { asm volatile("fence.proxy.async.shared::cta;" ::: "memory"); }

__device__ __forceinline__ void wgmma_fence() { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit() { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int PENDING>
__device__ __forceinline__ void wgmma_wait() {
  asm volatile("wgmma.wait_group.sync.aligned %0;" ::"n"(PENDING) : "memory");
}
// Keeps the compiler from moving reads of the accumulators across a wgmma wait.
__device__ __forceinline__ void pin_accumulators(float (&acc)[ACCUMULATORS]) {
#pragma unroll
  for (int i = 0; i < ACCUMULATORS; ++i) asm volatile("" : "+f"(acc[i])::"memory");
}

__device__ __forceinline__ void start_tiles(float (&acc)[ACCUMULATORS]) { pin_accumulators(acc); }

// acc += a (this warp's 16 rows x 64 k) * the activation tile at `buffer`, leaving at most this
// tile's wgmmas in flight. They read `a` until then, so the caller decodes the next tile into
// other registers.
__device__ __forceinline__ void multiply_tile(float (&acc)[ACCUMULATORS], const u32 (&a)[4][4], u32 buffer) {
  wgmma_fence();
#pragma unroll
  for (int step = 0; step < 4; ++step) wgmma_rs(acc, a[step], activation_descriptor(buffer + step * 2 * K_GROUP_STRIDE));
  wgmma_commit();
  wgmma_wait<1>();
}

__device__ __forceinline__ void finish_tiles(float (&acc)[ACCUMULATORS]) {
  wgmma_wait<0>();
  pin_accumulators(acc);
}

}  // namespace glq
