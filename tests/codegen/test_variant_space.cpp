// The legal variant space, the default variant and the launch plan.
#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "codegen/arch.hpp"
#include "codegen/launch.hpp"
#include "codegen/source.hpp"
#include "codegen/variant_space.hpp"
#include "support/sha256.hpp"
#include "test_helpers.hpp"

using namespace glqjit;

namespace {

const char* const kArchs[] = {"sm_80", "sm_86", "sm_89", "sm_90a", "sm_100a", "sm_120"};

// out x in shapes of real layers, plus padded and tiny ones.
const LinearSpec kSpecs[] = {
    {4096, 4096, 2},  {4096, 11008, 3}, {11008, 4096, 4}, {5000, 1000, 5, DType::bf16, true},
    {1, 1, 6},        {8192, 28672, 7}, {28672, 8192, 8}, {4096, 14336, 2, DType::f16, false, true},
    // Blocks above TRANSFORM_CHUNK: 57344 = 32768 + 16384 + 8192 out, one block of 65536 in.
    {8192, 57344, 3}, {65536, 4096, 5},
};

int k_tiles_of(const LinearSpec& spec) { return int(spec.geometry().n_pad / 64); }

bool has_e81b(const LinearSpec& spec) {
  const Recipe recipe = spec.recipe();
  return std::count(recipe.stages.begin(), recipe.stages.end(), StageKind::e81b) > 0;
}

Variant variant_of(const char* text) {
  // Every knob spelled out, so that a change of Variant's defaults does not change the test.
  const Variant all{.warps = 4, .k_warps = 1, .k_split = 1, .batch_tiles = 1, .prefetch = 2, .table_copies = 8,
                    .transform_threads = 128};
  return parse_variant(text, all);
}

}  // namespace

TEST_CASE("the default variant is legal for every spec, bucket and architecture", "[variant_space]") {
  for (const char* arch_name : kArchs) {
    const Arch arch = parse_arch(arch_name);
    for (const LinearSpec& spec : kSpecs) {
      for (int bucket : {1, 2, 8, 16, 64, 256, 1024}) {
        INFO(spec.canonical() << " bucket " << bucket << " " << arch_name);
        const Variant v = default_variant(spec, bucket, arch, arch.typical_sm_count());
        INFO("default " << v.canonical());
        CHECK_FALSE(variant_violation(spec, bucket, arch, v).has_value());
        CHECK_NOTHROW(check_variant(spec, bucket, arch, v));
        CHECK(8 * v.batch_tiles <= std::max(8, bucket));
        // Kernel family 1 at bucket 1 for layers of small Hadamard blocks, family 3 from bucket
        // 64 (with warpgroup MMAs where the architecture has them), family 2 between.
        const Geometry g = spec.geometry();
        const bool small_blocks = *std::max_element(g.out_blocks.begin(), g.out_blocks.end()) <= 4096 &&
                                  *std::max_element(g.in_blocks.begin(), g.in_blocks.end()) <= 4096;
        CHECK(v.family == (bucket >= 64 ? 3 : bucket == 1 && small_blocks ? 1 : 2));
        CHECK(v.wgmma == int(arch.has_wgmma() && bucket >= 64));
        // The heuristic's shape: CTAs of 8 warps (family 1: 16), conflict-free tables unless two
        // codebooks share the space, and at least 4 k-tiles per warp wherever K is split.
        CHECK(v.warps * v.k_warps == (v.family == 1 ? 16 : 8));
        if (v.ctas_per_sm < 2) CHECK(v.table_copies == (has_e81b(spec) ? 4 : 8));
        CHECK(v.transform_threads == 128);
        // Two CTAs per SM only with wgmma (the mma.sync multiply spills at 128 registers) and in
        // family 1 on sm_90 with one stage, fp16 and no bias (64 registers); family 2 leaves
        // registers to ptxas except where it would spill (sm_100a, sm_120, 2-4 stages).
        if (v.ctas_per_sm == 2) {
          CHECK((v.wgmma == 1 || (v.family == 1 && arch.major == 9 && spec.recipe().stages.size() == 1 &&
                                  spec.dtype == DType::f16 && !spec.has_bias)));
        }
        if (v.family == 1) CHECK(v.ctas_per_sm >= 1);
        if (v.family == 2) CHECK(v.ctas_per_sm == int(arch.major >= 10 && spec.recipe().stages.size() >= 2));
        if (v.family == 3) CHECK(v.ctas_per_sm >= 1);
        if (v.k_warps * v.k_split > 1) CHECK(k_tiles_of(spec) / (v.k_warps * v.k_split) >= 4);
      }
    }
  }
}

TEST_CASE("the default variant serves the largest batch bucket where the partial sums fit", "[variant_space]") {
  const Arch arch = parse_arch("sm_90a");
  // bucket_for(kMaxBatch) = 65536 columns of 2048 fp32 partial sums: 512 MiB, the limit.
  CHECK(bucket_for(kMaxBatch) == 65536);
  const LinearSpec narrow{4096, 2048, 2};
  const Variant v = default_variant(narrow, 65536, arch, 132);
  CHECK(v.k_split == 1);
  CHECK(8 * v.batch_tiles <= 65536);
  CHECK_FALSE(variant_violation(narrow, 65536, arch, v).has_value());
  CHECK(make_launch_plan(narrow, v, 65536).partial_bytes(65536) == size_t(512) << 20);
}

TEST_CASE("the default variant splits K to fill the SMs", "[variant_space]") {
  const LinearSpec spec{4096, 4096, 2};  // 256 row tiles, 64 k-tiles
  const Arch arch = parse_arch("sm_90a");
  // Bucket 2: at bucket 1 this layer runs kernel family 1.
  const Variant few = default_variant(spec, 2, arch, 1);
  const Variant many = default_variant(spec, 2, arch, 132);
  // One SM needs no split: 32 warps over 256 row tiles.
  CHECK(few.k_warps == 1);
  CHECK(few.k_split == 1);
  CHECK(few.warps == 8);
  // 132 SMs want about 17 warps per row tile: first 8 warps per tile in the CTA, then CTAs
  // along K, capped so that each warp keeps 4 of the 64 k-tiles.
  CHECK(many.k_warps == 8);
  CHECK(many.k_split == 2);
  CHECK(many.warps == 1);
  CHECK(many.k_warps * many.k_split > few.k_warps * few.k_split);
  CHECK(few.transform_threads == many.transform_threads);
  CHECK(few.table_copies == many.table_copies);
}

