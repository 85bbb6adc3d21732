// The two Hadamard sides of the layer (FORMAT.md section 1), split so that every block of any
// size is transformed by many thread blocks. A Hadamard block of b = R * CHUNK elements is
// H_b = (H_R (x) I_CHUNK)(I_R (x) H_CHUNK): the chunk pass transforms each run of CHUNK
// consecutive elements (bits 0 .. log2 CHUNK - 1) in shared memory, one thread block per
// (chunk, batch row); the strided pass then transforms the R elements CHUNK apart (the high
// bits) in registers, one thread per column. Blocks of at most CHUNK elements need only the
// chunk pass. Which chunks and blocks exist is in the specialization's tables.

namespace glq {

// The R values load(0) .. load(R - 1), transformed in registers and scaled by 1/sqrt(R), handed
// to store(0, 1, values) (hadamard.cuh).
template <int R, class Load, class Store>
__device__ __forceinline__ void strided_transform(Load&& load, Store&& store) {
  float v[R];
#pragma unroll
  for (int q = 0; q < R; ++q) v[q] = load(q);
  butterflies<R>(v);
  const float scale = rsqrtf(float(R));
#pragma unroll
  for (int q = 0; q < R; ++q) v[q] *= scale;
  store(0, 1, v);
}

// Dispatches the strided pass on the block's R (a power of two from 2 to MAX_STRIDED_R).
template <class Load, class Store>
__device__ __forceinline__ void strided_pass(int log_r, Load&& load, Store&& store) {
  switch (log_r) {
    case 1: strided_transform<2>(load, store); break;
    case 2: strided_transform<4>(load, store); break;
    case 3: strided_transform<8>(load, store); break;
    case 4: strided_transform<16>(load, store); break;
    default: strided_transform<32>(load, store); break;
  }
}


// y = SU * value (+ bias) for the R features first, first + stride, ... of the `features` a
// linear has (y_row, SU and the bias indexed from its first): SU and the bias of up to 8 of them
// are loaded before any is stored, since y might alias them and each load would otherwise wait
// behind the store before it (one round trip to L2 per 8 values instead of per value; all R at
// once spilled family 1 kernels held to 128 registers).
template <int R>
__device__ __forceinline__ void store_outputs(const glq::Weights& w, u16* y_row, int features, int first, int stride,
                                              const float (&values)[R]) {
  constexpr int GROUP = R < 8 ? R : 8;
#pragma unroll
  for (int g = 0; g < R; g += GROUP) {
    float sign[GROUP], bias[GROUP];
#pragma unroll
    for (int e = 0; e < GROUP; ++e) {
      const int feature = first + (g + e) * stride;
      const bool inside = feature < features;
      sign[e] = inside ? f16_to_f32(w.su[feature]) : 0.0f;
      bias[e] = HAS_BIAS && inside ? act_to_f32(w.bias[feature]) : 0.0f;
    }
#pragma unroll
    for (int e = 0; e < GROUP; ++e) {
      const int feature = first + (g + e) * stride;
      if (feature >= features) continue;
      float result = sign[e] * values[g + e];
      if constexpr (HAS_BIAS) result += bias[e];
      y_row[feature] = f32_to_act(result);
    }
  }
}

// SV * x for the 16 input columns from `column` (zero past IN_FEATURES); `signs` holds the SV of
// those 16 columns (in global or shared memory).
__device__ __forceinline__ void load_input16(const u16* x_row, const u16* signs, int column, float (&v)[16]) {
  if constexpr (IN_FEATURES % 8 == 0) {
    // Rows start 16-byte aligned, and a run of 8 is wholly inside or wholly padding.
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int c = column + 8 * half;
      uint4 packed = make_uint4(0, 0, 0, 0);
      if (c < IN_FEATURES) packed = *reinterpret_cast<const uint4*>(x_row + c);
      const uint4 packed_signs = *reinterpret_cast<const uint4*>(signs + 8 * half);
      const u32 words[4] = {packed.x, packed.y, packed.z, packed.w};
      const u32 signs[4] = {packed_signs.x, packed_signs.y, packed_signs.z, packed_signs.w};
#pragma unroll
      for (int e = 0; e < 8; ++e) {
        const int shift = 16 * (e & 1);
        v[8 * half + e] = act_to_f32(u16(words[e >> 1] >> shift)) * f16_to_f32(u16(signs[e >> 1] >> shift));
      }
    }
  } else {
#pragma unroll
    for (int e = 0; e < 16; ++e) v[e] = column + e < IN_FEATURES ? act_to_f32(x_row[column + e]) * f16_to_f32(signs[e]) : 0.0f;
  }
}

// z of output rows `feature` .. + 15 for one batch row: the K_SPLIT partial sums added in a
// fixed order, so every run gives the same bits. Read from L2: in glq_fused other CTAs wrote them.
__device__ __forceinline__ void load_partial_sums16(const float* partial, int batch, int row, int feature,
                                                    float (&v)[16]) {
#pragma unroll
  for (int e = 0; e < 16; ++e) v[e] = 0.0f;
#pragma unroll
  for (int part = 0; part < K_SPLIT; ++part) {
    const float4* p = reinterpret_cast<const float4*>(partial + (size_t(part) * batch + row) * M_PAD + feature);
#pragma unroll
    for (int q = 0; q < 4; ++q) {
      const float4 z = load_l2_f32x4(p + q);
      v[4 * q] += z.x;
      v[4 * q + 1] += z.y;
      v[4 * q + 2] += z.z;
      v[4 * q + 3] += z.w;
    }
  }
}

}  // namespace glq

