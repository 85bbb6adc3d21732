// What the store does about a damaged file (DESIGN.md, Contracts: Store): setting a corrupt file
// aside so a fresh store is built in its place, without two processes doing it to one file, and
// the warning of a call that degrades because the damage showed up after the open.
#pragma once

#include <string>
#include <string_view>

#include "cache/sqlite.hpp"

namespace glqjit {

// A flock on the folder of path. set_aside_corrupt holds it exclusive and every writable open
// shared, so no open sits between its connection and its first read while the file is renamed
// away: that read's hot-journal check goes by name, and would take the -journal of the fresh
// store made in its place for its own (rolling it back, deleting it). Without a readable folder
// it locks nothing.
class FolderLock {
 public:
  FolderLock(const std::string& path, int operation);  // LOCK_SH or LOCK_EX
  ~FolderLock();
  FolderLock(const FolderLock&) = delete;
  FolderLock& operator=(const FolderLock&) = delete;

 private:
  int fd_ = -1;
};

// Reads every page of the file (PRAGMA quick_check: about a second per GB) and throws
// sqlite::Corrupt naming the first damage found, for work that is about to rewrite the whole file.
void check_pages(sqlite3* db, const std::string& path);

// Moves a corrupt file and its -wal, -shm and -journal aside as <path>.corrupt-<unix time>,
// unless another process already did. Throws Error(cache_error) when it cannot.
void set_aside_corrupt(const std::string& path, const std::string& detail);

[[noreturn]] void throw_still_corrupt(const std::string& path, const std::string& detail);

// Returns open(); each time that finds the file corrupt, sets the file aside so the next try
// builds a fresh store. Gives up after three tries: a disk that keeps producing corrupt files
// needs a person.
template <class Open>
auto rebuilding_if_corrupt(const std::string& path, Open&& open) {
  for (int attempt = 1;; ++attempt) {
    try {
      return open();
    } catch (const sqlite::Corrupt& corrupt) {
      if (attempt == 3) throw_still_corrupt(path, corrupt.detail);
      set_aside_corrupt(path, corrupt.detail);
    }
  }
}

// The one warning of a call that met corruption after the open and degrades instead of throwing.
void warn_degraded(const std::string& path, const sqlite::Corrupt& corrupt, std::string_view doing,
                   std::string_view consequence);

}  // namespace glqjit