// Each CTA of family 1 transforms its input blocks before it multiplies: a second wave repeats that.
TEST_CASE("family 1's default runs the most CTAs that fit one wave", "[variant_space]") {
  auto group = [](std::vector<int64_t> outs) {
    LinearSpec spec{4096, 0, 2};
    spec.shard_out_features = outs;
    for (int64_t out : outs) spec.out_features += out;
    return spec;
  };
  const Arch arch = parse_arch("sm_90a");
  auto ctas = [&](const LinearSpec& spec, const Variant& v) {
    const LaunchPlan plan = make_launch_plan(spec, v, 1);
    return int64_t(plan.m_tiles + v.warps - 1) / v.warps * v.k_split;
  };
  // q+k+v of Llama-3-8B, one CTA of 16 warps per SM: 384 row tiles in 96 CTAs (192 would need two
  // waves of 132), each row tile split among 4 warps before K is split among CTAs.
  const LinearSpec qkv = group({4096, 1024, 1024});
  const Variant v = default_variant(qkv, 1, arch, 132);
  CHECK(v.family == 1);
  CHECK(v.ctas_per_sm == 1);
  CHECK(v.warps * v.k_warps == 16);
  CHECK(ctas(qkv, v) == 96);
  CHECK(v.k_warps == 4);
  CHECK(v.k_split == 1);
  // gate+up: 1792 row tiles, 112 CTAs of 16 row tiles each.
  const LinearSpec gate_up = group({14336, 14336});
  const Variant w = default_variant(gate_up, 1, arch, 132);
  CHECK(ctas(gate_up, w) == 112);
  CHECK(w.warps == 16);
  CHECK(w.k_split == 1);
  // Fewer SMs, fewer CTAs: still one wave.
  for (int sms : {32, 66, 100}) {
    INFO(sms << " SMs");
    CHECK(ctas(qkv, default_variant(qkv, 1, arch, sms)) <= sms);
  }
  // Where no split fits one wave, the fewest CTAs.
  CHECK(ctas(qkv, default_variant(qkv, 1, arch, 20)) == 24);
  CHECK(ctas(gate_up, default_variant(gate_up, 1, arch, 8)) == 112);
}

TEST_CASE("a group runs as one kernel up to the bucket its shared memory allows", "[variant_space]") {
  LinearSpec qkv{4096, 0, 2};
  qkv.shard_out_features = {4096, 1024, 1024};
  qkv.out_features = 6144;
  // sm_90a fits family 1's u slice of four batch rows (143 KB); sm_86's 99 KB per CTA fit two.
  const GroupOneKernelLimit hopper = group_one_kernel_limit(qkv, parse_arch("sm_90a"), 132);
  CHECK(hopper.bucket == kGroupOneKernelUpToBucket);
  CHECK(hopper.why.empty());
  const GroupOneKernelLimit ampere = group_one_kernel_limit(qkv, parse_arch("sm_86"), 84);
  CHECK(ampere.bucket >= 1);
  CHECK(ampere.bucket < kGroupOneKernelUpToBucket);
  CHECK_THAT(ampere.why, Catch::Contains("shared memory"));
}

TEST_CASE("family 1 transforms as many batch rows at once as its scratch budget holds", "[variant_space][launch]") {
  const Variant v = variant_of("family=1 warps=2 k_warps=8");
  auto rows_at_once = [&](int64_t in, int bucket) {
    return fused_layout(LinearSpec{in, 4096, 2}, v, bucket).transform_rows;
  };
  CHECK(rows_at_once(4096, 1) == 1);
  CHECK(rows_at_once(4096, 2) == 2);
  CHECK(rows_at_once(4096, 8) == 4);  // 4 x 17 KB of a 4096 block
  CHECK(rows_at_once(8192, 8) == 2);  // 2 x 35 KB of an 8192 block
  CHECK(fused_layout(LinearSpec{1024, 1024, 2}, v, 8).transform_rows == 8);  // all of the CTA's rows
  for (int bucket : {1, 2, 4, 8}) {
    const FusedLayout layout = fused_layout(LinearSpec{4096, 4096, 2}, v, bucket);
    CHECK(layout.flags_offset - layout.scratch_offset >= unsigned(layout.transform_rows) * (4096 + 256) * 4);
  }
}

TEST_CASE("legal_variants are legal, distinct and contain the default", "[variant_space]") {
  for (const LinearSpec& spec : {LinearSpec{4096, 11008, 3}, LinearSpec{5000, 1000, 8}}) {
    for (int bucket : {1, 16, 256}) {
      const Arch arch = parse_arch("sm_90a");
      INFO(spec.canonical() << " bucket " << bucket);
      const Variant base = default_variant(spec, bucket, arch, 132);
      const std::vector<Variant> variants = legal_variants(spec, bucket, arch, 132);
      REQUIRE(variants.size() > 1);
      CHECK(variants.front() == base);
      CHECK(std::find(variants.begin(), variants.end(), base) != variants.end());
      bool other_k_warps = false, other_warps = false;
      for (size_t i = 0; i < variants.size(); ++i) {
        INFO(variants[i].canonical());
        CHECK_FALSE(variant_violation(spec, bucket, arch, variants[i]).has_value());
        CHECK(variants[i].warps * variants[i].k_warps <= 32);
        for (size_t j = 0; j < i; ++j) CHECK_FALSE(variants[i] == variants[j]);
        other_k_warps |= variants[i].k_warps != base.k_warps;
        other_warps |= variants[i].warps != base.warps;
      }
      // The search space moves the new knob too.
      CHECK(other_k_warps);
      CHECK(other_warps);
      // Both kernel families from bucket 64, family 3 with both of its multiplies on sm_90a.
      auto any = [&](int family, int wgmma) {
        return std::any_of(variants.begin(), variants.end(),
                           [&](const Variant& v) { return v.family == family && v.wgmma == wgmma; });
      };
      CHECK(any(2, 0));
      CHECK(any(3, 1) == (bucket >= 64));
      CHECK(any(3, 0) == (bucket >= 64));
    }
  }
  const std::vector<Variant> sm86 = legal_variants(LinearSpec{4096, 11008, 3}, 256, parse_arch("sm_86"), 84);
  CHECK(std::none_of(sm86.begin(), sm86.end(), [](const Variant& v) { return v.wgmma == 1; }));
  CHECK(std::any_of(sm86.begin(), sm86.end(), [](const Variant& v) { return v.family == 3; }));
}

