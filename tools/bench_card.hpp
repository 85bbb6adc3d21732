// What every glq-bench report says first: the card (name, PCI address, SMs, architecture), its
// driver, the clocks as found (through NVML where it opens), the date, and the glqjit build and
// NVRTC it ran with. Read when the run starts; the clocks once more at its end.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "runtime/context.hpp"
#include "tools/bench_nvml.hpp"

namespace glqjit::bench {

class Card {
 public:
  // Throws Error(cuda_error) when the Driver API cannot name the device.
  explicit Card(const DeviceInfo& info);
  Card(const Card&) = delete;
  Card& operator=(const Card&) = delete;

  Clocks clocks_now() const { return nvml_.clocks(); }

  // A report's first keys: tool, glqjit_version, commit, date_utc, device, nvrtc_version. The
  // clocks at the end are null while the run goes on.
  nlohmann::ordered_json header(const Clocks* clocks_at_end) const;
  // A report's first lines: card, driver, clocks, date, glqjit and NVRTC.
  std::vector<std::string> lines(const Clocks* clocks_at_end) const;

 private:
  DeviceInfo info_;
  std::string pci_bus_id_;
  Nvml nvml_;  // opened for pci_bus_id_, so declared after it
  std::string nvidia_driver_;
  Clocks clocks_at_start_, max_clocks_;
  int power_limit_w_ = -1;
  int attribute_sm_khz_ = -1, attribute_memory_khz_ = -1, memory_bus_bits_ = -1;
  std::string date_utc_;
};

// The Markdown a report starts with: its title, then one item per line of header["report_lines"].
std::string markdown_heading(const nlohmann::ordered_json& header);

}  // namespace glqjit::bench
