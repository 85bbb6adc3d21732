// z = Wscale * sum_s c_s * (D_s u) for a slice of K, on the tensor cores, from compressed weights.
//
// Each warp owns one 16-row tile and walks the 64-column k-tiles of its CTA's K slice. Per
// k-tile a lane loads one word per stage (8 bytes for E8P, 4 for repacked E81B) and the 16
// activations its fragments need, decodes in registers (decode.cuh) and issues four mmas per
// stage and 8-column batch tile. A ring of PREFETCH tiles keeps loads in flight ahead of use.
// Every stage has its own fp32 accumulators, so c_s and Wscale are applied in fp32 as the
// reference does. Partial results go to the workspace; the output transform adds the K slices.

namespace glq {

struct TileOperands {
  uint2 words[STAGES];          // E8P: the packed word; E81B: .x holds four repacked codes
  u32 act[BATCH_TILES][8];      // fp16 pairs of u[column][64 k + 16t .. + 15]
};

__device__ __forceinline__ void load_tile(const Weights& w, const u16* __restrict__ u, int batch, int batch_base,
                                          int row_tile, int k_tile, int lane, TileOperands& op) {
  const size_t word_index = (size_t(row_tile) * K_TILES + k_tile) * 32 + lane;
  static_for<STAGES>([&](auto s) {
    if constexpr (stage_kind(s.value) == StageKind::e8p) {
      op.words[s.value] = load_streaming_u32x2(static_cast<const uint2*>(w.stage[s.value]) + word_index);
    } else {
      op.words[s.value] = make_uint2(load_streaming_u32(static_cast<const u32*>(w.stage[s.value]) + word_index), 0);
    }
  });
  const int g = lane >> 2, t = lane & 3;
#pragma unroll
  for (int nb = 0; nb < BATCH_TILES; ++nb) {
    const int column = nb * 8 + g;
    const int row = batch_base + column;
    uint4 lo = make_uint4(0, 0, 0, 0), hi = lo;
    if (column < BATCH_BUCKET && row < batch) {
      const uint4* p = reinterpret_cast<const uint4*>(u + size_t(row) * N_PAD + k_tile * 64 + t * 16);
      lo = p[0];
      hi = p[1];
    }
    const u32 words[8] = {lo.x, lo.y, lo.z, lo.w, hi.x, hi.y, hi.z, hi.w};
#pragma unroll
    for (int i = 0; i < 8; ++i) op.act[nb][i] = words[i];
  }
}

__device__ __forceinline__ void multiply_tile(const TileOperands& op, const uint4* e8p_table, const uint4* e81b_table,
                                              float (&acc)[STAGES][BATCH_TILES][4]) {
  static_for<STAGES>([&](auto s) {
    u32 a[4][4];
    if constexpr (stage_kind(s.value) == StageKind::e8p) {
      decode_e8p_word(op.words[s.value], e8p_table, a);
    } else {
      decode_e81b_word(op.words[s.value].x, e81b_table, a);
    }
#pragma unroll
    for (int j = 0; j < 4; ++j) {
#pragma unroll
      for (int nb = 0; nb < BATCH_TILES; ++nb) mma_16x8x16(acc[s.value][nb], a[j], op.act[nb][2 * j], op.act[nb][2 * j + 1]);
    }
  });
}

}  // namespace glq

extern "C" __global__ void __launch_bounds__(MATMUL_WARPS * 32)
glq_matmul(glq::Weights w, const u16* __restrict__ u, float* __restrict__ partial, int batch) {
  using namespace glq;
  __shared__ uint4 e8p_table[HAS_E8P ? 256 : 1];
  __shared__ uint4 e81b_table[HAS_E81B ? 256 : 1];
  for (int i = threadIdx.x; i < 256; i += blockDim.x) {
    if constexpr (HAS_E8P) e8p_table[i] = E8P_ABS_HALVES[i];
    if constexpr (HAS_E81B) e81b_table[i] = E81B_HALVES[i];
  }
  __syncthreads();

  const int lane = threadIdx.x & 31;
  const int row_tile = blockIdx.y * MATMUL_WARPS + (threadIdx.x >> 5);
  if (row_tile >= M_TILES) return;
  const int batch_base = blockIdx.x * BATCH_TILES * 8;
  const int k_begin = blockIdx.z * K_TILES_PER_SPLIT;
  const int k_end = min(K_TILES, k_begin + K_TILES_PER_SPLIT);

  float acc[STAGES][BATCH_TILES][4] = {};
  TileOperands ring[PREFETCH];
#pragma unroll
  for (int p = 0; p < PREFETCH; ++p) {
    if (k_begin + p < k_end) load_tile(w, u, batch, batch_base, row_tile, k_begin + p, lane, ring[p]);
  }
  for (int k = k_begin; k < k_end; k += PREFETCH) {
#pragma unroll
    for (int p = 0; p < PREFETCH; ++p) {
      if (k + p < k_end) {
        const TileOperands current = ring[p];
        if (k + p + PREFETCH < k_end) load_tile(w, u, batch, batch_base, row_tile, k + p + PREFETCH, lane, ring[p]);
        multiply_tile(current, e8p_table, e81b_table, acc);
      }
    }
  }

  // Accumulator e of batch tile nb: row 2g + (e >> 1), batch column 8 nb + 2t + (e & 1).
  const int g = lane >> 2, t = lane & 3;
  const int row = row_tile * 16 + 2 * g;
#pragma unroll
  for (int nb = 0; nb < BATCH_TILES; ++nb) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int column = batch_base + nb * 8 + 2 * t + half;
      if (column >= batch) continue;
      float z0 = acc[0][nb][half], z1 = acc[0][nb][2 + half];
#pragma unroll
      for (int s = 1; s < STAGES; ++s) {
        z0 += w.inv_resid_scale[s - 1] * acc[s][nb][half];
        z1 += w.inv_resid_scale[s - 1] * acc[s][nb][2 + half];
      }
      float2* out = reinterpret_cast<float2*>(partial + (size_t(blockIdx.z) * batch + column) * M_PAD + row);
      *out = make_float2(w.wscale * z0, w.wscale * z1);
    }
  }
}