// The hashes are of legal_variants' canonical lines in order, each ending in a newline, as the
// hand-written grids that the table-driven ones replaced gave them (commit 071720b); the same
// lists held for 1296 cases (every architecture, 12 specs, 9 buckets, 1 SM and the typical
// count). After a deliberate change of the grids, check the new lists and take their hashes
// from this test's failure output.
TEST_CASE("legal_variants keep the search space of the hand-written grids", "[variant_space]") {
  struct Case {
    LinearSpec spec;
    int bucket;
    const char* arch;
    int sm_count;
    size_t count;
    const char* sha256;
    std::vector<std::string> members;  // the default first, then some others
  };
  const Case cases[] = {
      // The same space since family 1 became this layer's default (kernel-notes v9), listed from it.
      {{4096, 4096, 2}, 1, "sm_90a", 132, 246, "5d185af9a69eea6beae4e79953b13dc7706b1658d4a4550c6b535e3a0f8e88dc",
       {"family=1 wgmma=0 warps=1 k_warps=16 k_split=1 batch_tiles=1 prefetch=2 ctas_per_sm=2 table_copies=8 "
        "transform_threads=128",
        "family=2 wgmma=0 warps=1 k_warps=8 k_split=2 batch_tiles=1 prefetch=2 ctas_per_sm=0 table_copies=8 "
        "transform_threads=128",
        "family=2 wgmma=0 warps=2 k_warps=4 k_split=4 batch_tiles=1 prefetch=4 ctas_per_sm=1 table_copies=8 "
        "transform_threads=128",
        "family=1 wgmma=0 warps=1 k_warps=16 k_split=2 batch_tiles=1 prefetch=4 ctas_per_sm=2 table_copies=8 "
        "transform_threads=128"}},
      // No family 1 variants here (15 before) since family 1 stages SV of the whole input block
      // in shared memory: 8 KB more, and its 16 rows of u at k_split 1 and 2 no longer fit sm_86.
      {{4096, 11008, 3}, 16, "sm_86", 84, 236, "abb2ffd4e939630c81c2f5ffe375f40d091fcdbee07aa2bc0f7fdfcd82a54149",
       {"family=2 wgmma=0 warps=2 k_warps=4 k_split=1 batch_tiles=2 prefetch=2 ctas_per_sm=0 table_copies=4 "
        "transform_threads=128",
        "family=2 wgmma=0 warps=2 k_warps=4 k_split=1 batch_tiles=1 prefetch=8 ctas_per_sm=0 table_copies=4 "
        "transform_threads=128"}},
      {{4096, 11008, 3}, 256, "sm_90a", 132, 513, "9a05e247b1f0db555a4d8d20912af736c290178e8b5b3dd587191790f50375dc",
       {"family=3 wgmma=1 warps=8 k_warps=1 k_split=2 batch_tiles=16 prefetch=2 ctas_per_sm=2 table_copies=4 "
        "transform_threads=128",
        "family=2 wgmma=0 warps=8 k_warps=1 k_split=2 batch_tiles=1 prefetch=4 ctas_per_sm=1 table_copies=4 "
        "transform_threads=128",
        "family=3 wgmma=0 warps=8 k_warps=1 k_split=4 batch_tiles=16 prefetch=4 ctas_per_sm=1 table_copies=8 "
        "transform_threads=128"}},
      {{4096, 11008, 3}, 256, "sm_86", 84, 306, "71cdf0c2454cca551e36ba94cecb44c0e24d453fd66ea9124a06e9d6b79dad47",
       {"family=3 wgmma=0 warps=8 k_warps=1 k_split=1 batch_tiles=16 prefetch=2 ctas_per_sm=1 table_copies=4 "
        "transform_threads=128",
        "family=2 wgmma=0 warps=2 k_warps=4 k_split=1 batch_tiles=2 prefetch=4 ctas_per_sm=0 table_copies=4 "
        "transform_threads=128",
        "family=3 wgmma=0 warps=8 k_warps=1 k_split=2 batch_tiles=16 prefetch=2 ctas_per_sm=1 table_copies=4 "
        "transform_threads=128"}},
      // 261 (246 before) since family 1's default splits for one wave of CTAs (kernel-notes v11).
      {{5000, 1000, 5, DType::bf16, true}, 8, "sm_100a", 148, 261,
       "236ef415963381758f895d0b775dc913ec1d6058846896e23d8f41951990a550",
       {"family=2 wgmma=0 warps=1 k_warps=8 k_split=2 batch_tiles=1 prefetch=2 ctas_per_sm=1 table_copies=4 "
        "transform_threads=128",
        "family=1 wgmma=0 warps=8 k_warps=2 k_split=2 batch_tiles=1 prefetch=4 ctas_per_sm=1 table_copies=4 "
        "transform_threads=128"}},
      {{8192, 28672, 7}, 64, "sm_120", 170, 236, "456e009fd8b5c15247709c1f14b6bac71c645e01311d69986ec3974bc3c11f4a",
       {"family=3 wgmma=0 warps=8 k_warps=1 k_split=2 batch_tiles=8 prefetch=2 ctas_per_sm=1 table_copies=4 "
        "transform_threads=128",
        "family=2 wgmma=0 warps=2 k_warps=2 k_split=2 batch_tiles=2 prefetch=2 ctas_per_sm=1 table_copies=4 "
        "transform_threads=128"}},
      {{1, 1, 6}, 1, "sm_80", 1, 87, "2dcd5d017987a75f52f01c687cb7fa6fa062f71912f8d1de2fedf295af4a37d4",
       {"family=1 wgmma=0 warps=16 k_warps=1 k_split=1 batch_tiles=1 prefetch=1 ctas_per_sm=1 table_copies=8 "
        "transform_threads=128",
        "family=2 wgmma=0 warps=2 k_warps=8 k_split=1 batch_tiles=1 prefetch=2 ctas_per_sm=0 table_copies=8 "
        "transform_threads=128",
        "family=1 wgmma=0 warps=1 k_warps=16 k_split=1 batch_tiles=1 prefetch=4 ctas_per_sm=1 table_copies=8 "
        "transform_threads=128"}},
      {{4096, 14336, 2, DType::f16, false, true}, 2, "sm_89", 128, 144,
       "ad12e44281286eab688000d90c270329a03dd92120ae45f1ee10308c2e8246aa",
       {"family=2 wgmma=0 warps=2 k_warps=4 k_split=1 batch_tiles=1 prefetch=2 ctas_per_sm=0 table_copies=8 "
        "transform_threads=128",
        "family=2 wgmma=0 warps=8 k_warps=2 k_split=2 batch_tiles=1 prefetch=4 ctas_per_sm=1 table_copies=8 "
        "transform_threads=128"}},
  };
  for (const Case& c : cases) {
    INFO(c.spec.canonical() << " bucket " << c.bucket << " " << c.arch << " " << c.sm_count << " SMs");
    const std::vector<Variant> variants = legal_variants(c.spec, c.bucket, parse_arch(c.arch), c.sm_count);
    std::string lines;
    for (const Variant& v : variants) lines += v.canonical() + "\n";
    CHECK(variants.size() == c.count);
    CHECK(sha256_hex(lines) == c.sha256);
    REQUIRE_FALSE(variants.empty());
    CHECK(variants.front().canonical() == c.members.front());
    for (const std::string& member : c.members) {
      INFO(member);
      CHECK(std::ranges::count(variants, parse_variant(member)) == 1);
    }
  }
}

