// Compiling the kernels of keys still to come while the GPU checks and times the current one.
// A cold tune spends most of its time in NVRTC, and a key's walk compiles its rounds one after
// another; the first round of every key is known before anything is timed (tune.hpp's
// first_candidates), so a background thread compiles those into the store ahead of the loop,
// which then finds them there. A kernel both want at once is compiled once (the compile lock of
// cache/key_lock.hpp excludes threads as it does processes).
#pragma once

#include <atomic>
#include <thread>
#include <vector>

#include "cache/store.hpp"
#include "codegen/arch.hpp"
#include "codegen/spec.hpp"
#include "codegen/variant.hpp"

namespace glqjit {

struct PrefetchJob {
  LinearSpec spec;
  int batch_bucket = 1;
  std::vector<Variant> variants;
};

class KernelPrefetcher {
 public:
  // Starts compiling the jobs in order, on threads at a lower CPU priority than the caller's so
  // that the tuning loop's own compiles (the walk's later rounds) go first. A compile that fails
  // is left for the loop to find and report.
  KernelPrefetcher(Store& store, const Arch& arch, std::vector<PrefetchJob> jobs);
  // Returns once every job is compiled (or the thread stopped at an error).
  void wait();
  // Stops after the job in flight.
  ~KernelPrefetcher();
  KernelPrefetcher(const KernelPrefetcher&) = delete;
  KernelPrefetcher& operator=(const KernelPrefetcher&) = delete;

 private:
  void run();

  Store& store_;
  Arch arch_;
  std::vector<PrefetchJob> jobs_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

}  // namespace glqjit
