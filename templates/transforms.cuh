// The two Hadamard sides of the layer (FORMAT.md section 1), one thread block per
// (Hadamard block, batch row).

// u = fp16(H_n (SV * [x, 0...])): the activations the matmul kernel multiplies.
extern "C" __global__ void __launch_bounds__(TRANSFORM_THREADS)
glq_input_transform(glq::Weights w, const u16* __restrict__ x, u16* __restrict__ u) {
  using namespace glq;
  extern __shared__ float transform_buffer[];
  const int offset = IN_BLOCK_OFFSET[blockIdx.x];
  const u16* x_row = x + size_t(blockIdx.y) * IN_FEATURES;
  u16* u_row = u + size_t(blockIdx.y) * N_PAD + offset;
  auto load16 = [&](int i, float (&v)[16]) {
    const int column = offset + i;
    if constexpr (IN_FEATURES % 8 == 0) {
      // Rows start 16-byte aligned, and a run of 8 is wholly inside or wholly padding.
#pragma unroll
      for (int half = 0; half < 2; ++half) {
        const int c = column + 8 * half;
        uint4 packed = make_uint4(0, 0, 0, 0);
        if (c < IN_FEATURES) packed = *reinterpret_cast<const uint4*>(x_row + c);
        const u32 words[4] = {packed.x, packed.y, packed.z, packed.w};
#pragma unroll
        for (int e = 0; e < 8; ++e) {
          const u16 bits = u16(words[e >> 1] >> (16 * (e & 1)));
          v[8 * half + e] = act_to_f32(bits) * f16_to_f32(w.sv[c + e]);
        }
      }
    } else {
#pragma unroll
      for (int e = 0; e < 16; ++e) {
        const int c = column + e;
        v[e] = c < IN_FEATURES ? act_to_f32(x_row[c]) * f16_to_f32(w.sv[c]) : 0.0f;
      }
    }
  };
  auto store = [&](int i, float value) { u_row[i] = f32_to_f16(value); };
  hadamard_block(transform_buffer, IN_BLOCK_LOG2[blockIdx.x], load16, store);
}

// y = SU * (H_m z) (+ bias), where z is the sum of the matmul kernel's K_SPLIT partial
// results, added in a fixed order so that every run gives the same bits.
extern "C" __global__ void __launch_bounds__(TRANSFORM_THREADS)
glq_output_transform(glq::Weights w, const float* __restrict__ partial, u16* __restrict__ y, int batch) {
  using namespace glq;
  extern __shared__ float transform_buffer[];
  const int offset = OUT_BLOCK_OFFSET[blockIdx.x];
  const int row = blockIdx.y;
  auto load16 = [&](int i, float (&v)[16]) {
#pragma unroll
    for (int e = 0; e < 16; ++e) v[e] = 0.0f;
    for (int part = 0; part < K_SPLIT; ++part) {
      const float4* p = reinterpret_cast<const float4*>(partial + (size_t(part) * batch + row) * M_PAD + offset + i);
#pragma unroll
      for (int q = 0; q < 4; ++q) {
        const float4 z = p[q];
        v[4 * q] += z.x;
        v[4 * q + 1] += z.y;
        v[4 * q + 2] += z.z;
        v[4 * q + 3] += z.w;
      }
    }
  };
  u16* y_row = y + size_t(row) * OUT_FEATURES;
  auto store = [&](int i, float value) {
    const int feature = offset + i;
    if (feature >= OUT_FEATURES) return;
    float result = f16_to_f32(w.su[feature]) * value;
    if constexpr (HAS_BIAS) result += act_to_f32(w.bias[feature]);
    y_row[feature] = f32_to_act(result);
  };
  hadamard_block(transform_buffer, OUT_BLOCK_LOG2[blockIdx.x], load16, store);
}
