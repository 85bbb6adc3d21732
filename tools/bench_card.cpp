#include "tools/bench_card.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>

#include "codegen/nvrtc.hpp"
#include "glqjit_source_commit.hpp"
#include "runtime/driver.hpp"

namespace glqjit::bench {
namespace {

using Json = nlohmann::ordered_json;

CUdevice device_of(int ordinal) {
  CUdevice device = 0;
  check_cuda(driver().cuDeviceGet(&device, ordinal), "cuDeviceGet");
  return device;
}

// -1 when the driver does not say.
int device_attribute(CUdevice device, CUdevice_attribute attribute) {
  int value = -1;
  if (driver().cuDeviceGetAttribute(&value, attribute, device) != CUDA_SUCCESS) return -1;
  return value;
}

// "dddddddd:bb:dd.0", which names the same card in CUDA and NVML.
std::string pci_bus_id_of(CUdevice device) {
  return fmt::format("{:08x}:{:02x}:{:02x}.0", std::max(0, device_attribute(device, CU_DEVICE_ATTRIBUTE_PCI_DOMAIN_ID)),
                     std::max(0, device_attribute(device, CU_DEVICE_ATTRIBUTE_PCI_BUS_ID)),
                     std::max(0, device_attribute(device, CU_DEVICE_ATTRIBUTE_PCI_DEVICE_ID)));
}

std::string utc_now() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&now, &tm);
  char text[64] = {};
  std::strftime(text, sizeof(text), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return text;
}

std::string clocks_text(const Clocks& clocks) {
  auto mhz = [](int value) { return value >= 0 ? fmt::format("{} MHz", value) : std::string("unknown"); };
  return fmt::format("SM {}, memory {}", mhz(clocks.sm_mhz), mhz(clocks.memory_mhz));
}

Json clocks_json(const Clocks& clocks) {
  return Json{{"sm_mhz", clocks.sm_mhz >= 0 ? Json(clocks.sm_mhz) : Json(nullptr)},
              {"memory_mhz", clocks.memory_mhz >= 0 ? Json(clocks.memory_mhz) : Json(nullptr)}};
}

// At build time (cmake/write_commit.cmake): where the binary runs, git may see another history.
const std::string kCommit = GLQJIT_SOURCE_COMMIT;
const std::string kVersion = GLQJIT_VERSION;

}  // namespace

Card::Card(const DeviceInfo& info)
    : info_(info), pci_bus_id_(pci_bus_id_of(device_of(info.ordinal))), nvml_(pci_bus_id_) {
  nvidia_driver_ = nvml_.driver_version();
  if (nvidia_driver_.empty()) nvidia_driver_ = kernel_module_version();
  clocks_at_start_ = nvml_.clocks();
  max_clocks_ = nvml_.max_clocks();
  power_limit_w_ = nvml_.power_limit_w();
  const CUdevice device = device_of(info.ordinal);
  attribute_sm_khz_ = device_attribute(device, CU_DEVICE_ATTRIBUTE_CLOCK_RATE);
  attribute_memory_khz_ = device_attribute(device, CU_DEVICE_ATTRIBUTE_MEMORY_CLOCK_RATE);
  memory_bus_bits_ = device_attribute(device, CU_DEVICE_ATTRIBUTE_GLOBAL_MEMORY_BUS_WIDTH);
  date_utc_ = utc_now();
}

Json Card::header(const Clocks* clocks_at_end) const {
  Json h;
  h["tool"] = "glq-bench";
  h["glqjit_version"] = kVersion;
  h["commit"] = kCommit.empty() ? Json(nullptr) : Json(kCommit);
  h["date_utc"] = date_utc_;
  h["device"] = {{"ordinal", info_.ordinal},
                 {"name", info_.name},
                 {"pci_bus_id", pci_bus_id_},
                 {"sm_count", info_.sm_count},
                 {"compute_capability", fmt::format("{}.{}", info_.cc_major, info_.cc_minor)},
                 {"arch", info_.arch.name()},
                 {"cuda_driver_version", info_.driver_version},
                 {"nvidia_driver", nvidia_driver_.empty() ? Json(nullptr) : Json(nvidia_driver_)},
                 {"memory_bus_bits", memory_bus_bits_},
                 {"attribute_sm_clock_khz", attribute_sm_khz_},
                 {"attribute_memory_clock_khz", attribute_memory_khz_},
                 {"clocks_at_start", clocks_json(clocks_at_start_)},
                 {"clocks_at_end", clocks_at_end ? clocks_json(*clocks_at_end) : Json(nullptr)},
                 {"max_clocks", clocks_json(max_clocks_)},
                 {"power_limit_w", power_limit_w_ >= 0 ? Json(power_limit_w_) : Json(nullptr)},
                 {"nvml", nvml_.available() ? Json("available") : Json(nvml_.reason())}};
  h["nvrtc_version"] = nvrtc_version();
  return h;
}

std::vector<std::string> Card::lines(const Clocks* clocks_at_end) const {
  std::vector<std::string> lines;
  lines.push_back(fmt::format("card: {} (device {}, PCI {}, {} SMs, compute capability {}.{}, {})", info_.name,
                              info_.ordinal, pci_bus_id_, info_.sm_count, info_.cc_major, info_.cc_minor,
                              info_.arch.name()));
  lines.push_back(fmt::format("driver: NVIDIA {}, CUDA driver API {}.{}",
                              nvidia_driver_.empty() ? "unknown" : nvidia_driver_, info_.driver_version / 1000,
                              info_.driver_version % 1000 / 10));
  std::string clocks_line = fmt::format("clocks at start: {}", clocks_text(clocks_at_start_));
  if (clocks_at_end) clocks_line += fmt::format("; at end: {}", clocks_text(*clocks_at_end));
  clocks_line += fmt::format("; max: {}", clocks_text(max_clocks_));
  if (power_limit_w_ >= 0) clocks_line += fmt::format("; power limit {} W", power_limit_w_);
  if (!nvml_.available()) clocks_line += fmt::format(" (NVML: {})", nvml_.reason());
  lines.push_back(clocks_line);
  lines.push_back("date: " + date_utc_);
  lines.push_back(fmt::format("glqjit {}{}, NVRTC {}", kVersion.empty() ? "(version unknown)" : kVersion,
                              kCommit.empty() ? "" : " at " + kCommit, nvrtc_version()));
  return lines;
}

std::string markdown_heading(const Json& header) {
  std::string text = "# glq-bench\n\n";
  for (const auto& line : header["report_lines"]) text += "- " + line.get<std::string>() + "\n";
  return text;
}

}  // namespace glqjit::bench
