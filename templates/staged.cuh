// What kernel family 3 (matmul_staged.cuh) shares between its two multiplies: the k-tiles it
// stages in shared memory, the copies that fill them, and the folding of the decoded stages.
//
// A staged k-tile is one of TILE_BUFFERS ring buffers: the activation tile (64 k of CTA_COLUMNS
// batch columns), then each warp's packed words of its 16 rows (WARP_WORD_BYTES: the 32 words of
// every stage, stage after stage, in lane order).

namespace glq {

constexpr int THREADS = MATMUL_WARPS * 32;
constexpr int ACCUMULATORS = CTA_COLUMNS / 2;  // a thread's fp32 results: 16 rows x CTA_COLUMNS per warp
constexpr u32 ACT_TILE_BYTES = CTA_COLUMNS * 64 * 2;
constexpr u32 BUFFER_BYTES = ACT_TILE_BYTES + MATMUL_WARPS * WARP_WORD_BYTES;

// An activation tile holds 64 k of CTA_COLUMNS batch columns as "core matrices" of 8 columns x
// 8 k (16 bytes per column, 128 bytes each), the 8 k-groups of a column group side by side:
// column c, k at ((c / 8) * 8 + k / 8) * 128 + (c % 8) * 16 + (k % 8) * 2. That is the
// K-major, unswizzled B operand of wgmma, and each core matrix is one 8x8 matrix of ldmatrix.
constexpr u32 CORE_BYTES = 128;
constexpr u32 K_GROUP_STRIDE = CORE_BYTES;
constexpr u32 COLUMN_GROUP_STRIDE = 8 * CORE_BYTES;

// Copies k-tile `k_tile` of batch columns first_column .. + CTA_COLUMNS - 1 (zeros past
// `batch`). Neighbouring threads take the two 16-byte halves of one 32-byte sector of a column.
__device__ __forceinline__ void copy_activation_tile(const u16* u, int batch, int first_column, int k_tile,
                                                     u32 buffer) {
  constexpr int CHUNKS = CTA_COLUMNS * 8;
  static_assert(CHUNKS % THREADS == 0, "every thread copies the same number of chunks");
#pragma unroll
  for (int i = 0; i < CHUNKS / THREADS; ++i) {
    const int chunk = int(threadIdx.x) + i * THREADS;
    const int k_group = (chunk & 1) + 2 * (chunk / (2 * CTA_COLUMNS));
    const int column = (chunk >> 1) % CTA_COLUMNS;
    const int row = first_column + column;
    const bool present = row < batch;
    const u16* source = present ? u + size_t(row) * N_PAD + k_tile * 64 + k_group * 8 : u;
    copy_async_16(buffer + (column >> 3) * COLUMN_GROUP_STRIDE + k_group * K_GROUP_STRIDE + (column & 7) * 16, source,
                  present ? 16 : 0);
  }
}

// Where stage `stage`'s 32 words start in a warp's words of a staged k-tile.
__device__ constexpr u32 stage_word_offset(int stage) {
  u32 offset = 0;
  for (int s = 0; s < stage; ++s) offset += stage_kind(s) == StageKind::e8p ? 32 * 8 : 32 * 4;
  return offset;
}

// Copies this warp's words of the k-tile `step` tiles on from `warp_words` (the words of lane 0,
// word_cursor) to `destination`, 16 bytes a lane.
__device__ __forceinline__ void copy_word_tile(const WordCursor& warp_words, int step, u32 destination, int lane) {
  static_assert(stage_word_offset(STAGES) == WARP_WORD_BYTES, "the words of a warp fill WARP_WORD_BYTES");
  static_for<STAGES>([&](auto s) {
    constexpr u32 TILE_BYTES = stage_word_offset(s.value + 1) - stage_word_offset(s.value);
    if (lane < int(TILE_BYTES / 16)) {
      const char* source = static_cast<const char*>(warp_words.first[s.value]) + size_t(step) * TILE_BYTES;
      copy_async_16(destination + stage_word_offset(s.value) + lane * 16, source + lane * 16, 16);
    }
  });
}

// The lane's words of a staged k-tile (E8P: the packed word; E81B: .x holds four repacked codes).
__device__ __forceinline__ void read_words(u32 warp_words, int lane, uint2 (&words)[STAGES]) {
  static_for<STAGES>([&](auto s) {
    const u32 stage_words = warp_words + stage_word_offset(s.value);
    if constexpr (stage_kind(s.value) == StageKind::e8p) {
      asm volatile("ld.shared.v2.u32 {%0, %1}, [%2];" : "=r"(words[s.value].x), "=r"(words[s.value].y)
                   : "r"(stage_words + lane * 8));
    } else {
      asm volatile("ld.shared.u32 %0, [%1];" : "=r"(words[s.value].x) : "r"(stage_words + lane * 4));
      words[s.value].y = 0;
    }
  });
}

__device__ __forceinline__ u32 fma_f16x2(u32 a, u32 b, u32 c) {
  u32 d;
  asm("fma.rn.f16x2 %0, %1, %2, %3;" : "=r"(d) : "r"(a), "r"(b), "r"(c));
  return d;
}

// a = d_0 + c_1 d_1 + ... + c_{S-1} d_{S-1}, every stage's A fragments folded into one.
__device__ __forceinline__ void decode_folded(const uint2 (&words)[STAGES], u32 e8p_table, u32 e81b_table,
                                              const u32 (&stage_scale)[STAGES], u32 (&a)[4][4]) {
  decode_stage<0, true>(words[0], e8p_table, e81b_table, a);
  static_for<STAGES - 1>([&](auto previous) {
    constexpr int s = previous.value + 1;
    u32 d[4][4];
    decode_stage<s, true>(words[s], e8p_table, e81b_table, d);
#pragma unroll
    for (int r = 0; r < 4; ++r) {
#pragma unroll
      for (int i = 0; i < 4; ++i) a[r][i] = fma_f16x2(d[r][i], stage_scale[s], a[r][i]);
    }
  });
}

}  // namespace glq
