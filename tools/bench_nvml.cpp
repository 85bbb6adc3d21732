#include "tools/bench_nvml.hpp"

#include <dlfcn.h>

#include <fstream>
#include <sstream>

namespace glqjit::bench {

// NVML's C ABI, spelled out here (the toolkit ships no nvml.h on every machine). Every
// nvml* function returns 0 (NVML_SUCCESS) on success.
struct Nvml::Functions {
  int (*init)() = nullptr;
  int (*shutdown)() = nullptr;
  int (*system_driver_version)(char*, unsigned) = nullptr;
  int (*handle_by_pci_bus_id)(const char*, void**) = nullptr;
  int (*clock_info)(void*, int, unsigned*) = nullptr;
  int (*max_clock_info)(void*, int, unsigned*) = nullptr;
  int (*power_limit)(void*, unsigned*) = nullptr;
};

namespace {

constexpr int kClockSm = 1;      // NVML_CLOCK_SM
constexpr int kClockMemory = 2;  // NVML_CLOCK_MEM

template <class F>
void resolve(void* library, const char* name, F& function) {
  function = reinterpret_cast<F>(dlsym(library, name));
}

Clocks read_clocks(int (*query)(void*, int, unsigned*), void* device) {
  Clocks clocks;
  if (query == nullptr || device == nullptr) return clocks;
  unsigned mhz = 0;
  if (query(device, kClockSm, &mhz) == 0) clocks.sm_mhz = int(mhz);
  if (query(device, kClockMemory, &mhz) == 0) clocks.memory_mhz = int(mhz);
  return clocks;
}

}  // namespace

Nvml::Nvml(const std::string& pci_bus_id) {
  void* library = dlopen("libnvidia-ml.so.1", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) {
    const char* error = dlerror();
    reason_ = std::string("libnvidia-ml.so.1 could not be loaded: ") + (error ? error : "not found");
    return;
  }
  auto* f = new Functions();
  resolve(library, "nvmlInit_v2", f->init);
  resolve(library, "nvmlShutdown", f->shutdown);
  resolve(library, "nvmlSystemGetDriverVersion", f->system_driver_version);
  resolve(library, "nvmlDeviceGetHandleByPciBusId_v2", f->handle_by_pci_bus_id);
  resolve(library, "nvmlDeviceGetClockInfo", f->clock_info);
  resolve(library, "nvmlDeviceGetMaxClockInfo", f->max_clock_info);
  resolve(library, "nvmlDeviceGetEnforcedPowerLimit", f->power_limit);
  if (f->init == nullptr || f->shutdown == nullptr || f->handle_by_pci_bus_id == nullptr) {
    reason_ = "libnvidia-ml.so.1 lacks nvmlInit_v2 or nvmlDeviceGetHandleByPciBusId_v2";
    delete f;
    return;
  }
  if (int status = f->init(); status != 0) {
    reason_ = "nvmlInit failed (status " + std::to_string(status) + ")";
    delete f;
    return;
  }
  f_ = f;
  void* device = nullptr;
  if (int status = f->handle_by_pci_bus_id(pci_bus_id.c_str(), &device); status != 0 || device == nullptr) {
    reason_ = "NVML does not know the card at PCI " + pci_bus_id + " (status " + std::to_string(status) + ")";
    return;
  }
  device_ = device;
}

Nvml::~Nvml() {
  if (f_ != nullptr) f_->shutdown();
  delete f_;
}

std::string Nvml::driver_version() const {
  if (f_ == nullptr || f_->system_driver_version == nullptr) return "";
  char text[96] = {};
  if (f_->system_driver_version(text, sizeof(text)) != 0) return "";
  return text;
}

Clocks Nvml::clocks() const { return read_clocks(f_ ? f_->clock_info : nullptr, device_); }

Clocks Nvml::max_clocks() const { return read_clocks(f_ ? f_->max_clock_info : nullptr, device_); }

int Nvml::power_limit_w() const {
  if (f_ == nullptr || f_->power_limit == nullptr || device_ == nullptr) return -1;
  unsigned milliwatts = 0;
  if (f_->power_limit(device_, &milliwatts) != 0) return -1;
  return int((milliwatts + 500) / 1000);
}

std::string kernel_module_version() {
  // "NVRM version: NVIDIA UNIX x86_64 Kernel Module  580.65.06  Sun Jul 27 ..." (date words
  // after the version start with letters)
  std::ifstream file("/proc/driver/nvidia/version");
  std::string line;
  if (!file || !std::getline(file, line)) return "";
  const std::string marker = "Kernel Module";
  const size_t at = line.find(marker);
  if (at == std::string::npos) return "";
  std::istringstream rest(line.substr(at + marker.size()));
  // The open modules say "Kernel Module for x86_64  580.65.06": take the first number.
  std::string token;
  while (rest >> token) {
    if (!token.empty() && token[0] >= '0' && token[0] <= '9') return token;
  }
  return "";
}

}  // namespace glqjit::bench
