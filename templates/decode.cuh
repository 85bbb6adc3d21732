// Decoding packed codes straight into mma.m16n8k16 A fragments.
//
// Lane (g = lane / 4, t = lane % 4) of a warp owns the word of tile position (r = g, c = t):
// four codes covering rows 2g, 2g+1 and columns 16t .. 16t+15 of the 16x64 tile. The mma's
// logical row g is physical row 2g and logical row g + 8 is physical row 2g + 1; in k-step j
// (0..3) the lane's logical columns {2t, 2t+1, 2t+8, 2t+9} are physical columns
// 16t + 4j + {0, 1, 2, 3}. So every lane multiplies exactly the weights its own word holds,
// by 16 consecutive activations, with no data exchanged between lanes.

namespace glq {

// Where column c of u (the transformed input) is stored in its row of the workspace. Kernel
// family 3 copies u into shared memory as the wgmma's B operand, which the tensor cores read in
// plain k order; so there u is stored in the k order of the A fragments above: within each
// 64-column tile, physical column 16t + 4j + 2h + e sits at 16j + 8h + 2t + e (k-step j,
// logical column 2t + 8h + e).
__device__ __forceinline__ int u_position(int column) {
  if constexpr (!U_IN_FRAGMENT_ORDER) return column;
  const int p = column & 63;
  const int t = p >> 4, j = (p >> 2) & 3, h = (p >> 1) & 1, e = p & 1;
  return (column & ~63) | (16 * j + 8 * h + 2 * t + e);
}

// Each codebook sits in shared memory as 256 rows x TABLE_COPIES copies of 16 bytes; a lane
// reads copy lane % TABLE_COPIES. The 8 lanes of each quarter-warp phase of an LDS.128 then
// reach different bank groups whatever rows they ask for (with 8 copies), so the lookups never
// conflict. `table` below is the shared-space address of row 0 of the lane's copy.
constexpr int TABLE_ROW_SHIFT = TABLE_COPIES_LOG2 + 4;

__device__ __forceinline__ uint4 load_shared_u32x4(u32 address) {
  uint4 v;
  asm volatile("ld.shared.v4.u32 {%0, %1, %2, %3}, [%4];" : "=r"(v.x), "=r"(v.y), "=r"(v.z), "=r"(v.w) : "r"(address));
  return v;
}

// The table row of byte I of `codes`: the byte moved down by one permute, then scaled into
// the address by one shift-and-add.
template <int I>
__device__ __forceinline__ uint4 table_row(u32 codes, u32 table) {
  const u32 row = byte_permute(codes, 0, 0x4440 + I);  // byte I, zero-extended
  return load_shared_u32x4(table + (row << TABLE_ROW_SHIFT));
}

// Code i covers row 2g + (i & 1) and columns 16t + 8 (i >> 1) .. + 7; its value pair j
// (elements 2j, 2j+1) feeds k-step 2 (i >> 1) + (j >> 1) in register (i & 1) + 2 (j & 1).
template <int I>
__device__ __forceinline__ void place_pairs(const u32 (&pair)[4], u32 (&a)[4][4]) {
#pragma unroll
  for (int j = 0; j < 4; ++j) a[2 * (I >> 1) + (j >> 1)][(I & 1) + 2 * (j & 1)] = pair[j];
}

// Bit i (0..3) of the result is the parity of code i's sign byte, whose bits sit at bits
// i, i + 4, ..., i + 28 of the packed high word.
__device__ __forceinline__ u32 sign_parities(u32 signs) {
  u32 parities = signs ^ (signs >> 16);
  parities ^= parities >> 8;
  parities ^= parities >> 4;
  return parities & 0xfu;
}

// E8P (FORMAT.md 2.2): table row = ABS[a] / 2 as four fp16 pairs. The packed high word holds
// bit j of code i at bit 4j + i, so one shift puts the sign bits of value pair j (bits j and
// j + 4 of the sign byte) at bits 15 and 31, the fp16 sign positions. An odd sign byte toggles
// its bit 0, which for code i sits at bit i.
// WITH_OFFSETS adds each code's coset offset (+1/4 even, -1/4 odd) to its eight values; without,
// the caller adds them by offset_fragment's mma, and one XOR of the parities toggles the bits 0
// of the whole word. With offsets (family 3, two CTAs per SM in 128 registers) the toggle stays
// per code: the word-wide form kept one more word live and ptxas spilled. Returns the parities.
template <bool WITH_OFFSETS>
__device__ __forceinline__ u32 decode_e8p_word(uint2 word, u32 table, u32 (&a)[4][4]) {
  const u32 parities = sign_parities(word.y);
  const u32 signs = WITH_OFFSETS ? word.y : word.y ^ parities;
  static_for<4>([&](auto i) {
    constexpr int I = i.value;
    const uint4 row = table_row<I>(word.x, table);
    const u32 abs_pairs[4] = {row.x, row.y, row.z, row.w};
    const u32 odd = u32(int(parities << (31 - I)) >> 31);
    const u32 offset = 0x34003400u ^ (odd & 0x80008000u);  // +0.25 or -0.25 in both halves
    u32 pair[4];
#pragma unroll
    for (int j = 0; j < 4; ++j) {
      u32 sign_bits = (signs << (15 - 4 * j - I)) & 0x80008000u;
      if (WITH_OFFSETS && j == 0) sign_bits ^= odd & 0x8000u;
      pair[j] = abs_pairs[j] ^ sign_bits;
      if constexpr (WITH_OFFSETS) pair[j] = add_f16x2(pair[j], offset);
    }
    place_pairs<I>(pair, a);
  });
  return parities;
}

// The coset offsets of a word's four codes as the A fragment of an m16n8k8 mma whose k runs over
// the 8 groups of 8 columns of the tile: register 0 holds codes 0 and 2 (row 2g, groups 2t and
// 2t + 1), register 1 codes 1 and 3 (row 2g + 1). Multiplying the four parity bits by two powers
// of two puts bits 0 and 2 (1 and 3) at the fp16 sign positions 15 and 31; the two shifted copies
// never overlap, so nothing carries.
__device__ __forceinline__ void offset_fragment(u32 parities, u32 (&a)[2]) {
  a[0] = ((parities * ((1u << 15) + (1u << 29))) & 0x80008000u) ^ 0x34003400u;
  a[1] = ((parities * ((1u << 14) + (1u << 28))) & 0x80008000u) ^ 0x34003400u;
}

// E81B (FORMAT.md 3): byte i of the repacked word is the code that plays the role of code i above.
__device__ __forceinline__ void decode_e81b_word(u32 word, u32 table, u32 (&a)[4][4]) {
  static_for<4>([&](auto i) {
    const uint4 row = table_row<i.value>(word, table);
    const u32 pair[4] = {row.x, row.y, row.z, row.w};
    place_pairs<i.value>(pair, a);
  });
}

}  // namespace glq
