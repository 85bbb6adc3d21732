#include "cache/open.hpp"

#include <fmt/format.h>
#include <sys/file.h>

#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <optional>
#include <string_view>
#include <thread>

#include "cache/recovery.hpp"
#include "cache/schema.hpp"
#include "cache/side_files.hpp"
#include "cache/store.hpp"
#include "glqjit/error.hpp"
#include "support/log.hpp"

namespace glqjit {
namespace {

namespace fs = std::filesystem;

// "file:<path>?immutable=1", the path percent-encoded as sqlite URIs (RFC 3986) want it.
std::string immutable_uri(const std::string& path) {
  std::string uri = "file:";
  for (const unsigned char c : path) {
    if (std::isalnum(c) != 0 || c == '/' || c == '-' || c == '_' || c == '.' || c == '~') {
      uri += static_cast<char>(c);
    } else {
      uri += fmt::format("%{:02X}", c);
    }
  }
  return uri + "?immutable=1";
}

// The result code of the first read of page 1.
int first_read(sqlite3* db) {
  sqlite3_stmt* stmt = nullptr;
  int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &stmt, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
  sqlite3_finalize(stmt);
  return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

void use_wal(sqlite3* db, const std::string& path) {
  // Switching a fresh file to WAL needs a moment of exclusive access; several processes opening
  // the same new file at once may see SQLITE_BUSY here without the busy handler being consulted.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(sqlite::kBusyTimeoutMs);
  static constexpr std::string_view kDoing = "switching to WAL journal mode";
  for (;;) {
    sqlite::Statement pragma(db, path, "PRAGMA journal_mode=WAL", kDoing);
    const int rc = pragma.try_step();
    if (rc == SQLITE_ROW) {
      const std::string mode = pragma.text(0);
      if (mode != "wal" && mode != "memory") {
        log_line(LogLevel::warn, fmt::format("cache store {}: sqlite kept journal mode '{}' instead of WAL; it "
                                             "stays safe to share but writers wait on readers",
                                             path, mode));
      }
      break;
    }
    const int primary = rc & 0xff;
    if ((primary != SQLITE_BUSY && primary != SQLITE_LOCKED) || std::chrono::steady_clock::now() > deadline) {
      sqlite::raise(db, path, rc, kDoing);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  sqlite::exec(db, path, "PRAGMA synchronous=NORMAL", "setting the sync mode");
}

// A writable connection, or why this process can only read the file (the caller then opens it
// read-only and says so).
struct WritableOpen {
  sqlite::Connection db;
  std::string read_only_because;
  std::string remedy;
};

WritableOpen open_writable(const std::string& path) {
  const FolderLock lock(path, LOCK_SH);  // while a corrupt file is set aside, wait (FolderLock says why)
  sqlite::Connection db = sqlite::open(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, sqlite::kUseWritableFile);
  if (sqlite3_db_readonly(db.get(), "main") == 1) {
    return {nullptr, "permissions, or a read-only filesystem", fmt::format("{} to keep them", sqlite::kUseWritableFile)};
  }
  if (const std::optional<std::string> blocking = unwritable_side_file(path)) {
    // sqlite would read through it and fail at the first write.
    return {nullptr, fmt::format("{} is another user's, left by a reader", *blocking),
            fmt::format("to keep them, delete {}-wal and {}-shm as their owner or root while no process has the "
                        "store open (they hold nothing then), or {}",
                        path, path, sqlite::kUseWritableFile)};
  }
  // Before the first write, even the journal mode's: a file whose tables do not match the version
  // it claims is refused as it is, and one a migration will rewrite (an old store, or an empty
  // database that becomes one) is set aside whole if any page of it is damaged.
  const int64_t version = identify_store(db.get(), path);
  if (version > 0) verify_store_tables(db.get(), path, version);
  if (version < kStoreSchemaVersion) check_pages(db.get(), path);
  use_wal(db.get(), path);
  keep_side_files(db.get(), path);
  migrate_store(db.get(), path);
  verify_store_tables(db.get(), path, kStoreSchemaVersion);
  return {std::move(db), {}, {}};
}

OpenedStore open_read_only(const std::string& path) {
  std::error_code error;
  if (!fs::exists(path, error)) {
    throw Error(Status::cache_error,
                fmt::format("cache store {} does not exist, and it was opened read-only, so it is not created; "
                            "build it first (glq-tune), or set GLQJIT_CACHE or --cache to an existing store",
                            path));
  }
  static constexpr std::string_view kAdvice = "set GLQJIT_CACHE or --cache to a readable store";
  // A read-only connection to a WAL-mode file leaves a -wal and -shm beside it, so another
  // program's file is refused first from a look that creates nothing. That look may see a stale
  // state of a store being written, which never looks foreign: only its refusals count.
  try {
    const sqlite::Connection glance =
        sqlite::open(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, kAdvice, immutable_uri(path));
    identify_store(glance.get(), path);
  } catch (const sqlite::Corrupt&) {
    // Damage, or a torn read of a file being checkpointed: the real open below tells them apart.
  }
  sqlite::Connection db;
  if (reading_would_leave_side_files(path)) {
    // A store this process may not write, without its -wal or -shm: nobody has it open (they are
    // there while anyone has), so the file holds every commit; commits made after this open are
    // seen from the next open on.
    log_line(LogLevel::debug, fmt::format("cache store {}: reading it as immutable, so that no -wal or -shm of "
                                          "this user is left beside a store it may not write",
                                          path));
    db = sqlite::open(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, kAdvice, immutable_uri(path));
  } else {
    db = sqlite::open(path, SQLITE_OPEN_READONLY, kAdvice);
    const int first = first_read(db.get()) & 0xff;
    if (first == SQLITE_READONLY || first == SQLITE_CANTOPEN) {
      // A WAL-mode file whose -shm cannot be created (read-only folder or filesystem, as for a store
      // shipped in an image) can only be read as immutable: sqlite then takes no locks, which is
      // right for a file nobody can write here.
      log_line(LogLevel::debug,
               fmt::format("cache store {}: {}; reading it as immutable", path, sqlite::detail(db.get(), first)));
      db = sqlite::open(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, kAdvice, immutable_uri(path));
    }
  }
  try {
    const int64_t version = identify_store(db.get(), path);
    if (version == 0) {
      throw Error(Status::cache_error,
                  fmt::format("cache store {} is an empty database (schema version 0), and it was opened read-only, "
                              "so it is not migrated into a store; open it once writable (without read-only), or "
                              "set GLQJIT_CACHE or --cache to another store",
                              path));
    }
    verify_store_tables(db.get(), path, version);
    if (version < kStoreSchemaVersion) {
      // Its tuning records still serve; its kernels were keyed with the old schema version.
      log_line(LogLevel::debug, fmt::format("cache store {}: reading schema version {} as it is (read-only, so not "
                                            "migrated to {}); its kernels carry no hash to check",
                                            path, version, kStoreSchemaVersion));
    }
    return {std::move(db), true, version};
  } catch (const sqlite::Corrupt& corrupt) {
    throw Error(Status::cache_error,
                fmt::format("cache store {} is corrupt ({}); it was opened read-only, so it is not set aside and "
                            "rebuilt: replace it with a good copy, or set GLQJIT_CACHE or --cache to another file",
                            path, corrupt.detail));
  }
}

}  // namespace

std::string default_store_path() {
  const auto env = [](const char* name) -> std::string {
    const char* value = std::getenv(name);
    return value == nullptr ? std::string() : std::string(value);
  };
  if (std::string path = env("GLQJIT_CACHE"); !path.empty()) return path;
  // The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
  if (std::string xdg = env("XDG_CACHE_HOME"); !xdg.empty() && xdg.front() == '/') {
    return xdg + "/glqjit/glqjit.db";
  }
  if (std::string home = env("HOME"); !home.empty()) return home + "/.cache/glqjit/glqjit.db";
  throw Error(Status::cache_error,
              "no cache store path: none of GLQJIT_CACHE, XDG_CACHE_HOME or HOME is set; set GLQJIT_CACHE or "
              "pass --cache with a writable file");
}

void ensure_parent_folder(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code error;
  if (fs::is_directory(parent, error)) return;
  fs::create_directories(parent, error);
  std::error_code ignored;
  if (error || !fs::is_directory(parent, ignored)) {
    throw Error(Status::cache_error,
                fmt::format("cache store {}: cannot create its folder {}: {}; {}", path, parent.string(),
                            error ? error.message() : "something that is not a folder is in the way",
                            sqlite::kUseWritableFile));
  }
}

OpenedStore open_store_file(const std::string& path, bool read_only) {
  if (read_only) return open_read_only(path);
  ensure_parent_folder(path);
  return rebuilding_if_corrupt(path, [&]() -> OpenedStore {
    WritableOpen writable = open_writable(path);
    if (writable.db) return {std::move(writable.db), false, kStoreSchemaVersion};
    log_line(LogLevel::warn, fmt::format("cache store {} is not writable by this process ({}); using it read-only, "
                                         "so new kernels and tuning results are not saved ({})",
                                         path, writable.read_only_because, writable.remedy));
    return open_read_only(path);
  });
}

}  // namespace glqjit
