// Plan-time repacking of an E81B stage of `row_tiles` 16-row tiles (one linear's: M_PAD / 16, or
// a group's linear's own) (FORMAT.md 6: int64 [rows][N_PAD / 64], byte i of word
// [row][w] = code of columns 64w + 8i ..) into one 32-bit word per lane and tile, holding the
// four codes decode.cuh gives that lane: byte i = code of row 2g + (i & 1), columns
// 16t + 8 (i >> 1) .. + 7 of the tile, i.e. byte 2t + (i >> 1) of that row's word.
extern "C" __global__ void glq_repack_e81b(const u64* __restrict__ packed, u32* __restrict__ tiled, int row_tiles) {
  const size_t index = size_t(blockIdx.x) * blockDim.x + threadIdx.x;
  if (index >= size_t(row_tiles) * K_TILES * 32) return;
  const int lane = int(index & 31);
  const size_t tile = index >> 5;
  const int k_tile = int(tile % K_TILES);
  const int row_tile = int(tile / K_TILES);
  const int g = lane >> 2, t = lane & 3;
  u32 word = 0;
#pragma unroll
  for (int i = 0; i < 4; ++i) {
    const size_t row = size_t(row_tile) * 16 + 2 * g + (i & 1);
    const int byte = 2 * t + (i >> 1);
    word |= u32((packed[row * K_TILES + k_tile] >> (8 * byte)) & 0xffu) << (8 * i);
  }
  tiled[index] = word;
}
