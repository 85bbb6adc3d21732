// LinearSpec, Variant and batch buckets: canonical text, parsing, and bad input.
#include <catch2/catch.hpp>

#include <climits>
#include <set>
#include <string>
#include <vector>

#include "codegen/spec.hpp"
#include "codegen/variant.hpp"
#include "test_helpers.hpp"
#include "format/geometry.hpp"

using namespace glqjit;

TEST_CASE("LinearSpec canonical text names every field", "[spec]") {
  LinearSpec spec{4096, 11008, 3, DType::f16, false, false};
  CHECK(spec.canonical() == "in=4096 out=11008 bpw=3 dtype=fp16 bias=0 rht=blocks");
  spec.dtype = DType::bf16;
  spec.has_bias = true;
  spec.legacy_single_block = true;
  CHECK(spec.canonical() == "in=4096 out=11008 bpw=3 dtype=bf16 bias=1 rht=single");
}

TEST_CASE("LinearSpec geometry pads and splits as FORMAT.md section 5 says", "[spec]") {
  const LinearSpec spec{4096, 11008, 2};
  const Geometry g = spec.geometry();
  CHECK(g.n_pad == 4096);
  CHECK(g.m_pad == 11008);
  CHECK(g.in_blocks == std::vector<int64_t>{4096});
  CHECK(g.out_blocks == std::vector<int64_t>{8192, 2048, 512, 256});

  const Geometry odd = LinearSpec{5000, 1000, 2}.geometry();
  CHECK(odd.n_pad == 5056);
  CHECK(odd.m_pad == 1008);
  CHECK(odd.in_blocks == std::vector<int64_t>{4096, 512, 256, 128, 64});
  CHECK(odd.out_blocks == std::vector<int64_t>{512, 256, 128, 64, 32, 16});

  const Geometry legacy = LinearSpec{5000, 1000, 2, DType::f16, false, true}.geometry();
  CHECK(legacy.n_pad == 8192);
  CHECK(legacy.m_pad == 1024);
  CHECK(legacy.in_blocks == std::vector<int64_t>{8192});
  CHECK(legacy.out_blocks == std::vector<int64_t>{1024});

  const Geometry tiny = LinearSpec{1, 1, 2}.geometry();
  CHECK(tiny.n_pad == 64);
  CHECK(tiny.m_pad == 16);
}

TEST_CASE("recipes per bpw", "[spec]") {
  using K = StageKind;
  const std::vector<std::vector<K>> expected = {
      {K::e8p},                        // 2
      {K::e8p, K::e81b},               // 3
      {K::e8p, K::e8p},                // 4
      {K::e8p, K::e8p, K::e81b},       // 5
      {K::e8p, K::e8p, K::e8p},        // 6
      {K::e8p, K::e8p, K::e8p, K::e81b},  // 7
      {K::e8p, K::e8p, K::e8p, K::e8p},   // 8
  };
  for (int bpw = 2; bpw <= 8; ++bpw) {
    INFO("bpw " << bpw);
    CHECK(LinearSpec{4096, 4096, bpw}.recipe().stages == expected[bpw - 2]);
  }
}

