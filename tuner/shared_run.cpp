#include "tuner/shared_run.hpp"

#include <fmt/format.h>

#include <chrono>

#include "cache/key_lock.hpp"
#include "support/log.hpp"

namespace glqjit {
namespace {

// Long enough for any key's tune: the holder lets go when it finishes or dies.
constexpr std::chrono::hours kWaitForHolder{24 * 365};

}  // namespace

SharedRunCounts for_each_shared_key(const std::string& store_path, const std::vector<std::string>& keys,
                                    const std::function<void(size_t)>& tune) {
  SharedRunCounts counts;
  std::vector<size_t> held_elsewhere;
  bool warned = false;
  for (size_t i = 0; i < keys.size(); ++i) {
    const KeyLock claim(KeyLockKind::tune, store_path, keys[i], std::chrono::milliseconds(0));
    if (claim.outcome() == KeyLock::Outcome::timed_out) {
      held_elsewhere.push_back(i);
      continue;
    }
    if (claim.outcome() == KeyLock::Outcome::unavailable && !warned) {
      log_line(LogLevel::warn, fmt::format("cannot open {} to share the keys with other workers; tuning every key "
                                           "here, so a candidate another worker times is timed again",
                                           claim.file()));
      warned = true;
    }
    ++counts.taken;
    tune(i);
  }
  for (size_t i : held_elsewhere) {
    const KeyLock claim(KeyLockKind::tune, store_path, keys[i],
                        std::chrono::duration_cast<std::chrono::milliseconds>(kWaitForHolder));
    ++counts.waited_for;
    tune(i);
  }
  return counts;
}

}  // namespace glqjit
