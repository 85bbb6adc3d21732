#include "runtime/kernel_binary.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <mutex>
#include <optional>

#include "cache/key_lock.hpp"
#include "codegen/parallel.hpp"
#include "glqjit/error.hpp"
#include "support/log.hpp"

namespace glqjit {

KernelKey make_kernel_key(const GeneratedKernel& generated) {
  KernelKey key;
  key.schema_version = kStoreSchemaVersion;
  key.library_version = GLQJIT_VERSION;
  key.source_hash = generated.source_hash;
  key.spec = generated.spec.canonical();
  key.variant = generated.variant.canonical();
  key.batch_bucket = generated.batch_bucket;
  key.arch = generated.arch.name();
  key.nvrtc_version = nvrtc_version();
  key.options = join_options(generated.options);
  return key;
}

namespace {

// True when the store holds binary's kernel, which binary then carries.
bool take_from_store(Store& store, KernelBinary& binary) {
  std::optional<CompiledKernel> found = store.find_kernel(binary.key.digest());
  if (!found) return false;
  binary.compiled = std::move(*found);
  binary.resources = parse_resource_usage(binary.compiled.compile_log);
  binary.from_store = true;
  return true;
}

void take_compile(CompileOutput output, KernelBinary& binary) {
  binary.resources = std::move(output.resources);
  CompiledKernel& compiled = binary.compiled;
  compiled.key_digest = binary.key.digest();
  compiled.key_text = binary.key.canonical();
  compiled.cubin = std::move(output.cubin);
  compiled.ptx = std::move(output.ptx);
  compiled.compile_log = std::move(output.log);
  compiled.compile_ms = output.compile_ms;
  for (const KernelResources& kernel : binary.resources) {
    if (kernel.name == kMatmulKernel) compiled.registers = kernel.registers;
    compiled.spill_bytes = std::max(compiled.spill_bytes, kernel.spill_store_bytes + kernel.spill_load_bytes);
    compiled.shared_bytes = std::max(compiled.shared_bytes, kernel.shared_bytes);
  }
}

void warn_lock_timed_out(const Store& store, const KernelBinary& binary, const KeyLock& lock) {
  log_line(LogLevel::warn,
           fmt::format("cache store {}: waited {:.0f} s for another process compiling kernel set {} ({} batch bucket "
                       "{}), which holds {}; compiling it here too (GLQJIT_COMPILE_LOCK_TIMEOUT sets the wait)",
                       store.path(), lock.waited().count() / 1000.0, binary.key.digest(),
                       binary.generated.spec.canonical(), binary.generated.batch_bucket, lock.file()));
}

// The first store write that failed, and how many did: a full disk or a store another process
// broke must not throw the compiles away.
struct StoreFailures {
  std::mutex mutex;
  int count = 0;
  std::string first;

  void add(const Error& error) {
    std::lock_guard lock(mutex);
    if (count++ == 0) first = error.what();
  }
  void warn() const {
    if (count == 0) return;
    log_line(LogLevel::warn, fmt::format("{} compiled kernel set(s) are used without being stored, so they are "
                                         "compiled again next time: {}",
                                         count, first));
  }
};

}  // namespace

std::vector<ObtainedKernel> obtain_each_kernel(Store* store, std::vector<GeneratedKernel> generated,
                                               const ObtainOptions& options) {
  std::vector<ObtainedKernel> obtained(generated.size());
  std::vector<size_t> misses;
  for (size_t i = 0; i < generated.size(); ++i) {
    const auto start = std::chrono::steady_clock::now();
    KernelBinary binary;
    binary.generated = std::move(generated[i]);
    binary.key = make_kernel_key(binary.generated);
    if (store != nullptr && !options.want_ptx) take_from_store(*store, binary);
    binary.lookup_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
    if (!binary.from_store) misses.push_back(i);
    obtained[i].binary = std::move(binary);
  }
  if (misses.empty()) return obtained;
  if (options.no_jit) {
    const KernelBinary& first = *obtained[misses.front()].binary;
    const Error error(Status::no_jit,
                      fmt::format("{} kernel(s) are missing from the store and JIT is disabled (GLQJIT_NO_JIT or "
                                  "no_jit); first: {} batch bucket {} {}. Run glq-tune for this model and GPU into the "
                                  "store this process uses{}",
                                  misses.size(), first.generated.spec.canonical(), first.generated.batch_bucket,
                                  first.generated.arch.name(), store ? " (" + store->path() + ")" : ""));
    for (size_t m : misses) {
      obtained[m].binary.reset();
      obtained[m].error = error;
    }
    return obtained;
  }
  log_line(LogLevel::info, fmt::format("compiling {} kernel set(s) with NVRTC for {} (not in the store yet)",
                                       misses.size(), obtained[misses.front()].binary->generated.arch.name()));
  const bool storing = store != nullptr && !store->read_only();
  const std::chrono::milliseconds lock_timeout = compile_lock_timeout();
  StoreFailures store_failures;
  parallel_for(misses.size(), 0, [&](size_t m) {
    ObtainedKernel& entry = obtained[misses[m]];
    KernelBinary& binary = *entry.binary;
    // Held until the kernel is stored, so that whoever waits for it finds it there. want_ptx
    // compiles whatever the store holds, so it has nothing to wait for.
    std::optional<KeyLock> lock;
    if (storing && !options.want_ptx) {
      lock.emplace(KeyLockKind::compile, store->path(), binary.key.digest(), lock_timeout);
      if (lock->outcome() == KeyLock::Outcome::timed_out) warn_lock_timed_out(*store, binary, *lock);
      if (take_from_store(*store, binary)) return;
    }
    try {
      take_compile(compile_kernel(binary.generated.source, binary.generated.options, options.want_ptx), binary);
    } catch (const Error& error) {
      entry.binary.reset();
      entry.error = error;
      return;
    }
    if (!storing) return;
    CompiledKernel stored = binary.compiled;
    stored.ptx.clear();
    try {
      store->put_kernel(stored);
    } catch (const Error& error) {
      store_failures.add(error);
    }
  });
  store_failures.warn();
  return obtained;
}

std::vector<KernelBinary> obtain_kernels(Store* store, std::vector<GeneratedKernel> generated,
                                         const ObtainOptions& options) {
  std::vector<ObtainedKernel> obtained = obtain_each_kernel(store, std::move(generated), options);
  std::vector<KernelBinary> binaries;
  for (ObtainedKernel& entry : obtained) {
    if (entry.error) throw *entry.error;
    binaries.push_back(std::move(*entry.binary));
  }
  return binaries;
}

}  // namespace glqjit
