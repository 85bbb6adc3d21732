#include "codegen/launch.hpp"

#include <algorithm>

namespace glqjit {

namespace {

size_t aligned(size_t bytes) { return (bytes + 255) / 256 * 256; }
size_t aligned_to_16(size_t bytes) { return (bytes + 15) / 16 * 16; }

// A Hadamard block in shared memory: one fp32 per element plus a pad word per 16
// (templates/hadamard.cuh).
unsigned hadamard_scratch_bytes(int64_t block) { return unsigned((block + block / 16) * 4); }

unsigned chunk_shared_bytes(const TransformPlan& plan) {
  int64_t longest = 0;
  for (const TransformChunk& chunk : plan.chunks) longest = std::max(longest, chunk.length);
  return hadamard_scratch_bytes(longest);
}

unsigned k_warps_reduction_bytes(const Variant& variant) {
  return unsigned((variant.k_warps - 1) * variant.warps * variant.batch_tiles * 4 * 32 * 4);
}

int k_tiles_per_split(const LinearSpec& spec, const Variant& variant) {
  const int k_tiles = int(spec.geometry().n_pad / 64);
  return (k_tiles + variant.k_split - 1) / variant.k_split;
}

// The most input columns any CTA's K slice reaches through the Hadamard blocks it overlaps:
// from the first overlapping block's start to the last one's end.
int64_t widest_covering_blocks(const std::vector<int64_t>& blocks, int64_t slice_columns, int64_t n_pad) {
  int64_t widest = 0;
  for (int64_t first = 0; first < n_pad; first += slice_columns) {
    const int64_t end = std::min(n_pad, first + slice_columns);
    int64_t offset = 0, cover_first = -1, cover_end = 0;
    for (int64_t block : blocks) {
      if (offset < end && offset + block > first) {
        if (cover_first < 0) cover_first = offset;
        cover_end = offset + block;
      }
      offset += block;
    }
    widest = std::max(widest, cover_end - cover_first);
  }
  return widest;
}

}  // namespace

TransformPlan make_transform_plan(const std::vector<int64_t>& blocks) {
  TransformPlan plan;
  int64_t offset = 0;
  for (int64_t block : blocks) {
    if (block <= kTransformChunk) {
      plan.chunks.push_back({offset, block, true});
    } else {
      for (int64_t c = 0; c < block; c += kTransformChunk) plan.chunks.push_back({offset + c, kTransformChunk, false});
      plan.strided_blocks.push_back({offset, block});
    }
    offset += block;
  }
  return plan;
}

unsigned codebook_bytes(const Recipe& recipe, const Variant& variant) {
  return unsigned(int(uses(recipe, StageKind::e8p)) + int(uses(recipe, StageKind::e81b))) * 256 * unsigned(variant.table_copies) * 16;
}

unsigned matmul_shared_bytes(const Recipe& recipe, const Variant& variant) {
  const unsigned tables = codebook_bytes(recipe, variant);
  if (variant.family == 3) {
    const unsigned activations = unsigned(8 * variant.batch_tiles * 64 * 2);
    return tables + unsigned(staged_tile_buffers(variant)) * (activations + unsigned(variant.warps) * warp_word_bytes(recipe));
  }
  return tables + k_warps_reduction_bytes(variant);
}

FusedLayout fused_layout(const LinearSpec& spec, const Variant& variant, int batch_bucket) {
  const Geometry geometry = spec.geometry();
  FusedLayout layout;
  layout.rows = std::min(batch_bucket, 8 * variant.batch_tiles);
  layout.u_columns = 64 * k_tiles_per_split(spec, variant);
  layout.u_row_bytes = unsigned(layout.u_columns) * 2 + 16;
  layout.u_offset = codebook_bytes(spec.recipe(), variant);
  layout.sv_columns = int(widest_covering_blocks(geometry.in_blocks, layout.u_columns, geometry.n_pad));
  layout.sv_offset = layout.u_offset + unsigned(layout.rows) * layout.u_row_bytes;
  layout.scratch_offset = layout.sv_offset + unsigned(aligned_to_16(size_t(layout.sv_columns) * 2));
  const int64_t largest_block = std::max(*std::max_element(geometry.in_blocks.begin(), geometry.in_blocks.end()),
                                         *std::max_element(geometry.out_blocks.begin(), geometry.out_blocks.end()));
  layout.transform_rows = 1;
  while (layout.transform_rows * 2 <= layout.rows &&
         unsigned(layout.transform_rows * 2) * hadamard_scratch_bytes(largest_block) <= kFusedTransformScratchBytes) {
    layout.transform_rows *= 2;
  }
  layout.flags_offset =
      layout.scratch_offset + std::max(unsigned(layout.transform_rows) * hadamard_scratch_bytes(largest_block),
                                       k_warps_reduction_bytes(variant));
  layout.bytes = layout.flags_offset + 16;
  return layout;
}

int staged_tile_buffers(const Variant& variant) { return variant.prefetch + (variant.wgmma ? 2 : 1); }

unsigned warp_word_bytes(const Recipe& recipe) {
  unsigned bytes = 0;
  for (StageKind kind : recipe.stages) bytes += kind == StageKind::e8p ? 32 * 8 : 32 * 4;
  return bytes;
}

LaunchPlan make_launch_plan(const LinearSpec& spec, const Variant& variant, int batch_bucket) {
  const Geometry geometry = spec.geometry();
  const TransformPlan in = make_transform_plan(geometry.in_blocks);
  const TransformPlan out = make_transform_plan(geometry.out_blocks);
  const unsigned threads = unsigned(variant.transform_threads);
  LaunchPlan plan;
  plan.n_pad = geometry.n_pad;
  plan.m_pad = geometry.m_pad;
  plan.in_chunk_count = int(in.chunks.size());
  plan.out_chunk_count = int(out.chunks.size());
  plan.in_strided_columns = int(in.strided_blocks.size() * kTransformChunk);
  plan.out_strided_columns = int(out.strided_blocks.size() * kTransformChunk);
  plan.m_tiles = int(geometry.m_pad / 16);
  plan.k_tiles = int(geometry.n_pad / 64);
  plan.row_tiles_per_cta = variant.warps;
  plan.k_split = variant.k_split;
  plan.batch_columns_per_cta = 8 * variant.batch_tiles;
  plan.repack_e81b = {kRepackE81bKernel, 256, 0};
  const unsigned matmul_threads = unsigned(32 * variant.warps * variant.k_warps);
  if (variant.family == 1) {
    plan.fused = true;
    plan.matmul = {kFusedKernel, matmul_threads, fused_layout(spec, variant, batch_bucket).bytes};
    return plan;
  }
  plan.input_chunks = {kInputChunksKernel, threads, chunk_shared_bytes(in)};
  if (!in.strided_blocks.empty()) plan.input_strided = {kInputStridedKernel, threads, 0};
  plan.matmul = {kMatmulKernel, matmul_threads, matmul_shared_bytes(spec.recipe(), variant)};
  plan.output_chunks = {kOutputChunksKernel, threads, chunk_shared_bytes(out)};
  if (!out.strided_blocks.empty()) plan.output_strided = {kOutputStridedKernel, threads, 0};
  return plan;
}

size_t LaunchPlan::activation_bytes(int batch) const { return fused ? 0 : aligned(size_t(batch) * size_t(n_pad) * 2); }
size_t LaunchPlan::input_staged_bytes(int batch) const {
  return input_strided.name.empty() ? 0 : aligned(size_t(batch) * size_t(n_pad) * 4);
}
size_t LaunchPlan::partial_bytes(int batch) const { return aligned(size_t(k_split) * size_t(batch) * size_t(m_pad) * 4); }
size_t LaunchPlan::output_staged_bytes(int batch) const {
  return output_strided.name.empty() ? 0 : aligned(size_t(batch) * size_t(m_pad) * 4);
}
size_t LaunchPlan::workspace_bytes(int batch) const {
  return arrival_bytes() + activation_bytes(batch) + input_staged_bytes(batch) + partial_bytes(batch) +
         output_staged_bytes(batch);
}

}  // namespace glqjit
