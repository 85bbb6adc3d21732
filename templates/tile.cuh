// The 16-row x 64-column weight tile a warp multiplies, shared by the matmul kernels: the
// codebooks it decodes with, where a lane's packed words are, and where its results go.
//
// Weights are stored tile by tile (row tile, then k-tile), 32 words per tile in lane order, so
// a warp's consecutive k-tiles are a constant stride apart. mma and wgmma leave a lane the
// results of logical rows g and g + 8 (physical rows 2g and 2g + 1, decode.cuh) and batch
// columns 2t, 2t + 1 of every 8-column group.

namespace glq {

constexpr int TABLE_BYTES = 256 * TABLE_COPIES * 16;
constexpr int E81B_TABLE_OFFSET = HAS_E8P ? TABLE_BYTES : 0;
constexpr int CODEBOOK_BYTES = (int(HAS_E8P) + int(HAS_E81B)) * TABLE_BYTES;

__device__ __forceinline__ u32 shared_address(const void* pointer) {
  u64 address;
  asm("cvta.to.shared.u64 %0, %1;" : "=l"(address) : "l"(pointer));
  return u32(address);
}

// Copies the codebooks the recipe uses into the start of dynamic shared memory, TABLE_COPIES
// times each (decode.cuh); the caller synchronizes before decoding. ASYNC: by cp.async, in one
// commit group the caller waits for first, so that the copies overlap whatever comes next.
template <bool ASYNC = false>
__device__ __forceinline__ void load_codebooks(uint4* shared) {
  auto copy = [&](int index, const uint4* row) {
    if constexpr (ASYNC) copy_async_16_via_l1(shared_address(shared + index), row);
    else shared[index] = *row;
  };
  for (int i = threadIdx.x; i < 256 * TABLE_COPIES; i += blockDim.x) {
    if constexpr (HAS_E8P) copy(i, E8P_ABS_HALVES + (i >> TABLE_COPIES_LOG2));
    if constexpr (HAS_E81B) copy(E81B_TABLE_OFFSET / 16 + i, E81B_HALVES + (i >> TABLE_COPIES_LOG2));
  }
  if constexpr (ASYNC) commit_copies();
}

// Bytes of one lane's word of stage s: a packed E8P word, or four repacked E81B codes.
__device__ constexpr size_t stage_word_bytes(int stage) { return stage_kind(stage) == StageKind::e8p ? 8 : 4; }

// Where a lane's words start, in every stage: its word of tile (row_tile, k_tile).
struct WordCursor {
  const void* first[STAGES];
};

__device__ __forceinline__ WordCursor word_cursor(const Weights& w, int row_tile, int k_tile, int lane) {
  WordCursor cursor;
  const size_t first_word = (size_t(row_tile) * K_TILES + k_tile) * 32 + lane;
  static_for<STAGES>([&](auto s) {
    cursor.first[s.value] = static_cast<const char*>(w.stage[s.value]) + first_word * stage_word_bytes(s.value);
  });
  return cursor;
}

// The lane's words of the tile `step` tiles of `stride` on from the cursor (E8P: the packed
// word; E81B: .x holds four repacked codes).
template <int STRIDE_TILES>
__device__ __forceinline__ void load_words(const WordCursor& cursor, int step, uint2 (&words)[STAGES]) {
  static_for<STAGES>([&](auto s) {
    const int offset = step * STRIDE_TILES * 32;
    if constexpr (stage_kind(s.value) == StageKind::e8p) {
      words[s.value] = load_streaming_u32x2(static_cast<const uint2*>(cursor.first[s.value]) + offset);
    } else {
      words[s.value] = make_uint2(load_streaming_u32(static_cast<const u32*>(cursor.first[s.value]) + offset), 0);
    }
  });
}

// Asks L2 for the lane's words of that tile, so that their later load does not wait on memory.
template <int STRIDE_TILES>
__device__ __forceinline__ void prefetch_words(const WordCursor& cursor, int step) {
  static_for<STAGES>([&](auto s) {
    prefetch_to_l2(static_cast<const char*>(cursor.first[s.value]) +
                   size_t(step) * STRIDE_TILES * 32 * stage_word_bytes(s.value));
  });
}

// Stage s of a tile decoded into A fragments (tables: row 0 of the lane's codebook copies), E8P
// with or without its coset offsets (decode.cuh). Returns an E8P word's sign parities.
template <int S, bool WITH_OFFSETS>
__device__ __forceinline__ u32 decode_stage(uint2 word, u32 e8p_table, u32 e81b_table, u32 (&a)[4][4]) {
  if constexpr (stage_kind(S) == StageKind::e8p) {
    return decode_e8p_word<WITH_OFFSETS>(word, e8p_table, a);
  } else {
    decode_e81b_word(word.x, e81b_table, a);
    return 0;
  }
}

// Writes z[nb][e] (row 2g + (e >> 1), batch column first_column + 8 nb + 2t + (e & 1) of the
// row tile) to this K split's partial sums, fp32 [K_SPLIT][batch][M_PAD].
template <int TILES>
__device__ __forceinline__ void store_partial(const float (&z)[TILES][4], float* partial, int row_tile,
                                              int first_column, int batch, int lane) {
  const int g = lane >> 2, t = lane & 3;
  const int row = row_tile * 16 + 2 * g;
#pragma unroll
  for (int nb = 0; nb < TILES; ++nb) {
#pragma unroll
    for (int half = 0; half < 2; ++half) {
      const int column = first_column + nb * 8 + 2 * t + half;
      if (column >= batch) continue;
      float2* out = reinterpret_cast<float2*>(partial + (size_t(blockIdx.z) * batch + column) * M_PAD + row);
      *out = make_float2(z[nb][half], z[nb][2 + half]);
    }
  }
}

}  // namespace glq
