#include "codegen/launch.hpp"

#include <algorithm>

namespace glqjit {

namespace {

// One fp32 per element plus a pad word per 16 (templates/hadamard.cuh).
unsigned transform_shared_bytes(const std::vector<int64_t>& blocks) {
  const int64_t largest = *std::max_element(blocks.begin(), blocks.end());
  return unsigned((largest + largest / 16) * 4);
}

}  // namespace

LaunchPlan make_launch_plan(const LinearSpec& spec, const Variant& variant) {
  const Geometry geometry = spec.geometry();
  LaunchPlan plan;
  plan.n_pad = geometry.n_pad;
  plan.m_pad = geometry.m_pad;
  plan.in_block_count = int(geometry.in_blocks.size());
  plan.out_block_count = int(geometry.out_blocks.size());
  plan.m_tiles = int(geometry.m_pad / 16);
  plan.k_tiles = int(geometry.n_pad / 64);
  plan.k_split = variant.k_split;
  plan.batch_columns_per_cta = 8 * variant.batch_tiles;
  plan.input_transform = {kInputTransformKernel, unsigned(variant.transform_threads),
                          transform_shared_bytes(geometry.in_blocks)};
  plan.matmul = {kMatmulKernel, unsigned(32 * variant.warps), 0};
  plan.output_transform = {kOutputTransformKernel, unsigned(variant.transform_threads),
                           transform_shared_bytes(geometry.out_blocks)};
  plan.repack_e81b = {kRepackE81bKernel, 256, 0};
  return plan;
}

}  // namespace glqjit
