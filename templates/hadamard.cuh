// The normalized Walsh-Hadamard transform of one power-of-two block in one or more rows, by one
// thread block.
//
// The first pass takes 16 consecutive values straight from the caller (global memory) and
// transforms index bits 0..3 in registers; each later pass transforms up to four more bits
// through shared memory; the last pass hands its values to the caller's store. Shared memory
// holds one fp32 value per element plus one pad word per 16, so that both the first pass
// (16 consecutive values per thread) and the strided later passes avoid bank conflicts.
//
// A pass hands its results to the caller's store R at a time, store(row, first, stride, values):
// values[e] is element first + e * stride of that row's block. Stores that read more inputs (SU,
// the bias) then load them all before they write anything.

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

// One pass over bits [lo, lo + log2(R)) of every row: element e of group gi of a row sits at
// base(gi) + e << lo.
template <int R, int MAX_ROWS, class Store>
__device__ __forceinline__ void hadamard_pass(float* buf, int log_block, int rows, int lo, bool last, float scale,
                                              Store&& store) {
  const int log_groups = log_block - (R == 2 ? 1 : R == 4 ? 2 : R == 8 ? 3 : 4);
  const int low_mask = (1 << lo) - 1;
  for (int item = threadIdx.x; item < (MAX_ROWS == 1 ? 1 : rows) << log_groups; item += blockDim.x) {
    const int row = MAX_ROWS == 1 ? 0 : item >> log_groups, gi = item & ((1 << log_groups) - 1);
    float* row_buf = buf + row * padded_index(1 << log_block);
    const int base = (gi & low_mask) | ((gi >> lo) << (lo + log_block - log_groups));
    float v[R];
#pragma unroll
    for (int e = 0; e < R; ++e) v[e] = row_buf[padded_index(base + (e << lo))];
    butterflies<R>(v);
    if (last) {
#pragma unroll
      for (int e = 0; e < R; ++e) v[e] *= scale;
      store(row, base, 1 << lo, v);
    } else {
#pragma unroll
      for (int e = 0; e < R; ++e) row_buf[padded_index(base + (e << lo))] = v[e];
    }
  }
  __syncthreads();
}

// The blocks of `rows` rows at once (each row's scratch one padded block, padded_index(1 <<
// log_block) floats, after the last), so that the loads of all of them are in flight together and
// every pass keeps all threads busy: one row at a time cost family 1 about 5 us per batch row at
// 4096 elements (kernel-notes v13).
// load16(row, i, v) fills v with elements i..i+15 of the row's block; store(row, first, stride,
// values) takes the results (above). rows is at most MAX_ROWS; with MAX_ROWS 1 the row arithmetic
// folds away (the one-row transform kernels spilled 8 bytes without that).
template <int MAX_ROWS, class Load16, class Store>
__device__ void hadamard_block(float* buf, int log_block, int rows, Load16&& load16, Store&& store) {
  const float scale = rsqrtf(float(1 << log_block));
  const int log_groups = log_block - 4;
  for (int item = threadIdx.x; item < (MAX_ROWS == 1 ? 1 : rows) << log_groups; item += blockDim.x) {
    const int row = MAX_ROWS == 1 ? 0 : item >> log_groups, gi = item & ((1 << log_groups) - 1);
    float v[16];
    load16(row, gi << 4, v);
    butterflies<16>(v);
    if (log_block == 4) {
#pragma unroll
      for (int e = 0; e < 16; ++e) v[e] *= scale;
      store(row, 0, 1, v);
    } else {
      float* row_buf = buf + row * padded_index(1 << log_block);
#pragma unroll
      for (int e = 0; e < 16; ++e) row_buf[padded_index((gi << 4) + e)] = v[e];
    }
  }
  __syncthreads();
  for (int lo = 4; lo < log_block; lo += 4) {
    const int bits = min(4, log_block - lo);
    const bool last = lo + bits == log_block;
    switch (bits) {
      case 1: hadamard_pass<2, MAX_ROWS>(buf, log_block, rows, lo, last, scale, store); break;
      case 2: hadamard_pass<4, MAX_ROWS>(buf, log_block, rows, lo, last, scale, store); break;
      case 3: hadamard_pass<8, MAX_ROWS>(buf, log_block, rows, lo, last, scale, store); break;
      default: hadamard_pass<16, MAX_ROWS>(buf, log_block, rows, lo, last, scale, store); break;
    }
  }
}

}  // namespace glq