TEST_CASE("variants that break a limit are invalid_argument errors naming the knob", "[variant_space][errors]") {
  const Arch arch = parse_arch("sm_90a");
  const LinearSpec spec4{4096, 4096, 4};  // 64 k-tiles, 256 row tiles, one codebook
  const Variant ok = variant_of("warps=4 k_warps=2 k_split=1 batch_tiles=1 prefetch=2 table_copies=8 "
                                "transform_threads=256");
  REQUIRE_NOTHROW(check_variant(spec4, 1, arch, ok));

  auto with = [&](const char* text) { return parse_variant(text, ok); };
  // warps and k_warps: powers of two from 1 to 32 ...
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("warps=3")), Status::invalid_argument, "warps=3",
                    "power of two");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("warps=0")), Status::invalid_argument, "warps=0");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("warps=64 k_warps=1")), Status::invalid_argument, "warps=64",
                    "power of two");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("k_warps=3")), Status::invalid_argument, "k_warps=3",
                    "power of two");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("k_warps=0")), Status::invalid_argument, "k_warps=0");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("warps=1 k_warps=64")), Status::invalid_argument,
                    "k_warps=64");
  // ... and together at most 32 warps (1024 threads) per CTA.
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("warps=8 k_warps=8")), Status::invalid_argument, "warps=8",
                    "k_warps=8", "32 warps");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("warps=32 k_warps=2")), Status::invalid_argument, "warps=32",
                    "k_warps=2", "32 warps");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("warps=2 k_warps=32")), Status::invalid_argument, "warps=2",
                    "k_warps=32", "32 warps");
  // A CTA must also fit the register file: 32 warps of even the smallest ring do not.
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("warps=32 k_warps=1")), Status::invalid_argument, "warps=32",
                    "registers");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("warps=4 k_warps=8")), Status::invalid_argument, "k_warps=8",
                    "registers");
  for (const char* edge : {"warps=16 k_warps=1", "warps=1 k_warps=16", "warps=4 k_warps=4", "warps=8 k_warps=2"}) {
    INFO(edge);
    CHECK_NOTHROW(check_variant(spec4, 1, arch, with(edge)));
    const Variant v = with(edge);
    CHECK(make_launch_plan(spec4, v, 1).matmul.threads == unsigned(32 * v.warps * v.k_warps));
  }
  // table_copies: 1, 2, 4 or 8.
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("table_copies=3")), Status::invalid_argument,
                    "table_copies=3", "1, 2, 4 or 8");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("table_copies=0")), Status::invalid_argument, "table_copies=0");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("table_copies=16")), Status::invalid_argument,
                    "table_copies=16");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("table_copies=-8")), Status::invalid_argument,
                    "table_copies=-8");
  for (const char* copies : {"table_copies=1", "table_copies=2", "table_copies=4", "table_copies=8"}) {
    INFO(copies);
    CHECK_NOTHROW(check_variant(spec4, 1, arch, with(copies)));
  }
  GLQ_REQUIRE_ERROR(check_variant(spec4, 256, arch, with("prefetch=8 batch_tiles=8")), Status::invalid_argument,
                    "prefetch=8", "batch_tiles=8", "registers");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("prefetch=9")), Status::invalid_argument, "prefetch=9");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("prefetch=0")), Status::invalid_argument, "prefetch=0");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("k_split=65")), Status::invalid_argument, "k_split=65",
                    "64 k-tiles");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("k_split=0")), Status::invalid_argument, "k_split=0");
  CHECK_NOTHROW(check_variant(spec4, 1, arch, with("k_split=64")));
  // The partial sums of all K splits are bounded (512 MiB): 64 x 1024 x 4096 fp32 is 1 GiB.
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1024, arch, with("k_split=64")), Status::invalid_argument, "k_split=64",
                    "1024 MiB", "partial sums", "512 MiB");
  // transform_threads: a power of two from 32 to 1024.
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("transform_threads=2048")), Status::invalid_argument,
                    "transform_threads=2048", "32 to 1024");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("transform_threads=96")), Status::invalid_argument,
                    "transform_threads=96");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("transform_threads=16")), Status::invalid_argument,
                    "transform_threads=16");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("transform_threads=0")), Status::invalid_argument,
                    "transform_threads=0");
  CHECK_NOTHROW(check_variant(spec4, 1, arch, with("transform_threads=32")));
  CHECK_NOTHROW(check_variant(spec4, 1, arch, with("transform_threads=1024")));
  GLQ_REQUIRE_ERROR(check_variant(spec4, 256, arch, with("batch_tiles=3")), Status::invalid_argument,
                    "batch_tiles=3");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 256, arch, with("batch_tiles=16")), Status::invalid_argument,
                    "batch_tiles=16");
  // A tile wider than the bucket wastes whole mma tiles.
  GLQ_REQUIRE_ERROR(check_variant(spec4, 8, arch, with("batch_tiles=2")), Status::invalid_argument, "batch_tiles=2",
                    "bucket 8");
  CHECK_NOTHROW(check_variant(spec4, 16, arch, with("batch_tiles=2")));
  // The message names the spec, bucket and architecture too.
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, with("warps=3")), Status::invalid_argument, spec4.canonical().c_str(),
                    "bucket 1", "sm_90a");
  // generate_kernel checks the variant too.
  GLQ_REQUIRE_ERROR(generate_kernel(spec4, with("warps=3"), 1, arch), Status::invalid_argument, "warps=3");
  GLQ_REQUIRE_ERROR(generate_kernel(spec4, with("k_split=65"), 1, arch), Status::invalid_argument, "k_split=65");
  GLQ_REQUIRE_ERROR(generate_kernel(spec4, with("warps=8 k_warps=8"), 1, arch), Status::invalid_argument, "k_warps=8");
  GLQ_REQUIRE_ERROR(generate_kernel(spec4, with("table_copies=3"), 1, arch), Status::invalid_argument,
                    "table_copies=3");
}

