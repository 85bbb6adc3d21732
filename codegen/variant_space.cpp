#include "codegen/variant_space.hpp"

#include <algorithm>
#include <fmt/format.h>

#include "codegen/launch.hpp"
#include "glqjit/error.hpp"

namespace glqjit {
namespace {

constexpr int kMaxRingAndAccumulatorRegisters = 160;
// Family 3's estimate is its whole thread: accumulators, two sets of A fragments, decode
// temporaries and copy addresses (its words wait in shared memory). ptxas (NVRTC 13.0, sm_90a,
// batch_tiles 16, bpw 2-8) gives 136-142 registers with wgmma and 224-226 with mma.sync, which
// holds B fragments ahead because it can; within an SM's register file either way.
constexpr int kStagedFragmentRegisters = 110;
constexpr int kDecodeAndAddressRegisters = 40;  // what ptxas adds to the estimate below, roughly
constexpr int kRegisterFile = 65536;
constexpr size_t kMaxPartialBytes = size_t(512) << 20;
constexpr int kMinTilesPerWarp = 4;  // below this the prefetch ring has nothing to overlap

bool power_of_two_in(int value, int low, int high) {
  return value >= low && value <= high && (value & (value - 1)) == 0;
}

int floor_power_of_two(int64_t value) {
  int p = 1;
  while (int64_t(p) * 2 <= value) p *= 2;
  return p;
}

// Registers of family 2's operand ring (PREFETCH + 1 tiles of words and activations) and
// per-stage accumulators, to which it adds about kDecodeAndAddressRegisters; family 3's whole
// thread.
int register_estimate(int stages, const Variant& v) {
  if (v.family == 3) return 4 * v.batch_tiles + kStagedFragmentRegisters;
  return (v.prefetch + 1) * (2 * stages + 8 * v.batch_tiles) + 4 * stages * v.batch_tiles;
}

int thread_registers(int stages, const Variant& v) {
  return register_estimate(stages, v) + (v.family == 3 ? 0 : kDecodeAndAddressRegisters);
}

// Kernel family 3's own rules (templates/matmul_staged.cuh).
std::optional<std::string> staged_violation(int batch_bucket, const Arch& arch, const Variant& v) {
  if (v.wgmma != 0 && v.wgmma != 1) return fmt::format("wgmma={} must be 0 or 1", v.wgmma);
  if (v.wgmma && !arch.has_wgmma()) {
    return fmt::format("wgmma=1 needs warpgroup MMAs, which only sm_90a has ({} has none; use wgmma=0)", arch.name());
  }
  if (v.warps != 4 && v.warps != 8) {
    return fmt::format("with family=3, warps={} must be 4 or 8 (one or two warpgroups)", v.warps);
  }
  if (v.k_warps != 1) return fmt::format("with family=3, k_warps={} must be 1", v.k_warps);
  // 256 columns would need 128 accumulators a thread, which ptxas can only have by spilling.
  if (v.batch_tiles != 8 && v.batch_tiles != 16) {
    return fmt::format("with family=3, batch_tiles={} must be 8 or 16 (64 or 128 batch columns per CTA)",
                       v.batch_tiles);
  }
  if (8 * v.batch_tiles > batch_bucket) {
    return fmt::format("batch_tiles={} covers {} columns, more than batch bucket {}", v.batch_tiles, 8 * v.batch_tiles,
                       batch_bucket);
  }
  return std::nullopt;
}

// Kernel family 2's own rules (templates/matmul.cuh).
std::optional<std::string> direct_violation(int batch_bucket, const Variant& v) {
  if (v.wgmma != 0) return fmt::format("wgmma={} needs family=3 (family 2 multiplies with mma.sync)", v.wgmma);
  if (!power_of_two_in(v.batch_tiles, 1, 8)) return fmt::format("batch_tiles={} must be 1, 2, 4 or 8", v.batch_tiles);
  if (v.batch_tiles > 1 && 8 * v.batch_tiles > batch_bucket) {
    return fmt::format("batch_tiles={} covers {} columns, more than batch bucket {}", v.batch_tiles, 8 * v.batch_tiles,
                       batch_bucket);
  }
  return std::nullopt;
}

// Kernel family 1's own rules (templates/matmul_fused.cuh): family 2's, and a batch small
// enough that every CTA transforming its batch columns' input is cheap.
constexpr int kFusedMaxBucket = 32;
std::optional<std::string> fused_violation(int batch_bucket, const Variant& v) {
  if (batch_bucket > kFusedMaxBucket) {
    return fmt::format("family=1 serves batch buckets up to {}, not {} (each CTA transforms its own input)",
                       kFusedMaxBucket, batch_bucket);
  }
  return direct_violation(batch_bucket, v);
}

// A group of linears (LinearSpec::shard_out_features) runs as one glq_fused: each CTA works for
// one linear, so each linear's rows must start at a CTA's first row.
std::optional<std::string> group_violation(const LinearSpec& spec, const Geometry& geometry, const Variant& v) {
  if (v.family != 1) {
    return fmt::format("a group of linears runs as one kernel only with family=1 (the whole forward in one kernel), "
                       "not family={}",
                       v.family);
  }
  const int64_t cta_rows = 16 * int64_t(v.warps);
  for (int s = 1; s < spec.shard_count(); ++s) {
    const int64_t first_row = spec.shard_first_row(s);
    if (first_row % cta_rows != 0) {
      return fmt::format("linear {} of the group starts at row {}, not a multiple of the {} rows of a CTA with "
                         "warps={}; use fewer warps",
                         s, first_row, cta_rows, v.warps);
    }
  }
  if (geometry.out_blocks.size() > 32) {
    return fmt::format("the group's linears have {} output Hadamard blocks together, more than the 32 one kernel counts",
                       geometry.out_blocks.size());
  }
  return std::nullopt;
}

// Kernel family 1 by default at batch bucket 1 for layers whose Hadamard blocks are at most
// these sizes, family 3 from kStagedFromBucket on, family 2 elsewhere. On the H200 (kernel-notes
// v9, 2 / 4 bpw) family 1 takes 7.3 / 8.4 us at 1024x4096 (out x in) against family 2's 10.5 /
// 11.9, and 11.7 / 11.8 at 4096x4096 against 12.6 / 17.8; with an input block of 8192
// (4096x14336) the two tie, and with an output block of 8192 (14336x4096) family 1 takes 25.0
// against 21.1: its last CTA transforms a whole output block alone.
constexpr int64_t kFusedLargestOutputBlock = 4096;
constexpr int64_t kFusedLargestInputBlock = 4096;
constexpr int kStagedFromBucket = 64;

bool fused_by_default(const LinearSpec& spec, int batch_bucket) {
  const Geometry geometry = spec.geometry();
  return batch_bucket <= kFusedUpToBucket &&
         *std::max_element(geometry.out_blocks.begin(), geometry.out_blocks.end()) <= kFusedLargestOutputBlock &&
         *std::max_element(geometry.in_blocks.begin(), geometry.in_blocks.end()) <= kFusedLargestInputBlock;
}

// Family 3's default: wgmma where the architecture has it, two warpgroups (128 rows) per CTA,
// up to 128 batch columns, k-tiles staged two ahead (one where shared memory is short), and
// the K split that gives about two CTAs per SM. With wgmma, two CTAs per SM where their shared
// memory fits (with fewer codebook copies if need be): ptxas then fits the thread in 128
// registers without spills, and the extra warps hide decode latency (kernel-notes v6). The
// mma.sync multiply spills at 128.
Variant default_staged_variant(const LinearSpec& spec, int batch_bucket, const Arch& arch, int sm_count) {
  const Recipe recipe = spec.recipe();
  Variant v;
  v.family = 3;
  v.wgmma = arch.has_wgmma() ? 1 : 0;
  v.warps = 8;
  v.batch_tiles = std::clamp(batch_bucket / 8, 8, 16);
  v.prefetch = 2;
  v.table_copies = uses(recipe, StageKind::e81b) ? 4 : 8;
  auto fits = [&](int ctas) { return arch.ctas_fitting_shared_memory(matmul_shared_bytes(recipe, v)) >= ctas; };
  if (!fits(1)) v.prefetch = 1;
  v.ctas_per_sm = 1;
  if (v.wgmma) {
    if (!fits(2) && v.table_copies > 4) v.table_copies = 4;
    if (fits(2)) v.ctas_per_sm = 2;
  }
  const LaunchPlan plan = make_launch_plan(spec, v, batch_bucket);
  const Dim3 grid = plan.matmul_grid(batch_bucket);
  const int64_t ctas = int64_t(grid.x) * grid.y;
  v.k_split = std::clamp(floor_power_of_two((2 * int64_t(sm_count) + ctas - 1) / ctas), 1,
                         std::max(1, floor_power_of_two(plan.k_tiles / 8)));
  while (v.k_split > 1 && make_launch_plan(spec, v, batch_bucket).partial_bytes(batch_bucket) > kMaxPartialBytes) v.k_split /= 2;
  return v;
}

}  // namespace

std::optional<std::string> variant_violation(const LinearSpec& spec, int batch_bucket, const Arch& arch,
                                             const Variant& v) {
  const Geometry geometry = spec.geometry();
  const Recipe recipe = spec.recipe();
  const int stages = int(recipe.stages.size());
  if (!power_of_two_in(v.warps, 1, 32)) return fmt::format("warps={} must be a power of two from 1 to 32", v.warps);
  if (!power_of_two_in(v.k_warps, 1, 32)) return fmt::format("k_warps={} must be a power of two from 1 to 32", v.k_warps);
  if (v.warps * v.k_warps > 32) {
    return fmt::format("warps={} x k_warps={} is more than the 32 warps (1024 threads) of a CTA", v.warps, v.k_warps);
  }
  const int k_tiles = int(geometry.n_pad / 64);
  if (v.k_split < 1 || v.k_split > k_tiles) {
    return fmt::format("k_split={} must be between 1 and the {} k-tiles of 64 columns", v.k_split, k_tiles);
  }
  const LaunchPlan plan = make_launch_plan(spec, v, batch_bucket);
  if (v.family < 1 || v.family > 3) {
    return fmt::format("family={} must be 1 (the whole forward in one kernel), 2 (mma.sync from the compressed weights) "
                       "or 3 (activations in shared memory)",
                       v.family);
  }
  if (spec.is_group()) {
    if (auto violation = group_violation(spec, geometry, v)) return violation;
  }
  const auto family_violation = v.family == 3   ? staged_violation(batch_bucket, arch, v)
                                : v.family == 1 ? fused_violation(batch_bucket, v)
                                                : direct_violation(batch_bucket, v);
  if (family_violation) return family_violation;
  if (v.ctas_per_sm < 0 || v.ctas_per_sm > 2) {
    return fmt::format("ctas_per_sm={} must be 0 (ptxas's choice), 1 or 2", v.ctas_per_sm);
  }
  if (v.prefetch < 1 || v.prefetch > 8) return fmt::format("prefetch={} must be from 1 to 8", v.prefetch);
  if (v.family != 3 && register_estimate(stages, v) > kMaxRingAndAccumulatorRegisters) {
    return fmt::format("prefetch={} with batch_tiles={} and {} stages needs about {} registers for loads in flight "
                       "and accumulators; the limit is {}",
                       v.prefetch, v.batch_tiles, stages, register_estimate(stages, v),
                       kMaxRingAndAccumulatorRegisters);
  }
  const int cta_registers = 32 * v.warps * v.k_warps * thread_registers(stages, v);
  if (cta_registers > kRegisterFile) {
    return fmt::format("a CTA of warps={} x k_warps={} needs about {} registers, more than an SM's {}; use fewer warps",
                       v.warps, v.k_warps, cta_registers, kRegisterFile);
  }
  if (!power_of_two_in(v.table_copies, 1, 8)) {
    return fmt::format("table_copies={} must be 1, 2, 4 or 8", v.table_copies);
  }
  if (!power_of_two_in(v.transform_threads, 32, 1024)) {
    return fmt::format("transform_threads={} must be a power of two from 32 to 1024", v.transform_threads);
  }
  const int64_t largest_block = std::max(*std::max_element(geometry.in_blocks.begin(), geometry.in_blocks.end()),
                                         *std::max_element(geometry.out_blocks.begin(), geometry.out_blocks.end()));
  if (largest_block > kTransformChunk * kMaxStridedRadix) {
    return fmt::format("a Hadamard block of {} is larger than the {} the transform kernels handle", largest_block,
                       kTransformChunk * kMaxStridedRadix);
  }
  const unsigned shared = std::max({plan.matmul.dynamic_shared_bytes, plan.input_chunks.dynamic_shared_bytes,
                                    plan.output_chunks.dynamic_shared_bytes});
  if (shared > unsigned(arch.max_shared_bytes_per_block())) {
    return fmt::format("it needs {} bytes of shared memory per CTA (codebooks: table_copies={}{}); {} allows {}", shared,
                       v.table_copies, v.family == 1 ? ", the slice of u and a whole Hadamard block" : "", arch.name(),
                       arch.max_shared_bytes_per_block());
  }
  if (arch.ctas_fitting_shared_memory(plan.matmul.dynamic_shared_bytes) < v.ctas_per_sm) {
    return fmt::format("ctas_per_sm={} needs {} CTAs of {} bytes of shared memory on one SM; a {} SM fits {} (use "
                       "prefetch=1 or fewer table_copies)",
                       v.ctas_per_sm, v.ctas_per_sm, plan.matmul.dynamic_shared_bytes, arch.name(),
                       arch.ctas_fitting_shared_memory(plan.matmul.dynamic_shared_bytes));
  }
  if (plan.matmul_grid(batch_bucket).y > 65535) {
    return fmt::format("warps={} gives {} row groups, more than the grid's 65535", v.warps,
                       plan.matmul_grid(batch_bucket).y);
  }
  // With k_split = 1 the partial sums are z itself, as large as the output; more splits multiply it.
  if (v.k_split > 1 && plan.partial_bytes(batch_bucket) > kMaxPartialBytes) {
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

namespace {

// Family 2's default, and the parts of it family 1 keeps.
Variant default_direct_variant(const LinearSpec& spec, int batch_bucket, const Arch& arch, int sm_count) {
  const Recipe recipe = spec.recipe();
  const int stages = int(recipe.stages.size());
  const bool has_e81b = uses(recipe, StageKind::e81b);
  Variant v;
  v.batch_tiles = std::min(floor_power_of_two(std::max(1, batch_bucket / 8)), floor_power_of_two(std::max(1, 16 / stages)));
  v.batch_tiles = std::min(v.batch_tiles, 8);
  v.prefetch = 1;
  while (v.batch_tiles > 1 && register_estimate(stages, v) > kMaxRingAndAccumulatorRegisters) v.batch_tiles /= 2;
  // Two codebooks share the shared memory that one would have alone.
  v.table_copies = has_e81b ? 4 : 8;
  const LaunchPlan plan = make_launch_plan(spec, v, batch_bucket);
  // Enough warps to keep every SM's loads busy (about 32 resident per SM): first more warps per
  // row tile inside a CTA (added in shared memory), then CTAs along K, each warp keeping at
  // least kMinTilesPerWarp k-tiles so that the prefetch ring has something to overlap.
  const int64_t batch_chunks = (batch_bucket + 8 * v.batch_tiles - 1) / (8 * v.batch_tiles);
  const int64_t wanted_warps = int64_t(sm_count) * 32;
  const int64_t per_row_tile = (wanted_warps + plan.m_tiles * batch_chunks - 1) / (plan.m_tiles * batch_chunks);
  v.k_warps = std::clamp(floor_power_of_two(per_row_tile), 1, std::max(1, std::min(8, floor_power_of_two(plan.k_tiles / kMinTilesPerWarp))));
  const int64_t split = (per_row_tile + v.k_warps - 1) / v.k_warps;
  v.k_split = int(std::clamp<int64_t>(split, 1, std::max(1, plan.k_tiles / (kMinTilesPerWarp * v.k_warps))));
  while (v.k_split > 1 && make_launch_plan(spec, v, batch_bucket).partial_bytes(batch_bucket) > kMaxPartialBytes) v.k_split /= 2;
  v.warps = std::max(1, 8 / v.k_warps);  // CTAs of 8 warps
  const int tiles_per_warp = (plan.k_tiles + v.k_split * v.k_warps - 1) / (v.k_split * v.k_warps);
  // Two tiles ahead keep about 16-24 KB in flight per SM at the occupancy this allows (ptxas
  // gives 63-79 registers at 2-4 bpw, batch 1); four cost 90-115 registers and a third of the
  // resident warps.
  v.prefetch = std::min(2, tiles_per_warp);
  while (v.prefetch > 1 && register_estimate(stages, v) > kMaxRingAndAccumulatorRegisters) --v.prefetch;
  // Left to itself, ptxas (NVRTC 13.0) holds glq_matmul to about 80 registers on sm_100a and
  // sm_120 and spills recipes of two stages and more there (bpw 3 to 8; two stages since the
  // coset offsets became an mma, kernel-notes v9); one CTA per SM lifts that (no spills).
  // Elsewhere its choice is kept: it gives bpw 2 62 registers, where asking for one CTA gives
  // more and fewer resident warps.
  if (arch.major >= 10 && stages >= 2) v.ctas_per_sm = 1;
  return v;
}

// How family 1 splits a CTA's cta_warps warps among row tiles (warps) and K (k_warps), and K
// among CTAs (k_split). Every CTA transforms the input blocks of its K slice before it
// multiplies, so a second wave of CTAs waits that latency again (kernel-notes v11: q+k+v at 2 bpw
// in 192 CTAs, one per SM, 17.1 us; in 96, 12.6-13.5 us). So: the most CTAs that still run in
// one wave of `slots`, or the fewest where none fits; each warp keeps kMinTilesPerWarp k-tiles;
// K split in powers of two; among equal counts, more warps per row tile (added in shared memory)
// before more CTAs along K (added in the workspace by the output side): q+k+v in 96 CTAs took
// 12.6 us with 4 warps per row tile, 13.0 with 2 and k_split 2, 13.5 with 1 and k_split 4. A
// group's linears each start at a CTA's first row.
void choose_fused_split(const LinearSpec& spec, const LaunchPlan& plan, int batch_bucket, int cta_warps, int64_t slots,
                        Variant& v) {
  const int64_t batch_chunks = (batch_bucket + 8 * v.batch_tiles - 1) / (8 * v.batch_tiles);
  std::optional<Variant> best;
  int64_t best_ctas = 0;
  for (int k_warps = cta_warps; k_warps >= 1; k_warps /= 2) {
    if (k_warps > 1 && plan.k_tiles < kMinTilesPerWarp * k_warps) continue;
    Variant candidate = v;
    candidate.k_warps = k_warps;
    candidate.warps = cta_warps / k_warps;
    if (spec.is_group() && group_violation(spec, spec.geometry(), candidate)) continue;
    const int64_t row_groups = (plan.m_tiles + candidate.warps - 1) / candidate.warps;
    const int max_split = std::max(1, plan.k_tiles / (kMinTilesPerWarp * k_warps));
    for (candidate.k_split = 1; candidate.k_split <= max_split; candidate.k_split *= 2) {
      const int64_t ctas = row_groups * batch_chunks * candidate.k_split;
      const bool fits = ctas <= slots, best_fits = best_ctas <= slots;
      const bool better = !best || (fits && (!best_fits || ctas > best_ctas)) || (!fits && !best_fits && ctas < best_ctas);
      if (better) {
        best = candidate;
        best_ctas = ctas;
      }
    }
  }
  if (best) {
    v = *best;
    return;
  }
  // No split keeps every linear of the group at a CTA's first row with whole tiles per warp:
  // rows first, then whatever K per warp that leaves.
  v.warps = cta_warps;
  v.k_warps = 1;
  v.k_split = 1;
  while (v.warps > 1 && group_violation(spec, spec.geometry(), v)) {
    v.warps /= 2;
    v.k_warps *= 2;
  }
}

// Family 1's default: family 2's batch tiles, codebooks and prefetch, in CTAs of kFusedCtaWarps
// warps (fewer where wide batch tiles would overflow the register file), two per SM where their
// shared memory fits and 64 registers a thread hold them without spills (one stage, fp16, no
// bias, one linear, sm_90: ptxas spills 8-12 bytes at 64 with a bias or bf16, on sm_80, and for a
// group, whose kernel holds a copy of the body per linear), so that as many warps stay resident
// as with family 2's smaller CTAs; split as choose_fused_split says.
constexpr int kFusedCtaWarps = 16;
Variant default_fused_variant(const LinearSpec& spec, int batch_bucket, const Arch& arch, int sm_count) {
  Variant v = default_direct_variant(spec, batch_bucket, arch, sm_count);
  v.family = 1;
  v.k_warps = 1;
  v.prefetch = 2;
  // Wide batch tiles need more registers a thread: smaller CTAs where the register file says so.
  int cta_warps = kFusedCtaWarps;
  while (cta_warps > 1 && 32 * cta_warps * thread_registers(int(spec.recipe().stages.size()), v) > kRegisterFile) {
    cta_warps /= 2;
  }
  v.warps = cta_warps;
  const bool fits_two = arch.ctas_fitting_shared_memory(fused_layout(spec, v, batch_bucket).bytes) >= 2;
  const bool fits_64_registers =
      arch.major == 9 && spec.recipe().stages.size() == 1 && spec.dtype == DType::f16 && !spec.has_bias &&
      !spec.is_group();
  v.ctas_per_sm = fits_two && fits_64_registers ? 2 : std::max(v.ctas_per_sm, 1);
  choose_fused_split(spec, make_launch_plan(spec, v, batch_bucket), batch_bucket, cta_warps,
                     int64_t(sm_count) * v.ctas_per_sm, v);
  const LaunchPlan plan = make_launch_plan(spec, v, batch_bucket);
  const int tiles_per_warp = (plan.k_tiles + v.k_split * v.k_warps - 1) / (v.k_split * v.k_warps);
  v.prefetch = std::min(2, tiles_per_warp);
  return v;
}

}  // namespace

Variant default_variant(const LinearSpec& spec, int batch_bucket, const Arch& arch, int sm_count,
                        MatmulFamily family) {
  if (family == MatmulFamily::staged) return default_staged_variant(spec, batch_bucket, arch, sm_count);
  if (family == MatmulFamily::fused) return default_fused_variant(spec, batch_bucket, arch, sm_count);
  if (family == MatmulFamily::automatic && spec.is_group()) {
    const Variant fused = default_fused_variant(spec, batch_bucket, arch, sm_count);
    if (auto violation = variant_violation(spec, batch_bucket, arch, fused)) {
      throw Error(Status::unsupported_shape, fmt::format("{} cannot run as one kernel at batch bucket {} on {}: {}",
                                                         spec.canonical(), batch_bucket, arch.name(), *violation));
    }
    return fused;
  }
  if (family == MatmulFamily::automatic && batch_bucket >= kStagedFromBucket) {
    const Variant staged = default_staged_variant(spec, batch_bucket, arch, sm_count);
    if (!variant_violation(spec, batch_bucket, arch, staged)) return staged;
  }
  if (family == MatmulFamily::automatic && fused_by_default(spec, batch_bucket)) {
    const Variant fused = default_fused_variant(spec, batch_bucket, arch, sm_count);
    if (!variant_violation(spec, batch_bucket, arch, fused)) return fused;
  }
  const Variant v = default_direct_variant(spec, batch_bucket, arch, sm_count);
  if (auto violation = variant_violation(spec, batch_bucket, arch, v)) {
    throw Error(Status::unsupported_shape,
                fmt::format("{} cannot run on {}: {}", spec.canonical(), arch.name(), *violation));
  }
  return v;
}

GroupOneKernelLimit group_one_kernel_limit(const LinearSpec& group, const Arch& arch, int sm_count) {
  GroupOneKernelLimit limit;
  for (int bucket = 1; bucket <= kGroupOneKernelUpToBucket; bucket *= 2) {
    try {
      default_variant(group, bucket, arch, sm_count);
    } catch (const Error& error) {
      if (error.status() != Status::unsupported_shape) throw;
      limit.why = error.what();
      break;
    }
    limit.bucket = bucket;
  }
  return limit;
}

Variant variant_over_default(std::string_view parts, const LinearSpec& spec, int batch_bucket, const Arch& arch,
                             int sm_count) {
  // The parts name a family when parsing them over either family gives the same one.
  const int named = parse_variant(parts, Variant{.family = 3}).family;
  const bool names_family = parse_variant(parts, Variant{.family = 2}).family == named;
  const MatmulFamily family = !names_family ? MatmulFamily::automatic
                              : named == 3  ? MatmulFamily::staged
                              : named == 1  ? MatmulFamily::fused
                                            : MatmulFamily::direct;
  return parse_variant(parts, default_variant(spec, batch_bucket, arch, sm_count, family));
}

namespace {

// The values one knob takes in a family's search grid. Relative values are powers of two that
// scale the family default's value: -1, 0 and 1 give half of it, it and twice it.
struct GridKnob {
  int Variant::*member;
  std::vector<int> values;
  bool relative = false;
};

// A coarse grid around one family's default; the knobs it does not list keep the default's value.
struct FamilyGrid {
  MatmulFamily family;
  std::vector<GridKnob> knobs;
  bool default_cta_warps = false;  // only CTAs of as many warps (warps x k_warps) as the default's
};

const FamilyGrid kGrids[] = {
    {MatmulFamily::direct,
     {{&Variant::warps, {1, 2, 4, 8}},
      {&Variant::k_warps, {1, 2, 4, 8}},
      {&Variant::k_split, {-1, 0, 1}, true},
      {&Variant::batch_tiles, {1, 2, 4, 8}},
      {&Variant::prefetch, {2, 4, 8}},
      {&Variant::ctas_per_sm, {0, 1}}}},
    // Family 1 in CTAs of its default's size, as the default splits them.
    {MatmulFamily::fused,
     {{&Variant::warps, {16, 8, 4, 2, 1}},
      {&Variant::k_warps, {1, 2, 4, 8, 16}},
      {&Variant::k_split, {-1, 0, 1}, true},
      {&Variant::batch_tiles, {1, 2, 4}},
      {&Variant::prefetch, {1, 2, 4}}},
     true},
    // Candidates of wgmma=1 are legal only where the architecture has warpgroup MMAs.
    {MatmulFamily::staged,
     {{&Variant::wgmma, {1, 0}},
      {&Variant::warps, {4, 8}},
      {&Variant::k_split, {-1, 0, 1}, true},
      {&Variant::batch_tiles, {8, 16}},
      {&Variant::prefetch, {1, 2, 4}},
      {&Variant::ctas_per_sm, {1, 2}},
      {&Variant::table_copies, {4, 8}}}},
};

// The cartesian product of the grid's values around `base`, legal or not, in variant_knobs()
// order with the last knob varying fastest.
std::vector<Variant> grid_candidates(const FamilyGrid& grid, const Variant& base) {
  std::vector<Variant> candidates = {base};
  for (const VariantKnob& knob : variant_knobs()) {
    const auto listed = std::ranges::find(grid.knobs, knob.member, &GridKnob::member);
    if (listed == grid.knobs.end()) continue;
    const int around = base.*knob.member;
    std::vector<Variant> longer;
    for (const Variant& partial : candidates) {
      for (int value : listed->values) {
        Variant v = partial;
        v.*knob.member = !listed->relative ? value : value < 0 ? around / (1 << -value) : around * (1 << value);
        longer.push_back(v);
      }
    }
    candidates = std::move(longer);
  }
  if (grid.default_cta_warps) {
    std::erase_if(candidates, [&](const Variant& v) { return v.warps * v.k_warps != base.warps * base.k_warps; });
  }
  return candidates;
}

// A family's default, legal or not, or nothing where the family cannot serve the spec at all
// (beyond family 1 for a group).
std::optional<Variant> family_default(const LinearSpec& spec, int batch_bucket, const Arch& arch, int sm_count,
                                      MatmulFamily family) {
  try {
    return default_variant(spec, batch_bucket, arch, sm_count, family);
  } catch (const Error& error) {
    if (error.status() != Status::unsupported_shape) throw;
    return std::nullopt;
  }
}

}  // namespace

std::optional<Variant> legal_family_default(const LinearSpec& spec, int batch_bucket, const Arch& arch, int sm_count,
                                            MatmulFamily family) {
  std::optional<Variant> v = family_default(spec, batch_bucket, arch, sm_count, family);
  if (v && variant_violation(spec, batch_bucket, arch, *v)) return std::nullopt;
  return v;
}

std::vector<Variant> legal_variants(const LinearSpec& spec, int batch_bucket, const Arch& arch, int sm_count) {
  std::vector<Variant> variants = {default_variant(spec, batch_bucket, arch, sm_count)};
  for (const FamilyGrid& grid : kGrids) {
    // A grid's base is its family's default even where that default breaks a limit its
    // neighbours keep.
    const std::optional<Variant> base = family_default(spec, batch_bucket, arch, sm_count, grid.family);
    if (!base) continue;
    for (const Variant& v : grid_candidates(grid, *base)) {
      const bool known = std::ranges::find(variants, v) != variants.end();
      if (!known && !variant_violation(spec, batch_bucket, arch, v)) variants.push_back(v);
    }
  }
  return variants;
}

}  // namespace glqjit
