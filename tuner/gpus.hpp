// Common cards by name, for ahead-of-time work without the card at hand: the default variant
// depends on the SM count, so a store shipped for a card must be built for its architecture
// and SM count.
#pragma once

#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace glqjit {

struct KnownGpu {
  std::string_view name;  // as --gpu takes it
  std::string_view full_name;
  std::string_view arch;
  int sm_count;
};

std::span<const KnownGpu> known_gpus();

// By name, ignoring case, '-', '_' and spaces ("h100-sxm", "H100 SXM"); throws
// Error(invalid_argument) listing the names otherwise.
const KnownGpu& find_known_gpu(std::string_view name);

}  // namespace glqjit
