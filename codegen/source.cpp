#include "codegen/source.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <bit>

#include "codegen/variant_space.hpp"
#include "format/codebook.hpp"
#include "templates/embedded.hpp"

namespace glqjit {
namespace {

std::string int_array(const char* name, const std::vector<int64_t>& values) {
  return fmt::format("__constant__ int {}[{}] = {{{}}};\n", name, values.size(), fmt::join(values, ", "));
}

std::vector<int64_t> block_offsets(const std::vector<int64_t>& blocks) {
  std::vector<int64_t> offsets;
  int64_t offset = 0;
  for (int64_t block : blocks) {
    offsets.push_back(offset);
    offset += block;
  }
  return offsets;
}

std::vector<int64_t> block_log2s(const std::vector<int64_t>& blocks) {
  std::vector<int64_t> logs;
  for (int64_t block : blocks) logs.push_back(std::countr_zero(uint64_t(block)));
  return logs;
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

std::string specialization(const GeneratedKernel& k) {
  const Geometry geometry = k.spec.geometry();
  const Recipe recipe = k.spec.recipe();
  const bool has_e8p = std::count(recipe.stages.begin(), recipe.stages.end(), StageKind::e8p) > 0;
  const bool has_e81b = std::count(recipe.stages.begin(), recipe.stages.end(), StageKind::e81b) > 0;
  const LaunchPlan& plan = k.launch;
  std::string text = fmt::format(
      "// glqjit kernel set, generated: do not edit.\n"
      "//   layer:   {}\n"
      "//   variant: {}\n"
      "//   batch bucket {}, {}\n"
      "// Kernels: glq_input_transform -> glq_matmul -> glq_output_transform; glq_repack_e81b once at plan.\n\n"
      "// ---- specialization ----\n",
      k.spec.canonical(), k.variant.canonical(), k.batch_bucket, k.arch.name());
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
  text += fmt::format("constexpr int BATCH_BUCKET = {};\n", k.batch_bucket);
  text += fmt::format("constexpr int MATMUL_WARPS = {};\n", k.variant.warps);
  text += fmt::format("constexpr int K_SPLIT = {};\n", k.variant.k_split);
  text += fmt::format("constexpr int K_TILES_PER_SPLIT = {};\n", (plan.k_tiles + k.variant.k_split - 1) / k.variant.k_split);
  text += fmt::format("constexpr int BATCH_TILES = {};\n", k.variant.batch_tiles);
  text += fmt::format("constexpr int PREFETCH = {};\n", k.variant.prefetch);
  text += fmt::format("constexpr int TRANSFORM_THREADS = {};\n", k.variant.transform_threads);
  text += stage_kind_function(recipe);
  text += "// Hadamard blocks of n_pad and m_pad (FORMAT.md 5)\n";
  text += int_array("IN_BLOCK_OFFSET", block_offsets(geometry.in_blocks));
  text += int_array("IN_BLOCK_LOG2", block_log2s(geometry.in_blocks));
  text += int_array("OUT_BLOCK_OFFSET", block_offsets(geometry.out_blocks));
  text += int_array("OUT_BLOCK_LOG2", block_log2s(geometry.out_blocks));
  // Both tables are always defined (the kernels name both); shared memory holds only those used.
  text += codebook_table("E8P_ABS_HALVES", "E8P: ABS[a] / 2 as fp16 pairs (FORMAT.md 2.1)", [](int a) {
    std::array<double, 8> v{};
    for (int i = 0; i < 8; ++i) v[i] = e8p_abs_rows()[a][i] / 2.0;
    return v;
  });
  text += codebook_table("E81B_HALVES", "E81B rows as fp16 pairs (FORMAT.md 3)",
                         [](int code) { return e81b_rows()[code]; });
  return text;
}

}  // namespace

std::string join_options(const std::vector<std::string>& options) { return fmt::format("{}", fmt::join(options, " ")); }

GeneratedKernel generate_kernel(const LinearSpec& spec, const Variant& variant, int batch_bucket, const Arch& arch) {
  check_variant(spec, batch_bucket, arch, variant);
  GeneratedKernel kernel{spec, variant, batch_bucket, arch, {}, {}, make_launch_plan(spec, variant)};
  kernel.source = specialization(kernel);
  for (const TemplateFile& file : template_files()) {
    kernel.source += fmt::format("\n// ---- templates/{} ----\n", file.name);
    kernel.source += file.text;
  }
  kernel.options = {"--gpu-architecture=" + arch.name(), "--std=c++17", "-default-device", "-Xptxas=-v"};
  return kernel;
}

}  // namespace glqjit
