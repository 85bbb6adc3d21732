#include "tuner/prefetch.hpp"

#include <fmt/format.h>
#include <sys/resource.h>
#include <unistd.h>

#include <exception>

#include "runtime/kernel_binary.hpp"
#include "support/log.hpp"

namespace glqjit {
namespace {

// Linux keeps a nice value per thread, and the compile threads this one starts inherit it; the
// rest of the process keeps its priority.
void lower_this_thread_priority() {
  constexpr int kPrefetchNice = 10;
  setpriority(PRIO_PROCESS, static_cast<id_t>(gettid()), kPrefetchNice);
}

}  // namespace

KernelPrefetcher::KernelPrefetcher(Store& store, const Arch& arch, std::vector<PrefetchJob> jobs)
    : store_(store), arch_(arch), jobs_(std::move(jobs)), thread_([this] { run(); }) {}

void KernelPrefetcher::wait() {
  if (thread_.joinable()) thread_.join();
}

KernelPrefetcher::~KernelPrefetcher() {
  stop_ = true;
  wait();
}

void KernelPrefetcher::run() {
  lower_this_thread_priority();
  for (const PrefetchJob& job : jobs_) {
    if (stop_) return;
    try {
      std::vector<GeneratedKernel> generated;
      for (const Variant& variant : job.variants) {
        generated.push_back(generate_kernel(job.spec, variant, job.batch_bucket, arch_));
      }
      obtain_each_kernel(&store_, std::move(generated), ObtainOptions{});
    } catch (const std::exception& error) {  // nothing may leave a thread
      log_line(LogLevel::warn, fmt::format("compiling ahead stopped at {} bucket {}: {}; the tuning loop compiles "
                                           "what it needs itself",
                                           job.spec.canonical(), job.batch_bucket, error.what()));
      return;
    }
  }
}

}  // namespace glqjit
