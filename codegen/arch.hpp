// GPU architectures glqjit generates code for (FORMAT.md section 9: mma.sync needs sm_80+).
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace glqjit {

struct Arch {
  int major = 0;
  int minor = 0;
  bool arch_specific = false;  // the "a" targets (sm_90a, sm_100a): not forward compatible

  std::string name() const;                // "sm_90a"
  int max_shared_bytes_per_block() const;  // with the opt-in attribute set
  // What CTAs of `cta_bytes` dynamic shared memory each fit on one SM, which keeps 1 KB per CTA
  // for itself (so a single CTA fits up to max_shared_bytes_per_block).
  int ctas_fitting_shared_memory(unsigned cta_bytes) const;
  int typical_sm_count() const;            // sizes default variants when no GPU is at hand
  bool has_wgmma() const { return major == 9 && arch_specific; }  // warpgroup MMAs: sm_90a only
  bool operator==(const Arch&) const = default;
};

// Throws Error(unsupported_arch) for sm_75 and older or unknown targets, naming the supported ones.
Arch parse_arch(std::string_view name);
// The target a device of this compute capability runs best: 9.0 -> sm_90a, 10.0 -> sm_100a.
Arch arch_for_compute_capability(int major, int minor);
const std::vector<Arch>& supported_archs();

}  // namespace glqjit