// Chunk pass of the input side: SV * x, then H over each chunk; u (fp16) when the chunk is its
// whole block, else fp32 into `staged` for the strided pass.
extern "C" __global__ void __launch_bounds__(TRANSFORM_THREADS)
glq_input_chunks(glq::Weights w, const u16* __restrict__ x, u16* __restrict__ u, float* __restrict__ staged) {
  using namespace glq;
  let_next_kernel_start();  // the first kernel of a forward: launched after the work before it
  extern __shared__ float transform_buffer[];
  const int offset = IN_CHUNK_OFFSET[blockIdx.x];
  const int log_chunk = IN_CHUNK_LOG2[blockIdx.x];
  const bool final_pass = IN_CHUNK_FINAL[blockIdx.x];
  const u16* x_row = x + size_t(blockIdx.y) * IN_FEATURES;
  auto load16 = [&](int, int i, float (&v)[16]) { load_input16(x_row, w.sv + offset + i, offset + i, v); };
  const size_t row_base = size_t(blockIdx.y) * N_PAD;
  auto store = [&](int, int first, int stride, const auto& values) {
    for_each_value(offset + first, stride, values, [&](int column, float value) {
      if (final_pass) u[row_base + u_position(column)] = f32_to_f16(value);
      else staged[row_base + column] = value;
    });
  };
  hadamard_block<1>(transform_buffer, log_chunk, 1, load16, store);
}

// Strided pass of the input side, for blocks larger than a chunk.
extern "C" __global__ void __launch_bounds__(TRANSFORM_THREADS)
glq_input_strided(const float* __restrict__ staged, u16* __restrict__ u) {
  using namespace glq;
  wait_for_previous_kernel();
  let_next_kernel_start();
  const int column = blockIdx.x * TRANSFORM_THREADS + threadIdx.x;  // within the strided blocks
  const int block = column / TRANSFORM_CHUNK;
  const int first = IN_STRIDED_OFFSET[block] + column % TRANSFORM_CHUNK;
  const size_t row_base = size_t(blockIdx.y) * N_PAD;
  strided_pass(
      IN_STRIDED_LOG2R[block], [&](int q) { return staged[row_base + first + q * TRANSFORM_CHUNK]; },
      [&](int q, int q_stride, const auto& values) {
        for_each_value(first + q * TRANSFORM_CHUNK, q_stride * TRANSFORM_CHUNK, values,
                       [&](int column, float value) { u[row_base + u_position(column)] = f32_to_f16(value); });
      });
}

// Chunk pass of the output side: the sum of the matmul's K_SPLIT partial results, then H over
// each chunk; y = SU * . + bias when the chunk is its whole block, else fp32 into `staged`.
// Rows of y are y_row_stride elements apart (OUT_FEATURES, or more where y is a column range of
// a group's wider output).
extern "C" __global__ void __launch_bounds__(TRANSFORM_THREADS)
glq_output_chunks(glq::Weights w, const float* __restrict__ partial, u16* __restrict__ y, float* __restrict__ staged,
                  int batch, int y_row_stride) {
  using namespace glq;
  wait_for_previous_kernel();
  let_next_kernel_start();
  extern __shared__ float transform_buffer[];
  const int offset = OUT_CHUNK_OFFSET[blockIdx.x];
  const int log_chunk = OUT_CHUNK_LOG2[blockIdx.x];
  const bool final_pass = OUT_CHUNK_FINAL[blockIdx.x];
  const int row = blockIdx.y;
  auto load16 = [&](int, int i, float (&v)[16]) { load_partial_sums16(partial, batch, row, offset + i, v); };
  u16* y_row = y + size_t(row) * y_row_stride;
  auto store = [&](int, int first, int stride, const auto& values) {
    if (final_pass) {
      store_outputs(w, y_row, OUT_FEATURES, offset + first, stride, values);
    } else {
      for_each_value(offset + first, stride, values,
                     [&](int feature, float value) { staged[size_t(row) * M_PAD + feature] = value; });
    }
  };
  hadamard_block<1>(transform_buffer, log_chunk, 1, load16, store);
}

// Strided pass of the output side, for blocks larger than a chunk.
extern "C" __global__ void __launch_bounds__(TRANSFORM_THREADS)
glq_output_strided(glq::Weights w, const float* __restrict__ staged, u16* __restrict__ y, int y_row_stride) {
  using namespace glq;
  wait_for_previous_kernel();
  const int column = blockIdx.x * TRANSFORM_THREADS + threadIdx.x;
  const int block = column / TRANSFORM_CHUNK;
  const int first = OUT_STRIDED_OFFSET[block] + column % TRANSFORM_CHUNK;
  const float* staged_row = staged + size_t(blockIdx.y) * M_PAD;
  u16* y_row = y + size_t(blockIdx.y) * y_row_stride;
  strided_pass(
      OUT_STRIDED_LOG2R[block], [&](int q) { return staged_row[first + q * TRANSFORM_CHUNK]; },
      [&](int q, int q_stride, const auto& values) {
        store_outputs(w, y_row, OUT_FEATURES, first + q * TRANSFORM_CHUNK, q_stride * TRANSFORM_CHUNK, values);
      });
}
