#include "codegen/source.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

#include "codegen/variant_space.hpp"
#include "format/codebook.hpp"
#include "support/sha256.hpp"
#include "templates/embedded.hpp"

namespace glqjit {
namespace {

std::string int_array(const std::string& name, const std::vector<int64_t>& values) {
  return fmt::format("__constant__ int {}[{}] = {{{}}};\n", name, values.size(), fmt::join(values, ", "));
}

// An array the kernels index only by compile-time constants (it becomes immediates).
std::string constexpr_array(const std::string& name, const std::vector<int64_t>& values) {
  return fmt::format("constexpr int {}[{}] = {{{}}};\n", name, values.size(), fmt::join(values, ", "));
}

int64_t log2_of(int64_t power_of_two) { return std::countr_zero(uint64_t(power_of_two)); }

// The chunk and strided-pass tables of one side (templates/transforms.cuh). A side without
// strided blocks still defines its strided tables (one unused entry): the kernel is compiled
// but never launched.
std::string transform_tables(const char* side, const std::vector<int64_t>& blocks) {
  const TransformPlan plan = make_transform_plan(blocks);
  std::vector<int64_t> offsets, logs, finals, strided_offsets, strided_logs;
  for (const TransformChunk& chunk : plan.chunks) {
    offsets.push_back(chunk.offset);
    logs.push_back(log2_of(chunk.length));
    finals.push_back(chunk.final ? 1 : 0);
  }
  for (const auto& [offset, block] : plan.strided_blocks) {
    strided_offsets.push_back(offset);
    strided_logs.push_back(log2_of(block / kTransformChunk));
  }
  if (strided_offsets.empty()) {
    strided_offsets.push_back(0);
    strided_logs.push_back(0);
  }
  std::string text = fmt::format("// {} side: Hadamard blocks {} (FORMAT.md 5)\n", side, fmt::join(blocks, ", "));
  text += int_array(fmt::format("{}_CHUNK_OFFSET", side), offsets);
  text += int_array(fmt::format("{}_CHUNK_LOG2", side), logs);
  text += int_array(fmt::format("{}_CHUNK_FINAL", side), finals);
  text += int_array(fmt::format("{}_STRIDED_OFFSET", side), strided_offsets);
  text += int_array(fmt::format("{}_STRIDED_LOG2R", side), strided_logs);
  return text;
}

uint32_t f16_pair(double low, double high) {
  return uint32_t(float_to_bits(DType::f16, float(low))) | uint32_t(float_to_bits(DType::f16, float(high))) << 16;
}

// A codebook as 256 rows of four fp16 pairs, one row per line with its values in a comment.
template <class Row>
std::string codebook_table(const char* name, const char* what, Row&& row) {
  std::string text = fmt::format("// {}\n__device__ const uint4 {}[256] = {{\n", what, name);
  for (int code = 0; code < 256; ++code) {
    const std::array<double, 8> v = row(code);
    text += fmt::format("    {{0x{:08x}, 0x{:08x}, 0x{:08x}, 0x{:08x}}},  // {:3}: {}\n", f16_pair(v[0], v[1]),
                        f16_pair(v[2], v[3]), f16_pair(v[4], v[5]), f16_pair(v[6], v[7]), code, fmt::join(v, " "));
  }
  return text + "};\n";
}

// Both tables, always defined (the kernels name both; shared memory holds only those a recipe
// uses). Formatted once per process: they were most of the ~0.7 ms a kernel set's source took.
const std::string& codebook_tables() {
  static const std::string tables =
      codebook_table("E8P_ABS_HALVES", "E8P: ABS[a] / 2 as fp16 pairs (FORMAT.md 2.1)",
                     [](int a) {
                       std::array<double, 8> v{};
                       for (int i = 0; i < 8; ++i) v[i] = e8p_abs_rows()[a][i] / 2.0;
                       return v;
                     }) +
      codebook_table("E81B_HALVES", "E81B rows as fp16 pairs (FORMAT.md 3)", [](int code) { return e81b_rows()[code]; });
  return tables;
}

// Family 1's whole-block tables: offsets and log2 sizes of each side's Hadamard blocks.
std::string block_tables(const char* side, const std::vector<int64_t>& blocks) {
  std::vector<int64_t> offsets, logs;
  int64_t offset = 0;
  for (int64_t block : blocks) {
    offsets.push_back(offset);
    logs.push_back(log2_of(block));
    offset += block;
  }
  return fmt::format("constexpr int {}_BLOCKS = {};\n", side, blocks.size()) +
         int_array(fmt::format("{}_BLOCK_OFFSET", side), offsets) + int_array(fmt::format("{}_BLOCK_LOG2", side), logs);
}

// Family 1's linears (one, or a group's): where each starts in the kernel's rows, its outputs,
// and its first column in y.
std::string shard_tables(const LinearSpec& spec) {
  std::vector<int64_t> first_rows, out_features, y_columns;
  int64_t y_column = 0;
  for (int s = 0; s < spec.shard_count(); ++s) {
    first_rows.push_back(spec.shard_first_row(s));
    out_features.push_back(spec.shard(s).out_features);
    y_columns.push_back(y_column);
    y_column += out_features.back();
  }
  return fmt::format("// {}\nconstexpr int SHARDS = {};\n",
                     spec.is_group() ? "a group of linears that read the same input, one after another in the rows"
                                     : "one linear",
                     spec.shard_count()) +
         constexpr_array("SHARD_FIRST_ROW", first_rows) + constexpr_array("SHARD_OUT_FEATURES", out_features) +
         constexpr_array("SHARD_Y_COLUMN", y_columns);
}

const char* family_description(const Variant& variant) {
  if (variant.family == 1) return "family 1, the whole forward in one kernel";
  if (variant.family == 2) return "family 2, mma.sync";
  return variant.wgmma ? "family 3, wgmma" : "family 3, mma.sync";
}

std::string stage_kind_function(const Recipe& recipe) {
  std::string cases;
  for (size_t s = 0; s < recipe.stages.size(); ++s) {
    cases += fmt::format("    case {}: return StageKind::{};\n", s, recipe.stages[s] == StageKind::e8p ? "e8p" : "e81b");
  }
  return fmt::format(
      "namespace glq {{\n"
      "enum class StageKind {{ e8p, e81b }};\n"
      "__device__ constexpr StageKind stage_kind(int stage) {{\n"
      "  switch (stage) {{\n{}    default: return StageKind::e8p;\n  }}\n}}\n"
      "}}  // namespace glq\n",
      cases);
}

// glq::wgmma_rs for N batch columns: D (64 x N fp32; per thread the N / 2 values mma.sync would
// hold for its warp's 16 rows) += A (the warp's 16 rows x 16 k in fp16, as mma.sync's A
// fragment) * B (16 k x N fp16 in shared memory, K-major, given by a matrix descriptor).
std::string wgmma_instruction(int n) {
  const int accumulators = n / 2;
  std::string d_registers, d_operands;
  for (int i = 0; i < accumulators; ++i) {
    const bool new_line = i > 0 && i % 16 == 0;
    d_registers += fmt::format("{}%{}", i == 0 ? "" : new_line ? ", \"\n      \"" : ", ", i);
    d_operands += fmt::format("{}\"+f\"(d[{}])", i == 0 ? "" : i % 8 == 0 ? ",\n        " : ", ", i);
  }
  const int a0 = accumulators, descriptor = accumulators + 4, accumulate = accumulators + 5;
  return fmt::format(
      "namespace glq {{\n"
      "// D (64 x {n} fp32) += A (16 k of the warpgroup's 64 rows, fp16, from registers) * B (16 k x {n}\n"
      "// fp16, shared memory, K-major, described by b).\n"
      "__device__ __forceinline__ void wgmma_rs(float (&d)[{n2}], const unsigned (&a)[4], unsigned long long b) {{\n"
      "  asm volatile(\n"
      "      \"{{\\n.reg .pred accumulate;\\nsetp.ne.b32 accumulate, %{accumulate}, 0;\\n\"\n"
      "      \"wgmma.mma_async.sync.aligned.m64n{n}k16.f32.f16.f16 {{\"\n"
      "      \"{d}}}, \"\n"
      "      \"{{%{a0}, %{a1}, %{a2}, %{a3}}}, %{descriptor}, accumulate, 1, 1, 0;\\n}}\\n\"\n"
      "      : {operands}\n"
      "      : \"r\"(a[0]), \"r\"(a[1]), \"r\"(a[2]), \"r\"(a[3]), \"l\"(b), \"r\"(1));\n"
      "}}\n"
      "}}  // namespace glq\n",
      fmt::arg("n2", accumulators), fmt::arg("accumulate", accumulate), fmt::arg("n", n), fmt::arg("d", d_registers),
      fmt::arg("a0", a0), fmt::arg("a1", a0 + 1), fmt::arg("a2", a0 + 2), fmt::arg("a3", a0 + 3),
      fmt::arg("descriptor", descriptor), fmt::arg("operands", d_operands));
}

std::string specialization(const GeneratedKernel& k) {
  const Geometry geometry = k.spec.geometry();
  const Recipe recipe = k.spec.recipe();
  const bool has_e8p = uses(recipe, StageKind::e8p);
  const bool has_e81b = uses(recipe, StageKind::e81b);
  const LaunchPlan& plan = k.launch;
  std::string text = fmt::format(
      "// glqjit kernel set, generated: do not edit.\n"
      "//   layer:   {}\n"
      "//   variant: {}\n"
      "//   batch bucket {}, {}\n"
      "// {}\n\n"
      "// ---- specialization ----\n",
      k.spec.canonical(), k.variant.canonical(), k.batch_bucket, k.arch.name(),
      k.variant.family == 1
          ? fmt::format("Kernels: glq_fused ({}); glq_repack_e81b once at plan.", family_description(k.variant))
          : fmt::format("Kernels: glq_input_chunks (-> glq_input_strided) -> glq_matmul ({}) -> glq_output_chunks\n"
                        "// (-> glq_output_strided); the strided passes only where a Hadamard block exceeds\n"
                        "// TRANSFORM_CHUNK; glq_repack_e81b once at plan.",
                        family_description(k.variant)));
  text += fmt::format("constexpr int IN_FEATURES = {};\n", geometry.in_features);
  text += fmt::format("constexpr int OUT_FEATURES = {};\n", geometry.out_features);
  text += fmt::format("constexpr int N_PAD = {};\n", geometry.n_pad);
  text += fmt::format("constexpr int M_PAD = {};\n", geometry.m_pad);
  text += fmt::format("constexpr int M_TILES = {};  // 16-row tiles\n", plan.m_tiles);
  text += fmt::format("constexpr int K_TILES = {};  // 64-column tiles\n", plan.k_tiles);
  text += fmt::format("constexpr int STAGES = {};  // bpw {}\n", recipe.stages.size(), recipe.bpw);
  text += fmt::format("constexpr bool HAS_E8P = {};\n", has_e8p);
  text += fmt::format("constexpr bool HAS_E81B = {};\n", has_e81b);
  text += fmt::format("constexpr bool ACT_IS_BF16 = {};\n", k.spec.dtype == DType::bf16);
  text += fmt::format("constexpr bool HAS_BIAS = {};\n", k.spec.has_bias);
  text += fmt::format("constexpr bool HAS_PDL = {};  // programmatic dependent launch\n", k.arch.major >= 9);
  text += fmt::format("constexpr bool HAS_BULK_PREFETCH = {};  // cp.async.bulk.prefetch.L2\n", k.arch.major >= 9);
  text += fmt::format("constexpr bool U_IN_FRAGMENT_ORDER = {};  // see u_position\n", k.variant.family == 3);
  text += fmt::format("constexpr int BATCH_BUCKET = {};\n", k.batch_bucket);
  text += fmt::format("constexpr int MATMUL_WARPS = {};\n", k.variant.warps);
  text += fmt::format("constexpr int K_WARPS = {};\n", k.variant.k_warps);
  text += fmt::format("constexpr int K_SPLIT = {};\n", k.variant.k_split);
  text += fmt::format("constexpr int K_TILES_PER_SPLIT = {};\n", (plan.k_tiles + k.variant.k_split - 1) / k.variant.k_split);
  text += fmt::format("constexpr int BATCH_TILES = {};\n", k.variant.batch_tiles);
  text += fmt::format("constexpr int PREFETCH = {};\n", k.variant.prefetch);
  text += fmt::format("constexpr int CTAS_PER_SM = {};  // glq_matmul's launch bounds; 0: ptxas's choice\n",
                      k.variant.ctas_per_sm);
  text += fmt::format("constexpr int TABLE_COPIES = {};\n", k.variant.table_copies);
  text += fmt::format("constexpr int TABLE_COPIES_LOG2 = {};\n", log2_of(k.variant.table_copies));
  text += fmt::format("constexpr int TRANSFORM_THREADS = {};\n", k.variant.transform_threads);
  text += fmt::format("constexpr int TRANSFORM_CHUNK = {};\n", kTransformChunk);
  if (k.variant.family == 3) {
    text += fmt::format("constexpr int CTA_COLUMNS = {};  // batch columns per CTA\n", 8 * k.variant.batch_tiles);
    text += fmt::format("constexpr int TILE_BUFFERS = {};  // staged k-tiles in the shared-memory ring\n",
                        staged_tile_buffers(k.variant));
    text += fmt::format("constexpr int WARP_WORD_BYTES = {};  // a row tile's words of one k-tile\n",
                        warp_word_bytes(recipe));
  }
  if (k.variant.family == 1) {
    const FusedLayout layout = fused_layout(k.spec, k.variant, k.batch_bucket);
    text += fmt::format("constexpr int FUSED_ROWS = {};  // batch columns of u a CTA keeps\n", layout.rows);
    text += fmt::format("constexpr int U_COLUMNS = {};  // the CTA's K slice\n", layout.u_columns);
    text += fmt::format("constexpr int U_ROW_BYTES = {};\n", layout.u_row_bytes);
    text += fmt::format("constexpr int TRANSFORM_ROWS = {};  // batch rows each Hadamard pass takes at once\n",
                        layout.transform_rows);
    text += fmt::format("constexpr int U_OFFSET = {};  // shared memory: codebooks, u, SV, scratch\n", layout.u_offset);
    text += fmt::format("constexpr int SV_OFFSET = {};\n", layout.sv_offset);
    text += fmt::format("constexpr int SV_COLUMNS = {};  // SV of the input blocks a CTA's slice overlaps\n",
                        layout.sv_columns);
    text += fmt::format("constexpr int SCRATCH_OFFSET = {};\n", layout.scratch_offset);
    text += fmt::format("constexpr int FLAGS_OFFSET = {};\n", layout.flags_offset);
    text += fmt::format("constexpr int ARRIVAL_BYTES = {};  // workspace: arrival counters, then partial sums\n",
                        kArrivalBytes);
  }
  if (k.variant.wgmma) text += wgmma_instruction(8 * k.variant.batch_tiles);
  text += stage_kind_function(recipe);
  text += transform_tables("IN", geometry.in_blocks);
  text += transform_tables("OUT", geometry.out_blocks);
  if (k.variant.family == 1) {
    text += block_tables("IN", geometry.in_blocks) + block_tables("OUT", geometry.out_blocks) + shard_tables(k.spec);
  }
  return text;
}

// The embedded templates' hashes, in template_files() order.
const std::vector<PartHash>& embedded_template_hashes() {
  static const std::vector<PartHash> hashes = [] {
    std::vector<PartHash> all;
    for (const TemplateFile& file : template_files()) all.push_back({file.name, sha256_hex(file.text)});
    return all;
  }();
  return hashes;
}

const PartHash& codebook_tables_hash() {
  static const PartHash hash{"codebook tables", sha256_hex(codebook_tables())};
  return hash;
}

// One matmul per kernel set: family 2 (matmul.cuh), family 1 (matmul_fused.cuh over
// matmul.cuh), or family 3 (matmul_staged.cuh over staged.cuh) with one of its two multiplies.
bool matmul_includes(const Variant& variant, std::string_view file) {
  if (file == "matmul.cuh") return variant.family == 1 || variant.family == 2;
  if (file == "matmul_fused.cuh") return variant.family == 1;
  if (file == "staged.cuh" || file == "matmul_staged.cuh") return variant.family == 3;
  if (file == "staged_mma.cuh") return variant.family == 3 && !variant.wgmma;
  if (file == "staged_wgmma.cuh") return variant.family == 3 && variant.wgmma;
  return true;
}

}  // namespace

std::string source_hash_of(std::string_view specialization, const std::vector<PartHash>& parts) {
  Sha256 hash;
  hash.update(specialization);
  for (const PartHash& part : parts) hash.update("\n").update(part.name).update(" ").update(part.sha256);
  return hash.hex_digest();
}

std::string join_options(const std::vector<std::string>& options) { return fmt::format("{}", fmt::join(options, " ")); }

GeneratedKernel generate_kernel(const LinearSpec& spec, const Variant& variant, int batch_bucket, const Arch& arch) {
  check_variant(spec, batch_bucket, arch, variant);
  GeneratedKernel kernel{spec, variant, batch_bucket, arch, {}, {}, {}, make_launch_plan(spec, variant, batch_bucket)};
  kernel.source = specialization(kernel);
  const size_t specialization_bytes = kernel.source.size();
  kernel.source += codebook_tables();
  std::vector<PartHash> included = {codebook_tables_hash()};
  for (size_t i = 0; i < template_files().size(); ++i) {
    const TemplateFile& file = template_files()[i];
    if (!matmul_includes(variant, file.name)) continue;
    kernel.source += fmt::format("\n// ---- templates/{} ----\n", file.name);
    kernel.source += file.text;
    included.push_back(embedded_template_hashes()[i]);
  }
  kernel.source_hash = source_hash_of(std::string_view(kernel.source).substr(0, specialization_bytes), included);
  kernel.options = {"--gpu-architecture=" + arch.name(), "--std=c++17", "-default-device", "-Xptxas=-v"};
  return kernel;
}

}  // namespace glqjit