TEST_CASE("kernel family 3 has its own limits, each an invalid_argument naming the knob", "[variant_space][errors]") {
  const Arch arch = parse_arch("sm_90a");
  const LinearSpec spec4{4096, 4096, 4};
  const Variant ok =
      variant_of("family=3 wgmma=1 warps=8 k_warps=1 k_split=2 batch_tiles=16 prefetch=4 table_copies=8");
  REQUIRE_NOTHROW(check_variant(spec4, 128, arch, ok));
  CHECK_NOTHROW(check_variant(spec4, 64, arch, parse_variant("warps=4 batch_tiles=8", ok)));
  auto with = [&](const char* text) { return parse_variant(text, ok); };
  // Without warpgroup MMAs family 3 multiplies with mma.sync, under the same limits.
  for (const char* other : {"sm_80", "sm_86", "sm_89", "sm_90", "sm_100a", "sm_120"}) {
    INFO(other);
    GLQ_REQUIRE_ERROR(check_variant(spec4, 128, parse_arch(other), ok), Status::invalid_argument, "wgmma=1",
                      "only sm_90a", other, "wgmma=0");
    CHECK_NOTHROW(check_variant(spec4, 128, parse_arch(other), with("wgmma=0 prefetch=2")));
    GLQ_REQUIRE_ERROR(check_variant(spec4, 128, parse_arch(other), with("wgmma=0 warps=2")), Status::invalid_argument,
                      "warps=2", "4 or 8");
  }
  CHECK_NOTHROW(check_variant(spec4, 128, arch, with("wgmma=0")));
  GLQ_REQUIRE_ERROR(check_variant(spec4, 128, arch, with("wgmma=2")), Status::invalid_argument, "wgmma=2", "0 or 1");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 128, arch, with("family=4")), Status::invalid_argument, "family=4", "2",
                    "3");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 128, arch, with("family=2")), Status::invalid_argument, "wgmma=1",
                    "family=3");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 128, arch, with("warps=2")), Status::invalid_argument, "warps=2",
                    "4 or 8", "warpgroups");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 128, arch, with("warps=16")), Status::invalid_argument, "warps=16");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 128, arch, with("k_warps=2")), Status::invalid_argument, "k_warps=2");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 128, arch, with("batch_tiles=4")), Status::invalid_argument, "batch_tiles=4",
                    "8 or 16");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 256, arch, with("batch_tiles=32")), Status::invalid_argument,
                    "batch_tiles=32");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 64, arch, ok), Status::invalid_argument, "batch_tiles=16", "bucket 64");
  // Eight k-tiles in flight: ten buffers of 128 x 64 activations and 8 x 1 KB of words (four
  // stages) are more shared memory than a CTA may have.
  GLQ_REQUIRE_ERROR(check_variant(LinearSpec{4096, 4096, 8}, 128, arch, with("prefetch=8")), Status::invalid_argument,
                    "shared memory", "sm_90a");
  CHECK_NOTHROW(check_variant(LinearSpec{4096, 4096, 8}, 128, arch, ok));
  // Shared memory: the codebooks, then prefetch + 2 staged k-tiles (wgmma; mma.sync: + 1), each
  // 64 k x 8 batch_tiles columns of activations and 8 warps' words (two E8P stages: 32 x 8 bytes each).
  const unsigned staged_tile = 128u * 64 * 2 + 8u * 2 * 32 * 8;
  CHECK(matmul_shared_bytes(spec4.recipe(), ok) == 256u * 8 * 16 + 6u * staged_tile);
  CHECK(matmul_shared_bytes(spec4.recipe(), with("wgmma=0")) == 256u * 8 * 16 + 5u * staged_tile);
  CHECK(matmul_shared_bytes(LinearSpec{4096, 4096, 3}.recipe(), with("table_copies=4 prefetch=1")) ==
        2u * 256 * 4 * 16 + 3u * (128u * 64 * 2 + 8u * (32 * 8 + 32 * 4)));
  // Two CTAs per SM where their shared memory fits one SM, and only in family 3.
  CHECK_NOTHROW(check_variant(spec4, 128, arch, with("prefetch=2 ctas_per_sm=2")));
  GLQ_REQUIRE_ERROR(check_variant(spec4, 128, arch, with("prefetch=4 ctas_per_sm=2")), Status::invalid_argument,
                    "ctas_per_sm=2", "prefetch=1");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 128, arch, with("ctas_per_sm=3")), Status::invalid_argument,
                    "ctas_per_sm=3", "0 (ptxas's choice), 1 or 2");
  GLQ_REQUIRE_ERROR(check_variant(spec4, 1, arch, variant_of("ctas_per_sm=-1")), Status::invalid_argument,
                    "ctas_per_sm=-1");
  CHECK(make_launch_plan(spec4, ok, 256).matmul.threads == 256u);
  CHECK(make_launch_plan(spec4, ok, 256).matmul_grid(200).x == 2u);
}

// The matmul's dynamic shared memory: 256 rows x table_copies x 16 bytes per codebook the
// recipe uses, then (k_warps - 1) x warps x batch_tiles x 4 x 32 fp32 for the K_WARPS reduction.
TEST_CASE("matmul shared memory counts the codebooks and the K_WARPS reduction", "[variant_space][launch]") {
  const Recipe one = LinearSpec{4096, 4096, 4}.recipe();   // E8P, E8P
  const Recipe two = LinearSpec{4096, 4096, 3}.recipe();   // E8P, E81B
  CHECK(matmul_shared_bytes(one, variant_of("table_copies=8")) == 256u * 8 * 16);
  CHECK(matmul_shared_bytes(one, variant_of("table_copies=1")) == 256u * 16);
  CHECK(matmul_shared_bytes(two, variant_of("table_copies=8")) == 2u * 256 * 8 * 16);
  CHECK(matmul_shared_bytes(two, variant_of("table_copies=2")) == 2u * 256 * 2 * 16);
  CHECK(matmul_shared_bytes(two, variant_of("table_copies=4 warps=2 k_warps=4 batch_tiles=2")) ==
        2u * 256 * 4 * 16 + 3u * 2 * 2 * 4 * 32 * 4);
  CHECK(matmul_shared_bytes(one, variant_of("table_copies=1 warps=1 k_warps=32 batch_tiles=8")) ==
        256u * 16 + 31u * 8 * 4 * 32 * 4);
  const Variant v = variant_of("table_copies=4 warps=8 k_warps=4");
  CHECK(make_launch_plan(LinearSpec{4096, 4096, 3}, v, 1).matmul.dynamic_shared_bytes == matmul_shared_bytes(two, v));
}

