#include "cache/key_lock.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <string_view>
#include <thread>

#include "cache/side_files.hpp"
#include "support/log.hpp"
#include "support/sha256.hpp"

namespace glqjit {
namespace {

constexpr std::chrono::seconds kDefaultTimeout{120};

// The byte of the lock file that stands for key_digest: 60 bits of its hash, so two keys share a
// byte (and wait for each other's compile) about never.
off_t slot_of(const std::string& key_digest) {
  return static_cast<off_t>(std::strtoull(sha256_hex(key_digest).substr(0, 15).c_str(), nullptr, 16));
}

// The lock file, opened for writing (an OFD write lock needs it); created with the store's group
// and mode, writable by whoever may read the store, since every reader that misses may compile.
int open_lock_file(const std::string& file, const std::string& store_path) {
  for (;;) {
    const int fd = ::open(file.c_str(), O_RDWR | O_CLOEXEC);
    if (fd >= 0 || errno != ENOENT) return fd;
    const int created = ::open(file.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (created >= 0) {
      share_like_store(created, store_path, true);
      return created;
    }
    if (errno != EEXIST) return -1;
  }
}

bool try_lock(int fd, off_t slot) {
  struct flock lock {};
  lock.l_type = F_WRLCK;
  lock.l_whence = SEEK_SET;
  lock.l_start = slot;
  lock.l_len = 1;
  return ::fcntl(fd, F_OFD_SETLK, &lock) == 0;
}

}  // namespace

std::chrono::milliseconds compile_lock_timeout() {
  const char* text = std::getenv("GLQJIT_COMPILE_LOCK_TIMEOUT");
  if (text == nullptr || *text == '\0') return kDefaultTimeout;
  char* end = nullptr;
  const double seconds = std::strtod(text, &end);
  if (*end != '\0' || !(seconds >= 0) || seconds > 86400) {
    log_line(LogLevel::warn, fmt::format("GLQJIT_COMPILE_LOCK_TIMEOUT='{}' is not a number of seconds from 0 to "
                                         "86400; waiting the default {} s for another process's compile",
                                         text, kDefaultTimeout.count()));
    return kDefaultTimeout;
  }
  return std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
}

KeyLock::KeyLock(KeyLockKind kind, const std::string& store_path, const std::string& key_digest,
                 std::chrono::milliseconds timeout)
    : file_(store_path + (kind == KeyLockKind::compile ? "-compile-lock" : "-tune-lock")) {
  fd_ = open_lock_file(file_, store_path);
  if (fd_ < 0) return;
  const off_t slot = slot_of(key_digest);
  const auto start = std::chrono::steady_clock::now();
  std::chrono::milliseconds pause{5};
  for (;;) {
    if (try_lock(fd_, slot)) {
      outcome_ = Outcome::held;
      break;
    }
    const auto now = std::chrono::steady_clock::now();
    if (now - start >= timeout) {
      outcome_ = Outcome::timed_out;
      break;
    }
    // A holder releases when its work is stored; polling (an OFD wait has no timeout) finds that
    // within 100 ms.
    std::this_thread::sleep_for(std::min(pause, std::chrono::duration_cast<std::chrono::milliseconds>(
                                                    start + timeout - now + std::chrono::milliseconds(1))));
    pause = std::min(pause * 2, std::chrono::milliseconds(100));
  }
  waited_ = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
}

KeyLock::~KeyLock() {
  if (fd_ >= 0) ::close(fd_);  // drops the OFD lock with its open file description
}

}  // namespace glqjit