TEST_CASE("bad shapes and bpw are unsupported_shape errors naming the value", "[spec][errors]") {
  GLQ_REQUIRE_ERROR((LinearSpec{0, 4096, 2}.geometry()), Status::unsupported_shape, "in_features", "0");
  GLQ_REQUIRE_ERROR((LinearSpec{4096, 0, 2}.geometry()), Status::unsupported_shape, "out_features", "0");
  GLQ_REQUIRE_ERROR((LinearSpec{-64, 4096, 2}.geometry()), Status::unsupported_shape, "in_features", "-64");
  GLQ_REQUIRE_ERROR((LinearSpec{4096, -1, 2}.geometry()), Status::unsupported_shape, "out_features", "-1");
  GLQ_REQUIRE_ERROR((LinearSpec{kMaxFeatures + 1, 4096, 2}.geometry()), Status::unsupported_shape, "in_features",
                    std::to_string(kMaxFeatures + 1).c_str());
  GLQ_REQUIRE_ERROR((LinearSpec{4096, int64_t(1) << 40, 2}.geometry()), Status::unsupported_shape, "out_features");
  GLQ_REQUIRE_ERROR((LinearSpec{4096, INT64_MAX, 2}.geometry()), Status::unsupported_shape, "out_features");
  GLQ_REQUIRE_ERROR((LinearSpec{4096, 4096, 1}.recipe()), Status::unsupported_shape, "bpw 1", "2..8");
  GLQ_REQUIRE_ERROR((LinearSpec{4096, 4096, 9}.recipe()), Status::unsupported_shape, "bpw 9", "2..8");
  GLQ_REQUIRE_ERROR((LinearSpec{4096, 4096, 0}.recipe()), Status::unsupported_shape, "bpw 0");
  GLQ_REQUIRE_ERROR((LinearSpec{4096, 4096, -3}.recipe()), Status::unsupported_shape, "bpw -3");
  // The largest accepted size still works.
  CHECK(LinearSpec{kMaxFeatures, kMaxFeatures, 2}.geometry().n_pad == kMaxFeatures);
}

TEST_CASE("Variant canonical text names every knob and round-trips through parse_variant", "[variant]") {
  const Variant v{.family = 3, .wgmma = 1, .warps = 8, .k_warps = 2, .k_split = 4, .batch_tiles = 2, .prefetch = 3,
                  .ctas_per_sm = 2, .table_copies = 4, .transform_threads = 512};
  CHECK(v.canonical() ==
        "family=3 wgmma=1 warps=8 k_warps=2 k_split=4 batch_tiles=2 prefetch=3 ctas_per_sm=2 table_copies=4 "
        "transform_threads=512");
  CHECK(parse_variant(v.canonical()) == v);
  CHECK(parse_variant(Variant{}.canonical()) == Variant{});
  // The knobs in their canonical order, whatever the values.
  const std::string text = Variant{}.canonical();
  size_t at = 0;
  for (const char* knob : {"family=", "wgmma=", "warps=", "k_warps=", "k_split=", "batch_tiles=", "prefetch=", "ctas_per_sm=", "table_copies=",
                           "transform_threads="}) {
    INFO(knob << " in \"" << text << "\"");
    const size_t found = text.find(knob, at);
    REQUIRE(found != std::string::npos);
    at = found + 1;
  }
  // Every knob takes part in equality.
  for (const char* change : {"family=3", "wgmma=1", "warps=2", "k_warps=2", "k_split=2", "batch_tiles=2", "prefetch=3", "ctas_per_sm=2", "table_copies=4",
                             "transform_threads=256"}) {
    INFO(change);
    CHECK_FALSE(parse_variant(change) == Variant{});
  }
}

TEST_CASE("Variant canonical text stays byte-identical", "[variant]") {
  // This text is part of every cache key and every stored tuning record: a change orphans them.
  CHECK(Variant{}.canonical() ==
        "family=2 wgmma=0 warps=4 k_warps=1 k_split=1 batch_tiles=1 prefetch=2 ctas_per_sm=0 table_copies=8 "
        "transform_threads=128");
  CHECK(Variant{.family = 1, .warps = 1, .k_warps = 16, .k_split = 12, .prefetch = 1, .ctas_per_sm = 2,
                .table_copies = 4}
            .canonical() ==
        "family=1 wgmma=0 warps=1 k_warps=16 k_split=12 batch_tiles=1 prefetch=1 ctas_per_sm=2 table_copies=4 "
        "transform_threads=128");
  CHECK(Variant{.family = 3, .wgmma = 1, .warps = 8, .k_split = 256, .batch_tiles = 16, .prefetch = 4,
                .ctas_per_sm = 1, .table_copies = 1, .transform_threads = 1024}
            .canonical() ==
        "family=3 wgmma=1 warps=8 k_warps=1 k_split=256 batch_tiles=16 prefetch=4 ctas_per_sm=1 table_copies=1 "
        "transform_threads=1024");
  // Values are printed, not judged.
  CHECK(Variant{.warps = -3, .k_split = 0}.canonical() ==
        "family=2 wgmma=0 warps=-3 k_warps=1 k_split=0 batch_tiles=1 prefetch=2 ctas_per_sm=0 table_copies=8 "
        "transform_threads=128");
}

