#include "codegen/variant_space.hpp"

#include <algorithm>
#include <fmt/format.h>

#include "codegen/launch.hpp"
#include "glqjit/error.hpp"

namespace glqjit {
namespace {

constexpr int kMaxRingAndAccumulatorRegisters = 160;  // leaves room for decode and addressing under 255
constexpr size_t kMaxPartialBytes = size_t(512) << 20;

bool power_of_two_in(int value, int low, int high) {
  return value >= low && value <= high && (value & (value - 1)) == 0;
}

int register_estimate(int stages, const Variant& v) {
  return v.prefetch * (2 * stages + 8 * v.batch_tiles) + 4 * stages * v.batch_tiles;
}

}  // namespace

std::optional<std::string> variant_violation(const LinearSpec& spec, int batch_bucket, const Arch& arch,
                                             const Variant& v) {
  const int stages = int(spec.recipe().stages.size());
  const LaunchPlan plan = make_launch_plan(spec, v);
  if (!power_of_two_in(v.warps, 1, 16)) return fmt::format("warps={} must be a power of two from 1 to 16", v.warps);
  if (v.k_split < 1 || v.k_split > plan.k_tiles) {
    return fmt::format("k_split={} must be between 1 and the {} k-tiles of 64 columns", v.k_split, plan.k_tiles);
  }
  if (!power_of_two_in(v.batch_tiles, 1, 8)) {
    return fmt::format("batch_tiles={} must be 1, 2, 4 or 8", v.batch_tiles);
  }
  if (v.batch_tiles > 1 && 8 * v.batch_tiles > batch_bucket) {
    return fmt::format("batch_tiles={} covers {} columns, more than batch bucket {}", v.batch_tiles,
                       8 * v.batch_tiles, batch_bucket);
  }
  if (v.prefetch < 1 || v.prefetch > 8) return fmt::format("prefetch={} must be from 1 to 8", v.prefetch);
  if (register_estimate(stages, v) > kMaxRingAndAccumulatorRegisters) {
    return fmt::format("prefetch={} with batch_tiles={} and {} stages needs about {} registers for loads in flight "
                       "and accumulators; the limit is {}",
                       v.prefetch, v.batch_tiles, stages, register_estimate(stages, v),
                       kMaxRingAndAccumulatorRegisters);
  }
  if (!power_of_two_in(v.transform_threads, 64, 1024)) {
    return fmt::format("transform_threads={} must be a power of two from 64 to 1024", v.transform_threads);
  }
  const unsigned shared = std::max(plan.input_transform.dynamic_shared_bytes, plan.output_transform.dynamic_shared_bytes);
  if (shared > unsigned(arch.max_shared_bytes_per_block())) {
    return fmt::format("the largest Hadamard block needs {} bytes of shared memory; {} allows {}", shared,
                       arch.name(), arch.max_shared_bytes_per_block());
  }
  if (plan.matmul_grid(batch_bucket).y > 65535) {
    return fmt::format("warps={} gives {} row groups, more than the grid's 65535", v.warps,
                       plan.matmul_grid(batch_bucket).y);
  }
  if (plan.partial_bytes(batch_bucket) > kMaxPartialBytes) {
    return fmt::format("k_split={} at batch {} needs {} MiB of partial sums; the limit is {} MiB", v.k_split,
                       batch_bucket, plan.partial_bytes(batch_bucket) >> 20, kMaxPartialBytes >> 20);
  }
  return std::nullopt;
}

void check_variant(const LinearSpec& spec, int batch_bucket, const Arch& arch, const Variant& variant) {
  if (auto violation = variant_violation(spec, batch_bucket, arch, variant)) {
    throw Error(Status::invalid_argument,
                fmt::format("variant \"{}\" is not legal for {} at batch bucket {} on {}: {}", variant.canonical(),
                            spec.canonical(), batch_bucket, arch.name(), *violation));
  }
}

Variant default_variant(const LinearSpec& spec, int batch_bucket, const Arch& arch, int sm_count) {
  const int stages = int(spec.recipe().stages.size());
  Variant v;
  v.batch_tiles = std::clamp(batch_bucket / 8, 1, std::max(1, 16 / stages));
  v.batch_tiles = std::min(v.batch_tiles, 8);
  while (v.batch_tiles > 1 && (v.batch_tiles & (v.batch_tiles - 1))) --v.batch_tiles;
  const LaunchPlan plan = make_launch_plan(spec, v);
  // Enough warps to keep every SM's loads busy (about 32 resident per SM), but at least four
  // k-tiles per warp so that the prefetch ring has something to overlap.
  const int64_t batch_chunks = (batch_bucket + 8 * v.batch_tiles - 1) / (8 * v.batch_tiles);
  const int64_t wanted_warps = int64_t(sm_count) * 32;
  const int64_t warps_without_split = int64_t(plan.m_tiles) * batch_chunks;
  const int64_t split = (wanted_warps + warps_without_split - 1) / warps_without_split;
  v.k_split = int(std::clamp<int64_t>(split, 1, std::max(1, plan.k_tiles / 4)));
  while (v.k_split > 1 && make_launch_plan(spec, v).partial_bytes(batch_bucket) > kMaxPartialBytes) v.k_split /= 2;
  const int tiles_per_warp = (plan.k_tiles + v.k_split - 1) / v.k_split;
  v.prefetch = std::min(4, tiles_per_warp);
  while (v.prefetch > 1 && register_estimate(stages, v) > kMaxRingAndAccumulatorRegisters) --v.prefetch;
  if (auto violation = variant_violation(spec, batch_bucket, arch, v)) {
    throw Error(Status::unsupported_shape,
                fmt::format("{} cannot run on {}: {}", spec.canonical(), arch.name(), *violation));
  }
  return v;
}

std::vector<Variant> legal_variants(const LinearSpec& spec, int batch_bucket, const Arch& arch, int sm_count) {
  const Variant base = default_variant(spec, batch_bucket, arch, sm_count);
  std::vector<Variant> variants;
  for (int warps : {2, 4, 8}) {
    for (int k_split : {base.k_split / 4, base.k_split / 2, base.k_split, base.k_split * 2, base.k_split * 4}) {
      for (int batch_tiles : {1, 2, 4, 8}) {
        for (int prefetch : {1, 2, 4, 8}) {
          Variant v = base;
          v.warps = warps;
          v.k_split = k_split;
          v.batch_tiles = batch_tiles;
          v.prefetch = prefetch;
          if (!variant_violation(spec, batch_bucket, arch, v) &&
              std::find(variants.begin(), variants.end(), v) == variants.end()) {
            variants.push_back(v);
          }
        }
      }
    }
  }
  return variants;
}

}  // namespace glqjit