TEST_CASE("a matmul CTA must fit an SM's registers and shared memory", "[variant_space][errors]") {
  const LinearSpec spec{4096, 4096, 3};  // two codebooks
  // 2 x 256 x 8 x 16 = 65536 bytes of tables + 7 x 4 x 4 x 512 = 57344 of reduction = 122880
  // would exceed sm_86's 99 KiB, but its 32 warps need more registers than any SM has, which
  // is checked first; so it is rejected everywhere, naming the registers.
  const Variant big = variant_of("warps=4 k_warps=8 batch_tiles=4 prefetch=1 table_copies=8");
  REQUIRE(matmul_shared_bytes(spec.recipe(), big) == 122880u);
  for (const Arch& arch : supported_archs()) {
    INFO(arch.name());
    GLQ_REQUIRE_ERROR(check_variant(spec, 32, arch, big), Status::invalid_argument, "registers", "warps=4",
                      "k_warps=8");
  }
  // The largest reduction a legal CTA can have, with both codebooks at 8 copies, still fits
  // the smallest shared memory (sm_86/sm_89/sm_120: 101376 bytes).
  const Variant widest = variant_of("warps=1 k_warps=16 batch_tiles=4 prefetch=1 table_copies=8");
  const unsigned widest_bytes = matmul_shared_bytes(spec.recipe(), widest);
  CHECK(widest_bytes == 65536u + 15u * 4 * 512);
  CHECK(widest_bytes <= 101376u);
  // One copy of one table plus a 16-warp reduction fits everywhere too.
  const Variant thin = variant_of("warps=1 k_warps=16 batch_tiles=1 prefetch=1 table_copies=1");
  CHECK(matmul_shared_bytes(LinearSpec{4096, 4096, 2}.recipe(), thin) == 4096u + 15u * 512);
  for (const Arch& arch : supported_archs()) {
    INFO(arch.name());
    CHECK_NOTHROW(check_variant(LinearSpec{4096, 4096, 2}, 1, arch, thin));
  }
}

TEST_CASE("bad specs are unsupported_shape errors from the variant space and the generator", "[variant_space][errors]") {
  const Arch arch = parse_arch("sm_90a");
  const Variant v{};
  GLQ_REQUIRE_ERROR(default_variant(LinearSpec{0, 4096, 2}, 1, arch, 132), Status::unsupported_shape, "in_features");
  GLQ_REQUIRE_ERROR(default_variant(LinearSpec{4096, -5, 2}, 1, arch, 132), Status::unsupported_shape, "out_features");
  GLQ_REQUIRE_ERROR(default_variant(LinearSpec{4096, 4096, 1}, 1, arch, 132), Status::unsupported_shape, "bpw 1");
  GLQ_REQUIRE_ERROR(default_variant(LinearSpec{4096, 4096, 9}, 1, arch, 132), Status::unsupported_shape, "bpw 9");
  GLQ_REQUIRE_ERROR(generate_kernel(LinearSpec{4096, 4096, 9}, v, 1, arch), Status::unsupported_shape, "bpw 9");
  GLQ_REQUIRE_ERROR(generate_kernel(LinearSpec{0, 4096, 2}, v, 1, arch), Status::unsupported_shape, "in_features");
  GLQ_REQUIRE_ERROR(generate_kernel(LinearSpec{int64_t(1) << 21, 4096, 2}, v, 1, arch), Status::unsupported_shape,
                    "in_features");
  GLQ_REQUIRE_ERROR(legal_variants(LinearSpec{4096, 4096, 9}, 1, arch, 132), Status::unsupported_shape, "bpw 9");
}

// The transforms run in chunks of TRANSFORM_CHUNK (2048) elements in shared memory, plus a
// strided pass over up to 32 chunks for larger blocks; so shared memory no longer limits the
// block size per architecture. A block of up to 2048 x 32 = 65536 works everywhere; above that
// (features of 131072 or more whose top power of two exceeds 65536) nothing does.
TEST_CASE("the largest Hadamard block limits the shape on every architecture alike", "[variant_space][errors]") {
  REQUIRE(kTransformChunk == 2048);
  REQUIRE(kMaxStridedRadix == 32);
  const LinearSpec wide{8192, 57344, 2};
  REQUIRE(wide.geometry().out_blocks == std::vector<int64_t>{32768, 16384, 8192});
  const LinearSpec deep{57344, 8192, 2};
  // A block of 32768 used to need 136 KiB of shared memory and failed on sm_86/sm_89/sm_120;
  // chunked, it needs one chunk's (2048 + 128) fp32.
  REQUIRE(make_launch_plan(wide, Variant{}, 1).output_chunks.dynamic_shared_bytes == (2048 + 128) * 4);
  REQUIRE(make_launch_plan(deep, Variant{}, 1).input_chunks.dynamic_shared_bytes == (2048 + 128) * 4);
  for (const Arch& arch : supported_archs()) {
    INFO(arch.name());
    CHECK_NOTHROW(default_variant(wide, 1, arch, arch.typical_sm_count()));
    CHECK_NOTHROW(default_variant(deep, 1, arch, arch.typical_sm_count()));
    // One block of 65536 = 32 chunks: the largest the strided pass takes.
    CHECK_NOTHROW(default_variant(LinearSpec{4096, 65536, 2}, 1, arch, arch.typical_sm_count()));
    CHECK_NOTHROW(default_variant(LinearSpec{65536, 4096, 2}, 1, arch, arch.typical_sm_count()));
    // Just under 131072: 65536 + 32768 + ... blocks.
    CHECK_NOTHROW(default_variant(LinearSpec{4096, 131056, 2}, 1, arch, arch.typical_sm_count()));
    // A block of 131072 (64 chunks) is too large on every architecture, on either side.
    GLQ_REQUIRE_ERROR(default_variant(LinearSpec{131072, 4096, 2}, 1, arch, arch.typical_sm_count()),
                      Status::unsupported_shape, "131072", "65536", arch.name().c_str());
    GLQ_REQUIRE_ERROR(default_variant(LinearSpec{4096, 131072, 2}, 1, arch, arch.typical_sm_count()),
                      Status::unsupported_shape, "131072", "65536");
    GLQ_REQUIRE_ERROR(default_variant(LinearSpec{4096, 131072 + 65536, 2}, 1, arch, arch.typical_sm_count()),
                      Status::unsupported_shape, "131072");
  }
  // The legacy single block pads to the next power of two: 65537 features become one block of
  // 131072.
  GLQ_REQUIRE_ERROR(default_variant(LinearSpec{65537, 4096, 2, DType::f16, false, true}, 1, parse_arch("sm_90a"), 132),
                    Status::unsupported_shape, "131072");
  // Any variant of such a spec is illegal, with the same reason.
  GLQ_REQUIRE_ERROR(check_variant(LinearSpec{131072, 4096, 2}, 1, parse_arch("sm_90a"), Variant{}),
                    Status::invalid_argument, "a Hadamard block of 131072", "65536");
  GLQ_REQUIRE_ERROR(generate_kernel(LinearSpec{131072, 4096, 2}, Variant{}, 1, parse_arch("sm_90a")),
                    Status::invalid_argument, "131072");
}

