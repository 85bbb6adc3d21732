#include "cache/side_files.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>

#include "cache/sqlite.hpp"

namespace glqjit {
namespace {

constexpr const char* kSideSuffixes[] = {"-wal", "-shm"};

bool may_write(const std::string& file) { return ::faccessat(AT_FDCWD, file.c_str(), W_OK, AT_EACCESS) == 0; }

bool exists(const std::string& file) {
  struct stat status {};
  return ::lstat(file.c_str(), &status) == 0;
}

// Users other than its owner may create files in the folder of path.
bool in_shared_folder(const std::string& path) {
  const std::filesystem::path parent = std::filesystem::path(path).parent_path();
  struct stat folder {};
  if (::stat(parent.empty() ? "." : parent.c_str(), &folder) != 0) return false;
  return (folder.st_mode & (S_IWGRP | S_IWOTH)) != 0;
}

// Bytes 18 and 19 of the header (the read and write format versions) are 2 in WAL mode.
bool in_wal_mode(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  unsigned char versions[2] = {};
  const bool wal = ::pread(fd, versions, 2, 18) == 2 && versions[0] == 2 && versions[1] == 2;
  ::close(fd);
  return wal;
}

}  // namespace

void keep_side_files(sqlite3* db, const std::string& path) {
  if (!in_shared_folder(path)) return;
  int persist = 1;
  sqlite3_file_control(db, "main", SQLITE_FCNTL_PERSIST_WAL, &persist);
  // So the kept -wal holds no stale frames that a later reader would take for the store's pages.
  sqlite::exec(db, path, "PRAGMA journal_size_limit = 0", "limiting the kept -wal");
  for (const char* suffix : kSideSuffixes) {
    const int fd = ::open((path + suffix).c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) continue;
    share_like_store(fd, path, false);
    ::close(fd);
  }
}

std::optional<std::string> unwritable_side_file(const std::string& path) {
  for (const char* suffix : kSideSuffixes) {
    const std::string file = path + suffix;
    struct stat status {};
    if (::lstat(file.c_str(), &status) != 0 || may_write(file)) continue;
    return fmt::format("{} (owner uid {}, mode {:04o})", file, status.st_uid, status.st_mode & 07777);
  }
  return std::nullopt;
}

bool reading_would_leave_side_files(const std::string& path) {
  if (may_write(path) || !in_wal_mode(path)) return false;
  for (const char* suffix : kSideSuffixes) {
    if (!exists(path + suffix)) return true;
  }
  return false;
}

void share_like_store(int fd, const std::string& path, bool writable_by_readers) {
  struct stat store {};
  struct stat file {};
  if (::stat(path.c_str(), &store) != 0 || ::fstat(fd, &file) != 0 || file.st_uid != ::geteuid()) return;
  if (file.st_gid != store.st_gid) (void)::fchown(fd, static_cast<uid_t>(-1), store.st_gid);
  const mode_t readable = store.st_mode & 0444;
  const mode_t mode = (store.st_mode & 0777) | (writable_by_readers ? readable >> 1 : 0);
  if ((file.st_mode & 0777) != mode) (void)::fchmod(fd, mode);
}

}  // namespace glqjit
