// A lock per key beside the store, for work that processes sharing one store should do once:
// - compile: held around the compile and store write of a store miss, so that processes (a fleet
//   starting at once) and threads that miss the same kernel compile it once: the first compiles
//   and stores it while the others wait, then find it in the store;
// - tune: held while a glq-tune worker tunes a (spec, bucket) key, so that workers sharing one
//   store (glq-tune --devices) never time a candidate twice (tuner/shared_run.hpp).
//
// It is an open-file-description lock (F_OFD_SETLK) on one byte of `<store>-compile-lock` (or
// `-tune-lock`) chosen by the key: each KeyLock opens the file itself, so threads of one process
// exclude each other as processes do (plain fcntl locks are per process), and the kernel drops
// it when its holder dies, so a killed holder blocks nobody. A holder that hangs is waited for
// until the timeout.
#pragma once

#include <chrono>
#include <string>

namespace glqjit {

// GLQJIT_COMPILE_LOCK_TIMEOUT (seconds), else 120 s: longer than any one kernel set's compile.
std::chrono::milliseconds compile_lock_timeout();

enum class KeyLockKind { compile, tune };

class KeyLock {
 public:
  enum class Outcome {
    held,        // this process may do the work (after looking in the store again)
    timed_out,   // another holder kept it past the timeout
    unavailable  // the lock file cannot be opened (a read-only folder): nothing to coordinate with
  };

  // Waits up to timeout (zero: one try) for the lock of key_digest in the store at store_path.
  // Never throws: without the lock the caller does the work anyway.
  KeyLock(KeyLockKind kind, const std::string& store_path, const std::string& key_digest,
          std::chrono::milliseconds timeout);
  ~KeyLock();  // releases it
  KeyLock(const KeyLock&) = delete;
  KeyLock& operator=(const KeyLock&) = delete;

  Outcome outcome() const { return outcome_; }
  const std::string& file() const { return file_; }
  std::chrono::milliseconds waited() const { return waited_; }

 private:
  std::string file_;
  int fd_ = -1;
  Outcome outcome_ = Outcome::unavailable;
  std::chrono::milliseconds waited_{0};
};

}  // namespace glqjit
