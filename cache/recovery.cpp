#include "cache/recovery.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>

#include "glqjit/error.hpp"
#include "support/log.hpp"

namespace glqjit {
namespace {

namespace fs = std::filesystem;

// The check identify_store makes on every open: page 1 (the header, whose page count sqlite
// compares with the file's size, so a truncated file shows up here) and the schema.
void probe(sqlite3* db, const std::string& path) {
  sqlite::Statement version(db, path, "PRAGMA user_version", "reading the schema version");
  version.step();
  sqlite::Statement schema(db, path, "SELECT count(*) FROM sqlite_master", "reading the schema");
  schema.step();
}

// Every page, since the damage that sent the caller here may lie beyond what probe() reads.
bool still_corrupt(const std::string& path) {
  std::error_code error;
  if (!fs::exists(path, error)) return false;
  try {
    sqlite::Connection db = sqlite::open(path, SQLITE_OPEN_READWRITE, sqlite::kUseWritableFile);
    probe(db.get(), path);
    check_pages(db.get(), path);
    return false;
  } catch (const sqlite::Corrupt&) {
    return true;
  }
}

}  // namespace

void check_pages(sqlite3* db, const std::string& path) {
  sqlite::Statement check(db, path, "PRAGMA quick_check(1)", "checking every page");
  check.step();
  std::string verdict = check.text(0);
  if (verdict == "ok") return;
  std::replace(verdict.begin(), verdict.end(), '\n', ' ');  // "*** in database main ***\nPage 1: ..."
  throw sqlite::Corrupt{path, "sqlite: " + verdict};
}

FolderLock::FolderLock(const std::string& path, int operation) {
  const fs::path parent = fs::path(path).parent_path();
  const std::string folder = parent.empty() ? std::string(".") : parent.string();
  fd_ = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd_ < 0) return;
  while (::flock(fd_, operation) != 0 && errno == EINTR) {
  }
}

FolderLock::~FolderLock() {
  if (fd_ >= 0) ::close(fd_);  // releases the flock
}

// Processes that find the same file corrupt at once take turns through the folder lock and look
// again under it, so a fresh store made by one of them is never moved aside by another.
void set_aside_corrupt(const std::string& path, const std::string& detail) {
  const FolderLock lock(path, LOCK_EX);
  if (!still_corrupt(path)) return;

  const std::string stem = fmt::format("{}.corrupt-{}", path, sqlite::now_unix());
  std::string aside = stem;
  std::error_code error;
  for (int n = 2; fs::exists(aside, error) || fs::exists(aside + "-wal", error); ++n)
    aside = fmt::format("{}-{}", stem, n);

  // A -wal or -journal left behind would be replayed into the fresh store, so each must go. They
  // go first: once the file itself is gone, another process may start the fresh store at path,
  // and its own -journal or -wal must not be taken away with them.
  for (const char* suffix : {"-wal", "-journal", "-shm"}) {
    const std::string from = path + suffix;
    const std::string to = aside + suffix;
    if (::rename(from.c_str(), to.c_str()) == 0 || errno == ENOENT) continue;
    const int rename_errno = errno;
    if (::unlink(from.c_str()) == 0 || errno == ENOENT) continue;
    throw Error(Status::cache_error,
                fmt::format("cache store {} is corrupt ({}) and {} could not be moved aside to {} or deleted: {}; "
                            "delete {} and {} by hand (it is only a cache), or {}",
                            path, detail, from, to, std::strerror(rename_errno), path, from, sqlite::kUseWritableFile));
  }
  if (::rename(path.c_str(), aside.c_str()) != 0) {
    throw Error(Status::cache_error,
                fmt::format("cache store {} is corrupt ({}) and could not be moved aside to {}: {}; delete it by "
                            "hand (it is only a cache), or {}",
                            path, detail, aside, std::strerror(errno), sqlite::kUseWritableFile));
  }
  log_line(LogLevel::warn, fmt::format("cache store {} is corrupt ({}); moved it aside to {} and started a fresh "
                                       "store (compiled kernels and tuning results will be rebuilt as needed)",
                                       path, detail, aside));
}

void throw_still_corrupt(const std::string& path, const std::string& detail) {
  throw Error(Status::cache_error,
              fmt::format("cache store {} still reads as corrupt after being set aside and rebuilt ({}); set "
                          "GLQJIT_CACHE or --cache to a file on a healthy disk",
                          path, detail));
}

void warn_degraded(const std::string& path, const sqlite::Corrupt& corrupt, std::string_view doing,
                   std::string_view consequence) {
  log_line(LogLevel::warn, fmt::format("cache store {} is corrupt ({}) while {}; {}. Delete the file (it is only "
                                       "a cache) so it is rebuilt, or set GLQJIT_CACHE or --cache to another file",
                                       path, corrupt.detail, doing, consequence));
}

}  // namespace glqjit
