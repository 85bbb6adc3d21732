// The normalized Walsh-Hadamard transform of one power-of-two block, by one thread block.
//
// The first pass takes 16 consecutive values straight from the caller (global memory) and
// transforms index bits 0..3 in registers; each later pass transforms up to four more bits
// through shared memory; the last pass hands its values to the caller's store. Shared memory
// holds one fp32 value per element plus one pad word per 16, so that both the first pass
// (16 consecutive values per thread) and the strided later passes avoid bank conflicts.
//
// A pass hands its results to the caller's store R at a time, store(first, stride, values):
// values[e] is element first + e * stride. Stores that read more inputs (SU, the bias) then load
// them all before they write anything.

namespace glq {

// Calls f(first + e * stride, values[e]) for each of the R values a pass hands over.
template <int R, class F>
__device__ __forceinline__ void for_each_value(int first, int stride, const float (&values)[R], F&& f) {
#pragma unroll
  for (int e = 0; e < R; ++e) f(first + e * stride, values[e]);
}

__device__ __forceinline__ int padded_index(int i) { return i + (i >> 4); }

template <int R>
__device__ __forceinline__ void butterflies(float (&v)[R]) {
#pragma unroll
  for (int h = 1; h < R; h <<= 1) {
#pragma unroll
    for (int i = 0; i < R; ++i) {
      if ((i & h) == 0) {
        const float a = v[i], b = v[i + h];
        v[i] = a + b;
        v[i + h] = a - b;
      }
    }
  }
}

// One pass over bits [lo, lo + log2(R)): element e of group gi sits at base(gi) + e << lo.
template <int R, class Store>
__device__ __forceinline__ void hadamard_pass(float* buf, int log_block, int lo, bool last, float scale,
                                              Store&& store) {
  const int groups = (1 << log_block) / R;
  const int low_mask = (1 << lo) - 1;
  for (int gi = threadIdx.x; gi < groups; gi += blockDim.x) {
    const int base = (gi & low_mask) | ((gi >> lo) << (lo + (R == 2 ? 1 : R == 4 ? 2 : R == 8 ? 3 : 4)));
    float v[R];
#pragma unroll
    for (int e = 0; e < R; ++e) v[e] = buf[padded_index(base + (e << lo))];
    butterflies<R>(v);
    if (last) {
#pragma unroll
      for (int e = 0; e < R; ++e) v[e] *= scale;
      store(base, 1 << lo, v);
    } else {
#pragma unroll
      for (int e = 0; e < R; ++e) buf[padded_index(base + (e << lo))] = v[e];
    }
  }
  __syncthreads();
}

// load16(i, v) fills v with elements i..i+15 of the block; store takes the results (above).
template <class Load16, class Store>
__device__ void hadamard_block(float* buf, int log_block, Load16&& load16, Store&& store) {
  const float scale = rsqrtf(float(1 << log_block));
  const int groups = (1 << log_block) >> 4;
  for (int gi = threadIdx.x; gi < groups; gi += blockDim.x) {
    float v[16];
    load16(gi << 4, v);
    butterflies<16>(v);
    if (log_block == 4) {
#pragma unroll
      for (int e = 0; e < 16; ++e) v[e] *= scale;
      store(0, 1, v);
    } else {
#pragma unroll
      for (int e = 0; e < 16; ++e) buf[padded_index((gi << 4) + e)] = v[e];
    }
  }
  __syncthreads();
  for (int lo = 4; lo < log_block; lo += 4) {
    const int bits = min(4, log_block - lo);
    const bool last = lo + bits == log_block;
    switch (bits) {
      case 1: hadamard_pass<2>(buf, log_block, lo, last, scale, store); break;
      case 2: hadamard_pass<4>(buf, log_block, lo, last, scale, store); break;
      case 3: hadamard_pass<8>(buf, log_block, lo, last, scale, store); break;
      default: hadamard_pass<16>(buf, log_block, lo, last, scale, store); break;
    }
  }
}

}  // namespace glq
