#include "codegen/arch.hpp"

#include <fmt/format.h>

#include "glqjit/error.hpp"

namespace glqjit {

const std::vector<Arch>& supported_archs() {
  static const std::vector<Arch> archs = {{8, 0, false}, {8, 6, false},  {8, 9, false},  {9, 0, false},
                                          {9, 0, true},  {10, 0, false}, {10, 0, true}, {12, 0, false}};
  return archs;
}

std::string Arch::name() const { return fmt::format("sm_{}{}{}", major, minor, arch_specific ? "a" : ""); }

int Arch::max_shared_bytes_per_block() const {
  if (major == 8 && minor == 0) return 163 * 1024;
  if (major == 9 || major == 10) return 227 * 1024;
  return 99 * 1024;  // sm_86, sm_89, sm_120
}

int Arch::ctas_fitting_shared_memory(unsigned cta_bytes) const {
  constexpr unsigned kReservedPerCta = 1024;
  return int((unsigned(max_shared_bytes_per_block()) + kReservedPerCta) / (cta_bytes + kReservedPerCta));
}

int Arch::typical_sm_count() const {
  switch (major * 10 + minor) {
    case 80: return 108;
    case 86: return 84;
    case 89: return 128;
    case 90: return 132;
    case 100: return 148;
    default: return 170;
  }
}

namespace {

std::string supported_list() {
  std::string names;
  for (const Arch& arch : supported_archs()) names += (names.empty() ? "" : ", ") + arch.name();
  return names;
}

}  // namespace

Arch parse_arch(std::string_view name) {
  for (const Arch& arch : supported_archs()) {
    if (arch.name() == name) return arch;
  }
  throw Error(Status::unsupported_arch,
              fmt::format("architecture '{}' is not supported: glqjit needs mma.sync with fp16 (compute capability "
                          "8.0 or newer) and generates code for {}",
                          name, supported_list()));
}

Arch arch_for_compute_capability(int major, int minor) {
  if (major < 8) {
    throw Error(Status::unsupported_arch,
                fmt::format("this GPU has compute capability {}.{}; glqjit's tensor-core kernels need 8.0 or newer "
                            "(Ampere, Ada, Hopper, Blackwell)",
                            major, minor));
  }
  // A cubin runs on its own major version at the same or a higher minor; an "a" cubin only on
  // exactly its compute capability.
  if (major == 8) return {8, minor >= 9 ? 9 : minor >= 6 ? 6 : 0, false};
  if (major == 9) return {9, 0, minor == 0};
  if (major == 10) return {10, 0, minor == 0};
  if (major == 12) return {12, 0, false};
  throw Error(Status::unsupported_arch,
              fmt::format("this GPU has compute capability {}.{}, for which this glqjit has no code target (it "
                          "generates for {}); a newer glqjit is needed",
                          major, minor, supported_list()));
}

}  // namespace glqjit
