#include "tuner/gpus.hpp"

#include <fmt/format.h>

#include <array>
#include <cctype>

#include "glqjit/error.hpp"

namespace glqjit {
namespace {

// SM counts as the vendors' data sheets give them.
constexpr std::array kKnownGpus = {
    KnownGpu{"A100", "NVIDIA A100 (SXM and PCIe)", "sm_80", 108},
    KnownGpu{"H100-SXM", "NVIDIA H100 SXM5", "sm_90a", 132},
    KnownGpu{"H100-PCIe", "NVIDIA H100 PCIe", "sm_90a", 114},
    KnownGpu{"H200", "NVIDIA H200 (SXM)", "sm_90a", 132},
    KnownGpu{"L40S", "NVIDIA L40S", "sm_89", 142},
    KnownGpu{"RTX-4090", "NVIDIA GeForce RTX 4090", "sm_89", 128},
    KnownGpu{"B200", "NVIDIA B200", "sm_100a", 148},
    KnownGpu{"RTX-PRO-6000", "NVIDIA RTX PRO 6000 Blackwell", "sm_120", 188},
};

std::string folded(std::string_view name) {
  std::string out;
  for (char c : name) {
    if (c != '-' && c != '_' && c != ' ') out += char(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

}  // namespace

std::span<const KnownGpu> known_gpus() { return kKnownGpus; }

const KnownGpu& find_known_gpu(std::string_view name) {
  std::string names;
  for (const KnownGpu& gpu : kKnownGpus) {
    if (folded(gpu.name) == folded(name)) return gpu;
    names += std::string(names.empty() ? "" : ", ") + std::string(gpu.name);
  }
  throw Error(Status::invalid_argument,
              fmt::format("unknown GPU '{}'; the known ones are {} (or give --arch and --sm-count)", name, names));
}

}  // namespace glqjit
