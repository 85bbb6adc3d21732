// Device vocabulary shared by every glqjit kernel.
// Generated sources include no CUDA header, so they compile in milliseconds and mean the same
// under every toolkit: fp16 and bf16 values travel as raw 16-bit patterns, fp16 pairs as
// 32-bit registers laid out like half2 (element 0 in the low half).

typedef unsigned char u8;
typedef unsigned short u16;
typedef unsigned int u32;
typedef unsigned long long u64;

namespace glq {

template <int I>
struct Int {
  static constexpr int value = I;
};

// Calls f(Int<0>{}) .. f(Int<N-1>{}) so that the index is a compile-time constant in f.
template <int N, int I = 0, class F>
__device__ __forceinline__ void static_for(F&& f) {
  if constexpr (I < N) {
    f(Int<I>{});
    static_for<N, I + 1>(f);
  }
}

__device__ __forceinline__ float f16_to_f32(u16 h) {
  float f;
  asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
  return f;
}

__device__ __forceinline__ u16 f32_to_f16(float f) {
  u16 h;
  asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

__device__ __forceinline__ float bf16_to_f32(u16 h) { return __uint_as_float(u32(h) << 16); }

__device__ __forceinline__ u16 f32_to_bf16(float f) {
  u16 h;
  asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
  return h;
}

// Activations and outputs use the layer's dtype (ACT_IS_BF16, from the specialization).
__device__ __forceinline__ float act_to_f32(u16 h) { return ACT_IS_BF16 ? bf16_to_f32(h) : f16_to_f32(h); }
__device__ __forceinline__ u16 f32_to_act(float f) { return ACT_IS_BF16 ? f32_to_bf16(f) : f32_to_f16(f); }

__device__ __forceinline__ u32 add_f16x2(u32 a, u32 b) {
  u32 d;
  asm("add.rn.f16x2 %0, %1, %2;" : "=r"(d) : "r"(a), "r"(b));
  return d;
}

// Bytes of {b, a} (a is bytes 0-3) chosen by the four selector nibbles: prmt.b32.
__device__ __forceinline__ u32 byte_permute(u32 a, u32 b, u32 selector) {
  u32 d;
  asm("prmt.b32 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(selector));
  return d;
}

// Weights are read exactly once per forward: keep them out of L1.
__device__ __forceinline__ uint2 load_streaming_u32x2(const void* p) {
  uint2 v;
  asm volatile("ld.global.nc.L1::no_allocate.v2.u32 {%0, %1}, [%2];" : "=r"(v.x), "=r"(v.y) : "l"(p));
  return v;
}

__device__ __forceinline__ u32 load_streaming_u32(const void* p) {
  u32 v;
  asm volatile("ld.global.nc.L1::no_allocate.u32 %0, [%1];" : "=r"(v) : "l"(p));
  return v;
}

__device__ __forceinline__ void prefetch_to_l2(const void* p) { asm volatile("prefetch.global.L2 [%0];" ::"l"(p)); }

// Asks L2 for `bytes` (a multiple of 16) from `p` (16-byte aligned) in one instruction, through
// the bulk copy engine (HAS_BULK_PREFETCH, sm_90 and newer).
__device__ __forceinline__ void prefetch_range_to_l2(const void* p, u32 bytes) {
  if constexpr (HAS_BULK_PREFETCH) asm volatile("cp.async.bulk.prefetch.L2.global [%0], %1;" ::"l"(p), "r"(bytes) : "memory");
}

// Adds one to a counter other CTAs also count on, at GPU scope: what this thread (and, through a
// CTA barrier before it, its CTA) wrote is visible to whoever sees the new count, and what the
// others wrote before their counts is visible to this thread after it.
__device__ __forceinline__ u32 count_arrival(u32* counter) {
  u32 old;
  asm volatile("atom.acq_rel.gpu.global.add.u32 %0, [%1], 1;" : "=r"(old) : "l"(counter) : "memory");
  return old;
}

// Data other CTAs of the same kernel wrote: from L2, never a stale L1 line.
__device__ __forceinline__ float4 load_l2_f32x4(const float4* p) {
  float4 v;
  asm volatile("ld.global.cg.v4.f32 {%0, %1, %2, %3}, [%4];" : "=f"(v.x), "=f"(v.y), "=f"(v.z), "=f"(v.w) : "l"(p));
  return v;
}

// Asynchronous copies (cp.async, sm_80 and newer): 16 bytes global -> shared, zero-filled past
// `bytes`; they complete in commit groups, waited for oldest first. copy_async_16 reads through
// L2 only (data each CTA reads once); copy_async_16_via_l1 through L1 (data every CTA reads,
// such as the codebooks, which would otherwise crowd one L2 slice).
__device__ __forceinline__ void copy_async_16(u32 shared, const void* global, u32 bytes) {
  asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"(shared), "l"(global), "r"(bytes) : "memory");
}
__device__ __forceinline__ void copy_async_16_via_l1(u32 shared, const void* global) {
  asm volatile("cp.async.ca.shared.global [%0], [%1], 16;" ::"r"(shared), "l"(global) : "memory");
}
__device__ __forceinline__ void commit_copies() { asm volatile("cp.async.commit_group;" ::: "memory"); }
template <int PENDING>
__device__ __forceinline__ void wait_copies() {
  asm volatile("cp.async.wait_group %0;" ::"n"(PENDING) : "memory");
}

// Programmatic dependent launch (HAS_PDL: sm_90 and newer). The runtime launches every kernel of
// a forward but the first so that it may start while the one before it still runs
// (runtime/linear.cpp). Such a kernel calls wait_for_previous_kernel() in every thread before it
// reads what the previous kernel wrote and before it can return. The transforms let the next
// kernel start as soon as all their CTAs run, so the matmul's CTAs load their codebooks while
// the input is transformed; the matmul does so only after its main loop, since CTAs of the
// output transform waiting on an SM would keep later matmul CTAs off it (4096x4096 batch 256
// measured 10 % slower that way).
__device__ __forceinline__ void wait_for_previous_kernel() {
  if constexpr (HAS_PDL) asm volatile("griddepcontrol.wait;" ::: "memory");
}
__device__ __forceinline__ void let_next_kernel_start() {
  if constexpr (HAS_PDL) asm volatile("griddepcontrol.launch_dependents;" ::: "memory");
}

// D += A * B on the tensor cores: A 16x16 fp16 (4 registers), B 16x8 fp16 (2), D 16x8 fp32 (4).
__device__ __forceinline__ void mma_16x8x16(float (&d)[4], const u32 (&a)[4], u32 b0, u32 b1) {
  asm volatile(
      "mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 "
      "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// D += A * B: A 16x8 fp16 (2 registers), B 8x8 fp16 (1), D 16x8 fp32 (4), mma_16x8x16's layouts.
__device__ __forceinline__ void mma_16x8x8(float (&d)[4], const u32 (&a)[2], u32 b) {
  asm volatile(
      "mma.sync.aligned.m16n8k8.row.col.f32.f16.f16.f32 "
      "{%0, %1, %2, %3}, {%4, %5}, {%6}, {%0, %1, %2, %3};"
      : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
      : "r"(a[0]), "r"(a[1]), "r"(b));
}

// The parameters every kernel of a layer shares; the host mirrors this layout exactly.
struct Weights {
  const void* stage[4];  // E8P stages as packed (FORMAT.md 6); E81B stages repacked per tile
  const u16* su;         // fp16 +-1, M_PAD
  const u16* sv;         // fp16 +-1, N_PAD
  const u16* bias;       // activation dtype, OUT_FEATURES; null when HAS_BIAS is false
  float wscale;
  float inv_resid_scale[3];
};

}  // namespace glq
