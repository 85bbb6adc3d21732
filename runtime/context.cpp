#include "runtime/context.hpp"

#include <cstdlib>
#include <fmt/format.h>

#include "glqjit/error.hpp"
#include "runtime/driver.hpp"
#include "support/environment.hpp"
#include "support/log.hpp"

namespace glqjit {
namespace {

DeviceInfo query_device(int ordinal, CUdevice device) {
  const Driver& d = driver();
  DeviceInfo info;
  info.ordinal = ordinal;
  char name[256] = {};
  check_cuda(d.cuDeviceGetName(name, sizeof(name), device), "cuDeviceGetName");
  info.name = name;
  check_cuda(d.cuDeviceGetAttribute(&info.sm_count, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT, device),
             "cuDeviceGetAttribute(MULTIPROCESSOR_COUNT)");
  check_cuda(d.cuDeviceGetAttribute(&info.cc_major, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR, device),
             "cuDeviceGetAttribute(COMPUTE_CAPABILITY_MAJOR)");
  check_cuda(d.cuDeviceGetAttribute(&info.cc_minor, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR, device),
             "cuDeviceGetAttribute(COMPUTE_CAPABILITY_MINOR)");
  int l2_bytes = 0;
  check_cuda(d.cuDeviceGetAttribute(&l2_bytes, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE, device),
             "cuDeviceGetAttribute(L2_CACHE_SIZE)");
  info.l2_bytes = l2_bytes;
  info.driver_version = d.version;
  info.arch = arch_for_compute_capability(info.cc_major, info.cc_minor);
  return info;
}

std::unique_ptr<Store> open_store(const ContextOptions& options) {
  StoreOptions store_options{options.cache_path, options.read_only_cache};
  const bool chosen_by_user = !options.cache_path.empty() || std::getenv("GLQJIT_CACHE") != nullptr;
  try {
    return std::make_unique<Store>(store_options);
  } catch (const Error& error) {
    if (chosen_by_user) throw;
    log_line(LogLevel::warn, fmt::format("{}; continuing without a kernel store: every process will compile its "
                                         "kernels again",
                                         error.what()));
    return nullptr;
  }
}

}  // namespace

std::string DeviceInfo::signature() const {
  return fmt::format("{} | sm_count={} | cc={}.{} | driver={}", name, sm_count, cc_major, cc_minor, driver_version);
}

Context::Context(int device, const ContextOptions& options) {
  const Driver& d = driver();
  int count = 0;
  check_cuda(d.cuDeviceGetCount(&count), "cuDeviceGetCount");
  if (device < 0 || device >= count) {
    throw Error(Status::invalid_argument,
                fmt::format("device {} does not exist: this process sees {} CUDA device(s) (check "
                            "CUDA_VISIBLE_DEVICES)",
                            device, count));
  }
  check_cuda(d.cuDeviceGet(&cu_device_, device), "cuDeviceGet");
  device_ = query_device(device, cu_device_);
  no_jit_ = options.no_jit || environment_flag("GLQJIT_NO_JIT");
  check_cuda(d.cuDevicePrimaryCtxRetain(&context_, cu_device_), "cuDevicePrimaryCtxRetain");
  modules_ = std::make_unique<ModuleCache>(context_);
  try {
    store_ = open_store(options);
  } catch (...) {
    d.cuDevicePrimaryCtxRelease(cu_device_);
    throw;
  }
}

Context::~Context() { driver().cuDevicePrimaryCtxRelease(cu_device_); }

}  // namespace glqjit