TEST_CASE("variant_knobs names every knob once in canonical order with its meaning", "[variant]") {
  std::vector<std::string_view> names;
  std::set<std::string> changed;
  for (const VariantKnob& knob : variant_knobs()) {
    INFO(knob.name);
    names.push_back(knob.name);
    CHECK_FALSE(knob.meaning.empty());
    Variant v{};
    v.*knob.member = 77;
    CHECK(parse_variant(std::string(knob.name) + "=77") == v);
    CHECK(v.canonical().find(std::string(knob.name) + "=77") != std::string::npos);
    changed.insert(v.canonical());
  }
  CHECK(names == std::vector<std::string_view>{"family", "wgmma", "warps", "k_warps", "k_split", "batch_tiles",
                                               "prefetch", "ctas_per_sm", "table_copies", "transform_threads"});
  // Each row sets its own member.
  CHECK(changed.size() == names.size());
}

TEST_CASE("parse_variant overrides a subset of knobs over a base", "[variant]") {
  const Variant base{.warps = 4, .k_warps = 2, .k_split = 16, .batch_tiles = 1, .prefetch = 4, .table_copies = 8,
                     .transform_threads = 256};
  const Variant v = parse_variant("warps=8 k_split=4", base);
  CHECK(v.warps == 8);
  CHECK(v.k_warps == 2);
  CHECK(v.k_split == 4);
  CHECK(v.batch_tiles == 1);
  CHECK(v.prefetch == 4);
  CHECK(v.table_copies == 8);
  CHECK(v.transform_threads == 256);
  Variant expected = base;
  expected.batch_tiles = 2;
  expected.prefetch = 1;
  CHECK(parse_variant("prefetch=1,batch_tiles=2", base) == expected);
  expected = base;
  expected.warps = 2;
  CHECK(parse_variant("  warps=2 ,, ", base) == expected);
  expected = base;
  expected.k_warps = 8;
  expected.table_copies = 2;
  CHECK(parse_variant("table_copies=2 k_warps=8", base) == expected);
  CHECK(parse_variant("", base) == base);
  // Later parts win.
  CHECK(parse_variant("warps=2 warps=16", base).warps == 16);
  // Values are parsed, not judged: legality is variant_space's business.
  CHECK(parse_variant("table_copies=3 k_warps=64", base).table_copies == 3);
  CHECK(parse_variant("table_copies=3 k_warps=64", base).k_warps == 64);
}

TEST_CASE("parse_variant rejects unknown knobs and non-integers", "[variant][errors]") {
  // The message lists every knob.
  GLQ_REQUIRE_ERROR(parse_variant("tiles=4"), Status::invalid_argument, "'tiles'",
                    "the knobs are family, wgmma, warps, k_warps, k_split, batch_tiles, prefetch, ctas_per_sm, "
                    "table_copies, transform_threads");
  GLQ_REQUIRE_ERROR(parse_variant("warps=4 bogus=1"), Status::invalid_argument, "bogus");
  GLQ_REQUIRE_ERROR(parse_variant("table_copy=4"), Status::invalid_argument, "table_copy");
  GLQ_REQUIRE_ERROR(parse_variant("warps=four"), Status::invalid_argument, "warps=four");
  GLQ_REQUIRE_ERROR(parse_variant("warps="), Status::invalid_argument, "warps=");
  GLQ_REQUIRE_ERROR(parse_variant("warps"), Status::invalid_argument, "warps");
  GLQ_REQUIRE_ERROR(parse_variant("warps=4x"), Status::invalid_argument, "warps=4x");
  GLQ_REQUIRE_ERROR(parse_variant("k_split=2.5"), Status::invalid_argument, "k_split=2.5");
  GLQ_REQUIRE_ERROR(parse_variant("k_warps=two"), Status::invalid_argument, "k_warps=two");
  GLQ_REQUIRE_ERROR(parse_variant("k_split=99999999999"), Status::invalid_argument, "k_split");
  GLQ_REQUIRE_ERROR(parse_variant("=4"), Status::invalid_argument);
}