TEST_CASE("the transform plan splits blocks into chunks of 2048 and strided blocks", "[launch]") {
  {
    const TransformPlan plan = make_transform_plan({32768, 16384, 8192});
    REQUIRE(plan.chunks.size() == 16 + 8 + 4);
    for (size_t c = 0; c < plan.chunks.size(); ++c) {
      INFO("chunk " << c);
      CHECK(plan.chunks[c].offset == int64_t(c) * 2048);  // the three blocks are contiguous
      CHECK(plan.chunks[c].length == 2048);
      CHECK_FALSE(plan.chunks[c].final);
    }
    REQUIRE(plan.strided_blocks.size() == 3);
    CHECK(plan.strided_blocks[0] == std::pair<int64_t, int64_t>{0, 32768});
    CHECK(plan.strided_blocks[1] == std::pair<int64_t, int64_t>{32768, 16384});
    CHECK(plan.strided_blocks[2] == std::pair<int64_t, int64_t>{49152, 8192});
  }
  {
    const TransformPlan plan = make_transform_plan({1024, 64});
    REQUIRE(plan.chunks.size() == 2);
    CHECK(plan.chunks[0].offset == 0);
    CHECK(plan.chunks[0].length == 1024);
    CHECK(plan.chunks[0].final);
    CHECK(plan.chunks[1].offset == 1024);
    CHECK(plan.chunks[1].length == 64);
    CHECK(plan.chunks[1].final);
    CHECK(plan.strided_blocks.empty());
  }
  {
    // A block of exactly one chunk is final; larger ones are not. 11008 = 8192 + 2048 + 512 + 256.
    const TransformPlan plan = make_transform_plan({8192, 2048, 512, 256});
    REQUIRE(plan.chunks.size() == 7);
    const int64_t offsets[] = {0, 2048, 4096, 6144, 8192, 10240, 10752};
    const int64_t lengths[] = {2048, 2048, 2048, 2048, 2048, 512, 256};
    const bool finals[] = {false, false, false, false, true, true, true};
    for (size_t c = 0; c < 7; ++c) {
      INFO("chunk " << c);
      CHECK(plan.chunks[c].offset == offsets[c]);
      CHECK(plan.chunks[c].length == lengths[c]);
      CHECK(plan.chunks[c].final == finals[c]);
    }
    REQUIRE(plan.strided_blocks.size() == 1);
    CHECK(plan.strided_blocks[0] == std::pair<int64_t, int64_t>{0, 8192});
  }
  {
    // The largest block the strided pass takes: 32 chunks.
    const TransformPlan plan = make_transform_plan({65536});
    CHECK(plan.chunks.size() == 32);
    REQUIRE(plan.strided_blocks.size() == 1);
    CHECK(plan.strided_blocks[0].second == kTransformChunk * kMaxStridedRadix);
  }
  CHECK(make_transform_plan({}).chunks.empty());
  CHECK(make_transform_plan({}).strided_blocks.empty());
  // Over real geometries: the chunks tile the padded side exactly once, in order.
  for (const LinearSpec& spec : kSpecs) {
    const Geometry g = spec.geometry();
    for (const auto& [blocks, padded] : {std::pair{g.in_blocks, g.n_pad}, std::pair{g.out_blocks, g.m_pad}}) {
      INFO(spec.canonical() << " side of " << padded);
      const TransformPlan plan = make_transform_plan(blocks);
      int64_t next = 0;
      for (const TransformChunk& chunk : plan.chunks) {
        CHECK(chunk.offset == next);
        CHECK(chunk.length <= kTransformChunk);
        CHECK((chunk.length & (chunk.length - 1)) == 0);
        next += chunk.length;
      }
      CHECK(next == padded);
      size_t big_blocks = 0;
      for (int64_t block : blocks) big_blocks += block > kTransformChunk ? 1 : 0;
      CHECK(plan.strided_blocks.size() == big_blocks);
    }
  }
}

TEST_CASE("the launch plan follows the geometry and the variant", "[launch]") {
  const LinearSpec spec{4096, 11008, 3};  // in blocks 4096; out blocks 8192, 2048, 512, 256
  const Variant v = variant_of("warps=8 k_warps=2 k_split=4 batch_tiles=2 prefetch=2 table_copies=4 "
                               "transform_threads=512");
  const LaunchPlan plan = make_launch_plan(spec, v, 32);
  CHECK(plan.n_pad == 4096);
  CHECK(plan.m_pad == 11008);
  CHECK(plan.m_tiles == 688);
  CHECK(plan.k_tiles == 64);
  CHECK(plan.in_chunk_count == 2);
  CHECK(plan.out_chunk_count == 7);
  CHECK(plan.in_strided_columns == 2048);   // one strided block x 2048 columns
  CHECK(plan.out_strided_columns == 2048);
  CHECK(plan.row_tiles_per_cta == 8);
  CHECK(plan.k_split == 4);
  CHECK(plan.batch_columns_per_cta == 16);
  CHECK(plan.input_chunks.name == "glq_input_chunks");
  CHECK(plan.input_strided.name == "glq_input_strided");
  CHECK(plan.matmul.name == "glq_matmul");
  CHECK(plan.output_chunks.name == "glq_output_chunks");
  CHECK(plan.output_strided.name == "glq_output_strided");
  CHECK(plan.repack_e81b.name == "glq_repack_e81b");
  CHECK(plan.input_chunks.name == kInputChunksKernel);
  CHECK(plan.output_strided.name == kOutputStridedKernel);
  CHECK(plan.matmul.threads == 32 * 8 * 2);
  for (const KernelLaunch* transform : {&plan.input_chunks, &plan.input_strided, &plan.output_chunks,
                                        &plan.output_strided}) {
    INFO(transform->name);
    CHECK(transform->threads == 512);
  }
  CHECK(plan.repack_e81b.threads == 256);
  CHECK(plan.input_chunks.dynamic_shared_bytes == (2048 + 128) * 4);
  CHECK(plan.output_chunks.dynamic_shared_bytes == (2048 + 128) * 4);
  CHECK(plan.input_strided.dynamic_shared_bytes == 0);
  CHECK(plan.output_strided.dynamic_shared_bytes == 0);
  CHECK(plan.matmul.dynamic_shared_bytes == 2 * 256 * 4 * 16 + 1 * 8 * 2 * 4 * 32 * 4);
  // Grids: batch 20 -> 2 column groups of 16; 688 tiles / 8 per CTA = 86 row groups; 4 splits.
  const Dim3 g = plan.matmul_grid(20);
  CHECK(g.x == 2);
  CHECK(g.y == 86);
  CHECK(g.z == 4);
  // The chunk passes: one CTA per (chunk, batch row); the strided passes: one thread per
  // column of the strided blocks (2048 / 512 threads = 4 CTAs) per batch row.
  CHECK(plan.input_chunks_grid(20).x == 2);
  CHECK(plan.input_chunks_grid(20).y == 20);
  CHECK(plan.input_chunks_grid(20).z == 1);
  CHECK(plan.input_strided_grid(20).x == 4);
  CHECK(plan.input_strided_grid(20).y == 20);
  CHECK(plan.output_chunks_grid(3).x == 7);
  CHECK(plan.output_chunks_grid(3).y == 3);
  CHECK(plan.output_strided_grid(3).x == 4);
  CHECK(plan.output_strided_grid(3).y == 3);
  CHECK(plan.repack_grid(plan.m_tiles).x == (688u * 64u * 32u + 255u) / 256u);
  // Workspace: family 1's arrival counters (which a family 2 forward must leave alone, as the
  // linear's bucket 1 may run family 1 in the same workspace), u, the input's staged fp32, the
  // partial sums, the output's staged fp32.
  CHECK(plan.arrival_bytes() == kArrivalBytes);
  CHECK(plan.activation_bytes(20) == size_t(20) * 4096 * 2);
  CHECK(plan.input_staged_bytes(20) == size_t(20) * 4096 * 4);
  CHECK(plan.partial_bytes(20) == size_t(4) * 20 * 11008 * 4);
  CHECK(plan.output_staged_bytes(20) == size_t(20) * 11008 * 4);
  CHECK(plan.workspace_bytes(20) == kArrivalBytes + plan.activation_bytes(20) + plan.input_staged_bytes(20) +
                                        plan.partial_bytes(20) + plan.output_staged_bytes(20));
  // A partial last CTA: 688 row tiles over 32 per CTA.
  CHECK(make_launch_plan(spec, parse_variant("warps=32 k_warps=1", v), 32).matmul_grid(1).y == 22);
}

