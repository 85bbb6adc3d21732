#include "runtime/module_cache.hpp"

#include <algorithm>

#include "glqjit/error.hpp"
#include "runtime/driver.hpp"
#include "support/fault_injection.hpp"

namespace glqjit {

LoadedModule::LoadedModule(CUcontext context, const std::vector<uint8_t>& cubin, const std::string& what)
    : context_(context) {
  ScopedContext scope(context_);
  const CUresult loaded = fault_injected(FaultPoint::module_load) ? CUDA_ERROR_INVALID_IMAGE
                                                                 : driver().cuModuleLoadData(&module_, cubin.data());
  check_cuda(loaded, "loading the kernels of " + what);
}

LoadedModule::~LoadedModule() {
  try {
    ScopedContext scope(context_);
    driver().cuModuleUnload(module_);
  } catch (const Error&) {
    // The context is gone (driver shutdown); its modules went with it.
  }
}

std::shared_ptr<LoadedModule> ModuleCache::find(const std::string& key_digest) {
  std::lock_guard lock(mutex_);
  const auto found = modules_.find(key_digest);
  return found == modules_.end() ? nullptr : found->second.lock();
}

std::shared_ptr<LoadedModule> ModuleCache::load(const std::string& key_digest, const std::vector<uint8_t>& cubin,
                                                const std::string& what) {
  std::lock_guard lock(mutex_);
  std::weak_ptr<LoadedModule>& slot = modules_[key_digest];
  if (std::shared_ptr<LoadedModule> loaded = slot.lock()) return loaded;
  auto loaded = std::make_shared<LoadedModule>(context_, cubin, what);
  slot = loaded;
  // Drop entries whose modules are gone, so that a long tuning run does not grow the map.
  std::erase_if(modules_, [](const auto& entry) { return entry.second.expired(); });
  return loaded;
}

size_t ModuleCache::loaded_count() {
  std::lock_guard lock(mutex_);
  return size_t(
      std::count_if(modules_.begin(), modules_.end(), [](const auto& entry) { return !entry.second.expired(); }));
}

}  // namespace glqjit