TEST_CASE("bucket_for rounds up to powers of two", "[variant]") {
  CHECK(kMaxBatch == 65535);
  CHECK(bucket_for(1) == 1);
  CHECK(bucket_for(2) == 2);
  CHECK(bucket_for(3) == 4);
  CHECK(bucket_for(8) == 8);
  CHECK(bucket_for(9) == 16);
  CHECK(bucket_for(200) == 256);
  CHECK(bucket_for(32769) == 65536);
  CHECK(bucket_for(kMaxBatch) == 65536);
  for (int b = 1; b <= 4096; ++b) {
    const int bucket = bucket_for(b);
    if (!(bucket >= b && bucket < 2 * b && (bucket & (bucket - 1)) == 0)) FAIL("bucket_for(" << b << ") = " << bucket);
  }
}

TEST_CASE("bucket_for rejects a batch outside 1..kMaxBatch", "[variant][errors]") {
  // Above 2^30 the doubling used to overflow and never return: now every out-of-range batch is
  // an invalid_argument error naming it and the range.
  for (int batch : {0, -1, -4, INT_MIN, kMaxBatch + 1, 65536, 1 << 20, (1 << 30) + 1, INT_MAX}) {
    INFO("batch " << batch);
    GLQ_REQUIRE_ERROR(bucket_for(batch), Status::invalid_argument, ("batch " + std::to_string(batch)).c_str(),
                      "1..65535");
  }
}

TEST_CASE("a group's spec puts its linears' rows one after another", "[spec][group]") {
  const LinearSpec group = group_of({LinearSpec{1000, 200, 4}, LinearSpec{1000, 104, 4}, LinearSpec{1000, 56, 4}});
  CHECK(group.canonical() == "in=1000 out=360 bpw=4 dtype=fp16 bias=0 rht=blocks shards=200,104,56");
  const Geometry g = group.geometry();
  CHECK(g.out_features == 360);
  CHECK(g.m_pad == 208 + 112 + 64);
  CHECK(g.out_blocks == std::vector<int64_t>{128, 64, 16, 64, 32, 16, 64});
  CHECK(group.shard_first_row(0) == 0);
  CHECK(group.shard_first_row(2) == 320);
  CHECK(group.shard(1) == LinearSpec{1000, 104, 4});

  GLQ_REQUIRE_ERROR(group_of({LinearSpec{4096, 1024, 2}, LinearSpec{2048, 1024, 2}}), Status::invalid_argument,
                    "linear 1", "share in_features and dtype");
  GLQ_REQUIRE_ERROR(group_of({LinearSpec{4096, 1024, 2}, LinearSpec{4096, 1024, 2, DType::bf16}}),
                    Status::invalid_argument, "share in_features and dtype");
  GLQ_REQUIRE_ERROR(group_of({}), Status::invalid_argument, "1 to 8 linears, not 0");
  GLQ_REQUIRE_ERROR(group_of(std::vector<LinearSpec>(9, LinearSpec{64, 64, 2})), Status::invalid_argument,
                    "not 9");
  GLQ_REQUIRE_ERROR(group_of({group}), Status::invalid_argument, "cannot itself be a group");
}
