// One device, its primary CUDA context and the kernel store the linears of a model share.
#pragma once

#include <cuda.h>

#include <memory>
#include <string>

#include "cache/store.hpp"
#include "codegen/arch.hpp"
#include "runtime/module_cache.hpp"

namespace glqjit {

struct DeviceInfo {
  int ordinal = 0;
  std::string name;
  int sm_count = 0;
  int cc_major = 0, cc_minor = 0;
  int driver_version = 0;
  int64_t l2_bytes = 0;
  Arch arch;

  // What a tuning record is valid for (DESIGN.md, Contracts: Cache key).
  std::string signature() const;
};

struct ContextOptions {
  std::string cache_path;  // empty: GLQJIT_CACHE, XDG_CACHE_HOME or ~/.cache (cache/store.hpp)
  bool no_jit = false;     // also set by GLQJIT_NO_JIT=1
  bool read_only_cache = false;
};

class Context {
 public:
  // Throws Error(no_driver) without a driver, Error(invalid_argument) for a bad ordinal,
  // Error(unsupported_arch) for GPUs older than sm_80, Error(cache_error) for an explicit
  // cache path that cannot be used (an unusable default location only warns: kernels are
  // then compiled in memory).
  Context(int device, const ContextOptions& options);
  ~Context();
  Context(const Context&) = delete;
  Context& operator=(const Context&) = delete;

  const DeviceInfo& device() const { return device_; }
  CUcontext cu() const { return context_; }
  Store* store() { return store_.get(); }
  bool no_jit() const { return no_jit_; }
  ModuleCache& modules() { return *modules_; }

 private:
  DeviceInfo device_;
  CUdevice cu_device_ = 0;
  CUcontext context_ = nullptr;
  std::unique_ptr<Store> store_;
  bool no_jit_ = false;
  std::unique_ptr<ModuleCache> modules_;
};

}  // namespace glqjit
