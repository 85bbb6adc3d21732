// What glq-bench reports about the card beyond the Driver API: the NVIDIA driver release and
// the clocks as found, read through NVML (opened with dlopen; everything here is best effort).
#pragma once

#include <string>

namespace glqjit::bench {

struct Clocks {
  int sm_mhz = -1;  // -1: unknown
  int memory_mhz = -1;
};

class Nvml {
 public:
  // pci_bus_id as "dddddddd:bb:dd.0" (hex), which names the same card in CUDA and NVML
  // whatever CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER say.
  explicit Nvml(const std::string& pci_bus_id);
  ~Nvml();
  Nvml(const Nvml&) = delete;
  Nvml& operator=(const Nvml&) = delete;

  bool available() const { return device_ != nullptr; }
  const std::string& reason() const { return reason_; }  // why not available

  std::string driver_version() const;  // "580.65.06"; "" when unknown
  Clocks clocks() const;               // current
  Clocks max_clocks() const;
  int power_limit_w() const;  // enforced power limit; -1 when unknown

  struct Functions;

 private:
  Functions* f_ = nullptr;
  void* device_ = nullptr;
  std::string reason_;
};

// The kernel module's version from /proc/driver/nvidia/version; "" when unknown.
std::string kernel_module_version();

}  // namespace glqjit::bench
