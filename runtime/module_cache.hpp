// Loaded modules shared by kernel key within one context: the linears of a model that need the
// same kernel set (the 32 q_proj of Llama-3-8B, the tuner's copies of one layer) load it once.
#pragma once

#include <cuda.h>

#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace glqjit {

class LoadedModule {
 public:
  LoadedModule(CUcontext context, const std::vector<uint8_t>& cubin, const std::string& what);
  ~LoadedModule();  // unloads under its context
  LoadedModule(const LoadedModule&) = delete;
  LoadedModule& operator=(const LoadedModule&) = delete;
  CUmodule get() const { return module_; }

 private:
  CUcontext context_;
  CUmodule module_ = nullptr;
};

class ModuleCache {
 public:
  explicit ModuleCache(CUcontext context) : context_(context) {}
  // The module of `key_digest` if a holder still has it loaded, else null.
  std::shared_ptr<LoadedModule> find(const std::string& key_digest);
  // The module of `key_digest`, loaded from `cubin` unless a holder still has it loaded; it is
  // unloaded when its last holder lets go. Throws Error(cuda_error) when loading fails.
  std::shared_ptr<LoadedModule> load(const std::string& key_digest, const std::vector<uint8_t>& cubin,
                                     const std::string& what);
  // How many modules are loaded now (some holder still has each): glq-bench --plan-time sets it
  // against the linears planned, to show they share their kernel sets.
  size_t loaded_count();

 private:
  CUcontext context_;
  std::mutex mutex_;
  std::map<std::string, std::weak_ptr<LoadedModule>> modules_;
};

}  // namespace glqjit
