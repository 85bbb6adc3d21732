#include "gpu_cases.hpp"

#include <algorithm>
#include <cstdio>

#include "codegen/source.hpp"
#include "codegen/variant_space.hpp"
#include "gpu_support.hpp"
#include "runtime/kernel_binary.hpp"

namespace glqjit::test {

// Family 3 in the corners its defaults avoid: one warpgroup per CTA, uneven K splits, one and
// four k-tiles in flight, two CTAs per SM (with mma.sync: spilling), a last CTA that hangs past
// the last row tile (2080 rows = 130 tiles) and batches that leave part of a CTA's columns empty
// (65, 200); all bpw, both dtypes. Each corner runs with the mma.sync multiply everywhere and
// with wgmma where the GPU has it.
std::vector<LayerCase> family3_cases() {
  const DeviceInfo& device = context().device();
  const std::vector<int> batches = {1, 64, 65, 200, 256};
  std::vector<int> with_1024 = batches;
  with_1024.push_back(1024);
  std::vector<LayerCase> cases;
  for (int wgmma = 0; wgmma <= int(device.arch.has_wgmma()); ++wgmma) {
    auto corner = [&](const char* knobs) {
      return parse_variant(knobs, Variant{.family = 3, .wgmma = wgmma, .table_copies = 4});
    };
    const std::map<int, Variant> variants = {{64, corner("warps=4 batch_tiles=8 k_split=2 prefetch=2")},
                                             {128, corner("warps=8 batch_tiles=8 k_split=1 prefetch=1 ctas_per_sm=2")},
                                             {256, corner("warps=4 batch_tiles=16 k_split=3 prefetch=4")}};
    for (DType dtype : {DType::f16, DType::bf16}) {
      for (int bpw = 2; bpw <= 8; ++bpw) {
        cases.push_back({{1000, 2080, bpw, dtype, true, false}, batches, variants});
        cases.push_back({{1536, 576, bpw, dtype, true, false}, batches, variants});
      }
      // And family 3's default of bucket 1024 (no chosen one there).
      cases.push_back({{4096, 14336, 3, dtype, false, false}, with_1024, variants});
    }
    // Family 3's defaults, with this multiply, on two of BENCHMARK.md's large shapes.
    auto defaults = [&](const LinearSpec& spec, const std::vector<int>& large_batches) {
      std::map<int, Variant> chosen;
      for (int batch : large_batches) {
        const int bucket = bucket_for(batch);
        chosen[bucket] = parse_variant(wgmma ? "wgmma=1" : "wgmma=0",
                                       default_variant(spec, bucket, device.arch, device.sm_count, MatmulFamily::staged));
      }
      cases.push_back({spec, large_batches, chosen});
    };
    defaults({28672, 8192, 2, DType::f16, false, false}, {64, 256, 1024});
    defaults({8192, 57344, 4, DType::bf16, false, false}, {64, 200});
  }
  return cases;
}

// Family 1 in the corners its defaults avoid: uneven K splits whose slices straddle input
// Hadamard blocks (14336 = 8192 + 4096 + 2048 inputs in three slices), several batch chunks
// counting in at one output block (bucket 16 with one batch tile), two and four batch tiles,
// one warp per row tile, row groups wider than the small output blocks they cover (2080 rows =
// 2048 + 32), a legacy single block, bpw 2-8, both dtypes.
std::vector<LayerCase> family1_cases() {
  auto corner = [](const char* knobs) { return parse_variant(knobs, Variant{.family = 1, .table_copies = 4}); };
  const std::map<int, Variant> variants = {{1, corner("warps=1 k_warps=8 k_split=3 prefetch=1")},
                                           {2, corner("warps=8 k_warps=1 k_split=2 prefetch=4")},
                                           {4, corner("warps=4 k_warps=2 k_split=1 batch_tiles=1")},
                                           {16, corner("warps=2 k_warps=4 k_split=2 batch_tiles=1")},
                                           {32, corner("warps=2 k_warps=4 k_split=1 batch_tiles=4 prefetch=1")}};
  const std::vector<int> batches = {1, 2, 3, 13, 16, 17, 32};
  const std::vector<int> up_to_16 = {1, 2, 3, 13, 16};  // 32 rows of a wide input exceed shared memory
  std::vector<LayerCase> cases;
  for (DType dtype : {DType::f16, DType::bf16}) {
    for (int bpw = 2; bpw <= 8; ++bpw) cases.push_back({{1000, 2080, bpw, dtype, true, false}, batches, variants});
    cases.push_back({{14336, 4096, 2, dtype, false, false}, up_to_16, variants});
    cases.push_back({{4096, 1024, 3, dtype, false, false}, up_to_16, variants});
    cases.push_back({{1000, 2080, 4, dtype, true, true}, batches, variants});
    // Five k-tiles in parts of two: the fourth K part is empty (it once asked L2 for ~4 GB).
    const Variant empty_part = corner("warps=1 k_warps=1 k_split=4");
    cases.push_back({{320, 64, 3, dtype, true, false}, {1, 2, 3}, {{1, empty_part}, {2, empty_part}, {4, empty_part}}});
  }
  return cases;
}

// The batches of a case end with 1 again, after the larger ones: a linear's buckets share its
// workspace, and a forward of another bucket once overwrote family 1's arrival counters there.
std::vector<LayerCase> sample_cases() {
  const std::vector<int> batches = {1, 2, 8, 17, 64, 1};
  std::vector<LayerCase> cases;
  for (DType dtype : {DType::f16, DType::bf16}) {
    for (int bpw = 2; bpw <= 8; ++bpw) {
      cases.push_back({{1000, 2080, bpw, dtype, true, false}, batches});
      cases.push_back({{1536, 576, bpw, dtype, true, false}, batches});
    }
    for (int bpw : {2, 3, 4}) {
      cases.push_back({{4096, 4096, bpw, dtype, false, false}, batches});
      cases.push_back({{4096, 1024, bpw, dtype, false, false}, batches});
    }
  }
  return cases;
}

std::vector<LayerCase> sanitizer_cases() {
  const DeviceInfo& device = context().device();
  const LinearSpec odd{1000, 2080, 3, DType::f16, true, false};
  const LinearSpec legacy{1000, 2080, 2, DType::bf16, true, true};
  const Variant family1_k_split = parse_variant("warps=1 k_warps=8 k_split=3 prefetch=1",
                                                Variant{.family = 1, .table_copies = 4});
  auto family3 = [&](const LinearSpec& spec, int bucket, int wgmma) {
    return parse_variant(wgmma ? "wgmma=1" : "wgmma=0",
                         default_variant(spec, bucket, device.arch, device.sm_count, MatmulFamily::staged));
  };
  const int wgmma = int(device.arch.has_wgmma());
  const LinearSpec q_k_v = group_of({{4096, 4096, 2, DType::f16, false, false},
                                     {4096, 1024, 2, DType::f16, false, false},
                                     {4096, 1024, 2, DType::f16, false, false}});
  return {
      {odd, {1, 2, 17, 65, 200, 1}, {{128, family3(odd, 128, 0)}, {256, family3(odd, 256, wgmma)}}},
      {legacy, {1, 8, 130, 1}, {{256, family3(legacy, 256, wgmma)}}},
      {{14336, 4096, 4, DType::bf16, false, false}, {1, 16, 1}, {{1, family1_k_split}}},
      {{1536, 576, 8, DType::bf16, true, false}, {1, 3, 1}},
      {q_k_v, {1}},
  };
}

std::vector<LayerCase> correctness_cases() {
  const std::vector<int> batches = {1, 2, 3, 8, 17, 64, 256, 1};  // 1 again: see sample_cases
  struct Shape {
    int64_t out, in;
  };
  const std::vector<Shape> benchmark = {{4096, 4096},  {1024, 4096}, {14336, 4096}, {4096, 14336}, {6144, 4096},
                                        {28672, 4096}, {8192, 8192}, {1024, 8192},  {28672, 8192}, {8192, 28672},
                                        {57344, 8192}, {2048, 2048}, {512, 2048},   {11008, 2048}, {2048, 11008}};
  const std::vector<Shape> odd = {{2080, 1000}, {576, 1536}, {1536, 576}, {64, 16}};
  std::vector<LayerCase> cases;
  for (DType dtype : {DType::f16, DType::bf16}) {
    for (int bpw : {2, 3, 4}) {
      for (Shape s : benchmark) cases.push_back({{s.in, s.out, bpw, dtype, false, false}, batches});
    }
    for (int bpw = 2; bpw <= 8; ++bpw) {
      for (Shape s : odd) cases.push_back({{s.in, s.out, bpw, dtype, true, false}, batches});
    }
    for (int bpw = 5; bpw <= 8; ++bpw) cases.push_back({{4096, 14336, bpw, dtype, false, false}, batches});
    for (int bpw : {2, 3}) {
      cases.push_back({{1000, 2080, bpw, dtype, true, true}, batches});
      cases.push_back({{4096, 4096, bpw, dtype, false, true}, batches});
    }
  }
  return cases;
}

void prewarm_store(const std::vector<LayerCase>& cases) {
  Context& ctx = context();
  std::vector<GeneratedKernel> kernels;
  for (const LayerCase& c : cases) {
    std::vector<int> buckets;
    for (int batch : c.batches) {
      const int bucket = bucket_for(batch);
      if (std::find(buckets.begin(), buckets.end(), bucket) != buckets.end()) continue;
      buckets.push_back(bucket);
      const auto forced = c.variants.find(bucket);
      const Variant variant = forced != c.variants.end()
                                  ? forced->second
                                  : default_variant(c.spec, bucket, ctx.device().arch, ctx.device().sm_count);
      kernels.push_back(generate_kernel(c.spec, variant, bucket, ctx.device().arch));
    }
  }
  std::fprintf(stderr, "preparing %zu kernel sets for the GPU suite\n", kernels.size());
  obtain_kernels(ctx.store(), std::move(kernels), ObtainOptions{});
}

}  // namespace glqjit::test