TEST_CASE("a launch plan without blocks above a chunk has no strided passes", "[launch]") {
  // 2048 in (one block of 2048), 1024 out (one block of 1024): every chunk is final.
  const LaunchPlan plan = make_launch_plan(LinearSpec{2048, 1024, 2}, variant_of("k_split=2"), 1);
  CHECK(plan.in_chunk_count == 1);
  CHECK(plan.out_chunk_count == 1);
  CHECK(plan.in_strided_columns == 0);
  CHECK(plan.out_strided_columns == 0);
  CHECK(plan.input_chunks.name == "glq_input_chunks");
  CHECK(plan.output_chunks.name == "glq_output_chunks");
  CHECK(plan.input_strided.name.empty());
  CHECK(plan.output_strided.name.empty());
  CHECK(plan.input_strided.threads == 0);
  CHECK(plan.output_strided.threads == 0);
  CHECK(plan.input_chunks.dynamic_shared_bytes == (2048 + 128) * 4);
  CHECK(plan.output_chunks.dynamic_shared_bytes == (1024 + 64) * 4);
  CHECK(plan.input_staged_bytes(7) == 0);
  CHECK(plan.output_staged_bytes(7) == 0);
  CHECK(plan.workspace_bytes(7) == kArrivalBytes + plan.activation_bytes(7) + plan.partial_bytes(7));
  CHECK(plan.partial_bytes(7) == size_t(2) * 7 * 1024 * 4);
  // (input_strided_grid / output_strided_grid are not called here: with no strided pass their
  // divisor, the strided kernel's thread count, is 0.)

  // Mixed: 5000 in pads to 5056 = 4096 + 512 + 256 + 128 + 64 (strided); 1000 out pads to
  // 1008 = 512 + ... + 16 (not).
  const LaunchPlan mixed = make_launch_plan(LinearSpec{5000, 1000, 2}, Variant{}, 1);
  CHECK(mixed.in_chunk_count == 2 + 4);
  CHECK(mixed.out_chunk_count == 6);
  CHECK(mixed.input_strided.name == "glq_input_strided");
  CHECK(mixed.output_strided.name.empty());
  CHECK(mixed.output_chunks.dynamic_shared_bytes == (512 + 32) * 4);
  // Every part of the workspace starts 256-byte aligned: 3 x 5056 fp16 = 30336 -> 30464.
  CHECK(mixed.activation_bytes(3) == 30464);
  CHECK(mixed.input_staged_bytes(3) == size_t(3) * 5056 * 4);
  CHECK(mixed.partial_bytes(3) == 12288);  // 3 x 1008 fp32 = 12096 -> 12288
  CHECK(mixed.output_staged_bytes(3) == 0);
  for (size_t part : {mixed.activation_bytes(3), mixed.input_staged_bytes(3), mixed.partial_bytes(3)}) {
    CHECK(part % 256 == 0);
  }
}

TEST_CASE("variant overrides start from the default of the family they name", "[variant_space]") {
  const LinearSpec spec{4096, 11008, 3};
  const Arch hopper = parse_arch("sm_90a"), ampere = parse_arch("sm_86");
  auto over = [&](const char* parts, int bucket, const Arch& arch) {
    return variant_over_default(parts, spec, bucket, arch, arch.typical_sm_count());
  };
  auto family_default = [&](MatmulFamily family, int bucket, const Arch& arch) {
    return default_variant(spec, bucket, arch, arch.typical_sm_count(), family);
  };
  // No family named: the parts go over the automatic default.
  CHECK(over("prefetch=1", 256, hopper) == parse_variant("prefetch=1", family_default(MatmulFamily::automatic, 256, hopper)));
  CHECK(over("", 16, ampere) == family_default(MatmulFamily::automatic, 16, ampere));
  // family=2 at a family 3 bucket, family=3 where wgmma is missing or turned off.
  CHECK(over("family=2", 256, hopper) == family_default(MatmulFamily::direct, 256, hopper));
  CHECK(over("family=2", 256, hopper).family == 2);
  CHECK(over("family=3", 256, ampere) == family_default(MatmulFamily::staged, 256, ampere));
  CHECK(over("family=3", 256, ampere).wgmma == 0);
  const Variant hopper_mma = over("family=3 wgmma=0", 256, hopper);
  CHECK(hopper_mma == parse_variant("wgmma=0", family_default(MatmulFamily::staged, 256, hopper)));
  CHECK_FALSE(variant_violation(spec, 256, hopper, hopper_mma).has_value());
}
