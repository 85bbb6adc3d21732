// Launch geometry of one kernel set: what the runtime needs to launch what codegen generated.
#pragma once

#include <cstddef>
#include <string>

#include "codegen/spec.hpp"
#include "codegen/variant.hpp"

namespace glqjit {

struct Dim3 {
  unsigned x = 1, y = 1, z = 1;
};

struct KernelLaunch {
  std::string name;
  unsigned threads = 0;
  unsigned dynamic_shared_bytes = 0;
};

// Kernel names as the templates define them (extern "C").
inline constexpr const char* kInputTransformKernel = "glq_input_transform";
inline constexpr const char* kMatmulKernel = "glq_matmul";
inline constexpr const char* kOutputTransformKernel = "glq_output_transform";
inline constexpr const char* kRepackE81bKernel = "glq_repack_e81b";

struct LaunchPlan {
  KernelLaunch input_transform;
  KernelLaunch matmul;
  KernelLaunch output_transform;
  KernelLaunch repack_e81b;
  int64_t n_pad = 0, m_pad = 0;
  int in_block_count = 0, out_block_count = 0;
  int m_tiles = 0, k_tiles = 0;
  int k_split = 1;
  int batch_columns_per_cta = 8;

  Dim3 input_grid(int batch) const { return {unsigned(in_block_count), unsigned(batch), 1}; }
  Dim3 matmul_grid(int batch) const {
    return {unsigned((batch + batch_columns_per_cta - 1) / batch_columns_per_cta),
            unsigned((m_tiles + matmul.threads / 32 - 1) / (matmul.threads / 32)), unsigned(k_split)};
  }
  Dim3 output_grid(int batch) const { return {unsigned(out_block_count), unsigned(batch), 1}; }
  Dim3 repack_grid() const { return {unsigned((int64_t(m_tiles) * k_tiles * 32 + 255) / 256), 1, 1}; }

  // Workspace: u (fp16, [batch][n_pad]) then the K-split partial sums (fp32, [k_split][batch][m_pad]).
  size_t activation_bytes(int batch) const { return size_t(batch) * size_t(n_pad) * 2; }
  size_t partial_bytes(int batch) const { return size_t(k_split) * size_t(batch) * size_t(m_pad) * 4; }
  size_t workspace_bytes(int batch) const { return activation_bytes(batch) + partial_bytes(batch); }
};

LaunchPlan make_launch_plan(const LinearSpec& spec, const Variant& variant);

}  // namespace glqjit
