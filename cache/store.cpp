#include "cache/store.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <sys/file.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <memory>
#include <string_view>
#include <thread>

#include "cache/schema.hpp"
#include "glqjit/error.hpp"
#include "support/log.hpp"

namespace glqjit {
namespace {

namespace fs = std::filesystem;

constexpr int kBusyTimeoutMs = 30'000;
constexpr std::string_view kUseWritableFile = "set GLQJIT_CACHE or --cache to a writable file";
constexpr std::string_view kUseAnotherFile =
    "set GLQJIT_CACHE or --cache to another file (this one is left as it is)";

// Thrown inside this file when sqlite says the file is damaged (SQLITE_CORRUPT, SQLITE_NOTADB).
// The constructor sets such a file aside and rebuilds it; the other members degrade.
struct StoreCorrupt {
  std::string detail;
};

bool is_corruption(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

// sqlite's own words for the last failure on db, with the result code's name where it adds to them.
std::string sqlite_detail(sqlite3* db, int rc) {
  const std::string code = sqlite3_errstr(rc);
  if (db == nullptr) return fmt::format("sqlite: {}", code);
  const std::string message = sqlite3_errmsg(db);
  if (message == code) return fmt::format("sqlite: {}", message);
  return fmt::format("sqlite: {} ({})", message, code);
}

std::string_view advice_for(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "another connection kept the store locked for more than 30 s; retry, or give this "
             "process its own file with GLQJIT_CACHE or --cache";
    case SQLITE_FULL:
      return "free some disk space, or set GLQJIT_CACHE or --cache to a file on another disk";
    case SQLITE_NOMEM:
      return "free some memory and retry";
    default:
      return kUseWritableFile;
  }
}

[[noreturn]] void raise(sqlite3* db, const std::string& path, int rc, std::string_view doing) {
  std::string detail = sqlite_detail(db, rc);
  if (is_corruption(rc)) throw StoreCorrupt{std::move(detail)};
  throw Error(Status::cache_error,
              fmt::format("cache store {}: {} failed: {}; {}", path, doing, detail, advice_for(rc)));
}

struct ConnectionCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Connection = std::unique_ptr<sqlite3, ConnectionCloser>;

// One prepared statement; every failure goes through raise(), so it names the path.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& path, const char* sql, std::string_view doing)
      : db_(db), path_(path), doing_(doing) {
    const int rc = sqlite3_prepare_v2(db, sql, -1, &stmt_, nullptr);
    if (rc != SQLITE_OK) raise(db_, path_, rc, doing_);
  }
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void bind_text(int index, std::string_view text) {
    check(sqlite3_bind_text64(stmt_, index, text.empty() ? "" : text.data(), text.size(), SQLITE_TRANSIENT,
                              SQLITE_UTF8));
  }
  void bind_int(int index, int64_t value) { check(sqlite3_bind_int64(stmt_, index, value)); }
  void bind_real(int index, double value) { check(sqlite3_bind_double(stmt_, index, value)); }
  void bind_blob(int index, const std::vector<uint8_t>& bytes) {
    // A null pointer would bind NULL, not an empty blob.
    if (bytes.empty()) {
      check(sqlite3_bind_zeroblob(stmt_, index, 0));
    } else {
      check(sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT));
    }
  }

  int try_step() { return sqlite3_step(stmt_); }
  void reset() { sqlite3_reset(stmt_); }
  // True for a row, false when done.
  bool step() {
    const int rc = try_step();
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    raise(db_, path_, rc, doing_);
  }

  std::string text(int column) const {
    const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
    const int size = sqlite3_column_bytes(stmt_, column);
    return data == nullptr ? std::string() : std::string(data, static_cast<size_t>(size));
  }
  std::vector<uint8_t> blob(int column) const {
    const auto* data = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, column));
    const int size = sqlite3_column_bytes(stmt_, column);
    if (data == nullptr || size <= 0) return {};
    return std::vector<uint8_t>(data, data + size);
  }
  int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  double real(int column) const { return sqlite3_column_double(stmt_, column); }

 private:
  void check(int rc) {
    if (rc != SQLITE_OK) raise(db_, path_, rc, doing_);
  }

  sqlite3* db_;
  const std::string& path_;
  std::string_view doing_;
  sqlite3_stmt* stmt_ = nullptr;
};

void exec(sqlite3* db, const std::string& path, const char* sql, std::string_view doing) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) raise(db, path, rc, doing);
}

int64_t now_unix() { return static_cast<int64_t>(std::time(nullptr)); }

// filename is what sqlite opens (a file: URI where flags hold SQLITE_OPEN_URI); path names the
// store in messages.
Connection open_connection(const std::string& path, int flags, std::string_view advice,
                           const std::string& filename = {}) {
  sqlite3* raw = nullptr;
  const std::string& name = filename.empty() ? path : filename;
  const int rc = sqlite3_open_v2(name.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  Connection db(raw);
  if (rc != SQLITE_OK) {
    throw Error(Status::cache_error,
                fmt::format("cache store {}: cannot open it: {}; {}", path, sqlite_detail(raw, rc), advice));
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  return db;
}

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

// The cheap health check of every open: page 1 (the header, whose page count sqlite compares
// with the file's size, so a truncated file shows up here) and the schema. Returns user_version.
// Later pages are not read: a full integrity_check would cost seconds on a shipped store.
int64_t probe(sqlite3* db, const std::string& path) {
  Statement version(db, path, "PRAGMA user_version", "reading the schema version");
  version.step();
  const int64_t result = version.integer(0);
  Statement schema(db, path, "SELECT count(*) FROM sqlite_master", "reading the schema");
  schema.step();
  return result;
}

void check_not_newer(const std::string& path, int64_t version) {
  if (version > kStoreSchemaVersion) {
    throw Error(Status::cache_error,
                fmt::format("cache store {} has schema version {}, newer than this glqjit knows ({}); use a "
                            "newer glqjit, or {}",
                            path, version, kStoreSchemaVersion, kUseAnotherFile));
  }
}

// Every column the members read or write must be there; a foreign sqlite file is refused, not
// changed.
void verify_tables(sqlite3* db, const std::string& path) {
  static constexpr const char* kQueries[] = {
      "SELECT key_digest, key_text, cubin, ptx, compile_log, registers, spill_bytes, shared_bytes, "
      "compile_ms, created_at FROM kernels LIMIT 0",
      "SELECT device_signature, spec, batch_bucket, variant, time_us, details, updated_at FROM tuning LIMIT 0",
  };
  for (const char* sql : kQueries) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_OK) continue;
    if (is_corruption(rc)) raise(db, path, rc, "reading the schema");
    throw Error(Status::cache_error,
                fmt::format("cache store {} says schema version {} but its tables do not match ({}); it is "
                            "not a glqjit store: {}",
                            path, kStoreSchemaVersion, sqlite_detail(db, rc), kUseAnotherFile));
  }
}

void use_wal(sqlite3* db, const std::string& path) {
  // Switching a fresh file to WAL needs a moment of exclusive access; several processes opening
  // the same new file at once may see SQLITE_BUSY here without the busy handler being consulted.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(kBusyTimeoutMs);
  static constexpr std::string_view kDoing = "switching to WAL journal mode";
  for (;;) {
    Statement pragma(db, path, "PRAGMA journal_mode=WAL", kDoing);
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
      raise(db, path, rc, kDoing);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  exec(db, path, "PRAGMA synchronous=NORMAL", "setting the sync mode");
}

// Runs every migration above the file's user_version inside one write transaction.
void migrate(sqlite3* db, const std::string& path) {
  int64_t version = probe(db, path);
  check_not_newer(path, version);
  if (version == kStoreSchemaVersion) return;
  exec(db, path, "BEGIN IMMEDIATE", "starting the schema migration");
  try {
    version = probe(db, path);  // another process may have migrated it meanwhile
    check_not_newer(path, version);
    if (version == kStoreSchemaVersion) {
      exec(db, path, "COMMIT", "ending the schema migration");
      return;
    }
    const int64_t from = version;
    for (const StoreMigration& migration : store_migrations()) {
      if (migration.version <= version) continue;
      const int rc = sqlite3_exec(db, migration.sql, nullptr, nullptr, nullptr);
      if (rc != SQLITE_OK) {
        if (is_corruption(rc)) raise(db, path, rc, "migrating the schema");
        throw Error(Status::cache_error,
                    fmt::format("cache store {}: migrating the schema from version {} to {} failed: {}; if "
                                "the file is not a glqjit store, {}",
                                path, version, migration.version, sqlite_detail(db, rc), kUseAnotherFile));
      }
      version = migration.version;
    }
    exec(db, path, fmt::format("PRAGMA user_version = {}", kStoreSchemaVersion).c_str(),
         "setting the schema version");
    exec(db, path, "COMMIT", "committing the schema migration");
    if (from > 0) {
      log_line(LogLevel::info, fmt::format("cache store {}: migrated the schema from version {} to {}", path, from,
                                           kStoreSchemaVersion));
    }
  } catch (...) {
    if (sqlite3_get_autocommit(db) == 0) sqlite3_exec(db, "ROLLBACK", nullptr, nullptr, nullptr);
    throw;
  }
}

// nullptr when the file exists but this process may not write it (read-only filesystem,
// permissions): sqlite then silently opens it read-only.
Connection open_writable(const std::string& path) {
  Connection db = open_connection(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, kUseWritableFile);
  if (sqlite3_db_readonly(db.get(), "main") == 1) return nullptr;
  check_not_newer(path, probe(db.get(), path));  // before changing anything in the file
  use_wal(db.get(), path);
  migrate(db.get(), path);
  verify_tables(db.get(), path);
  return db;
}

Connection open_read_only(const std::string& path) {
  std::error_code error;
  if (!fs::exists(path, error)) {
    throw Error(Status::cache_error,
                fmt::format("cache store {} does not exist, and it was opened read-only, so it is not created; "
                            "build it first (glq-tune), or set GLQJIT_CACHE or --cache to an existing store",
                            path));
  }
  static constexpr std::string_view kAdvice = "set GLQJIT_CACHE or --cache to a readable store";
  Connection db = open_connection(path, SQLITE_OPEN_READONLY, kAdvice);
  const int first = first_read(db.get()) & 0xff;
  if (first == SQLITE_READONLY || first == SQLITE_CANTOPEN) {
    // A WAL-mode file whose -shm cannot be created (read-only folder or filesystem, as for a store
    // shipped in an image) can only be read as immutable: sqlite then takes no locks, which is
    // right for a file nobody can write here.
    log_line(LogLevel::debug,
             fmt::format("cache store {}: {}; reading it as immutable", path, sqlite_detail(db.get(), first)));
    db = open_connection(path, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, kAdvice, immutable_uri(path));
  }
  try {
    const int64_t version = probe(db.get(), path);
    check_not_newer(path, version);
    if (version < kStoreSchemaVersion) {
      throw Error(Status::cache_error,
                  fmt::format("cache store {} has schema version {} but this glqjit needs {}, and it was opened "
                              "read-only, so it is not migrated; open it once writable (without read-only), or "
                              "set GLQJIT_CACHE or --cache to another store",
                              path, version, kStoreSchemaVersion));
    }
    verify_tables(db.get(), path);
  } catch (const StoreCorrupt& corrupt) {
    throw Error(Status::cache_error,
                fmt::format("cache store {} is corrupt ({}); it was opened read-only, so it is not set aside and "
                            "rebuilt: replace it with a good copy, or set GLQJIT_CACHE or --cache to another file",
                            path, corrupt.detail));
  }
  return db;
}

void ensure_parent_folder(const std::string& path) {
  const fs::path parent = fs::path(path).parent_path();
  if (parent.empty()) return;
  std::error_code error;
  if (fs::is_directory(parent, error)) return;
  fs::create_directories(parent, error);
  std::error_code ignored;
  if (error || !fs::is_directory(parent, ignored)) {
    throw Error(
        Status::cache_error,
        fmt::format("cache store {}: cannot create its folder {}: {}; {}", path, parent.string(),
                    error ? error.message() : "something that is not a folder is in the way", kUseWritableFile));
  }
}

bool still_corrupt(const std::string& path) {
  std::error_code error;
  if (!fs::exists(path, error)) return false;
  try {
    Connection db = open_connection(path, SQLITE_OPEN_READWRITE, kUseWritableFile);
    probe(db.get(), path);
    return false;
  } catch (const StoreCorrupt&) {
    return true;
  }
}

// Moves a corrupt file and its -wal, -shm and -journal aside as <path>.corrupt-<unix time>.
// Processes that find the same file corrupt at once take turns through a lock on the folder and
// look again under it, so a fresh store made by one of them is never moved aside by another.
void set_aside_corrupt(const std::string& path, const std::string& detail) {
  const fs::path parent = fs::path(path).parent_path();
  const std::string folder = parent.empty() ? std::string(".") : parent.string();
  const int folder_fd = ::open(folder.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (folder_fd >= 0) {
    while (::flock(folder_fd, LOCK_EX) != 0 && errno == EINTR) {
    }
  }
  struct Unlock {
    int fd;
    ~Unlock() {
      if (fd >= 0) ::close(fd);  // releases the flock
    }
  } unlock{folder_fd};

  if (!still_corrupt(path)) return;

  const std::string stem = fmt::format("{}.corrupt-{}", path, now_unix());
  std::string aside = stem;
  std::error_code error;
  for (int n = 2; fs::exists(aside, error) || fs::exists(aside + "-wal", error); ++n)
    aside = fmt::format("{}-{}", stem, n);

  if (::rename(path.c_str(), aside.c_str()) != 0) {
    throw Error(Status::cache_error,
                fmt::format("cache store {} is corrupt ({}) and could not be moved aside to {}: {}; delete it by "
                            "hand (it is only a cache), or {}",
                            path, detail, aside, std::strerror(errno), kUseWritableFile));
  }
  // A -wal or -journal left behind would be replayed into the fresh store, so each must go.
  for (const char* suffix : {"-wal", "-journal", "-shm"}) {
    const std::string from = path + suffix;
    const std::string to = aside + suffix;
    if (::rename(from.c_str(), to.c_str()) == 0 || errno == ENOENT) continue;
    const int rename_errno = errno;
    if (::unlink(from.c_str()) == 0 || errno == ENOENT) continue;
    throw Error(Status::cache_error,
                fmt::format("cache store {} is corrupt ({}); moved it aside to {} but could not move or delete "
                            "{}: {}; delete it by hand, or {}",
                            path, detail, aside, from, std::strerror(rename_errno), kUseWritableFile));
  }
  log_line(LogLevel::warn, fmt::format("cache store {} is corrupt ({}); moved it aside to {} and started a fresh "
                                       "store (compiled kernels and tuning results will be rebuilt as needed)",
                                       path, detail, aside));
}

void warn_degraded(const std::string& path, const StoreCorrupt& corrupt, std::string_view doing,
                   std::string_view consequence) {
  log_line(LogLevel::warn, fmt::format("cache store {} is corrupt ({}) while {}; {}. Delete the file (it is only "
                                       "a cache) so it is rebuilt, or set GLQJIT_CACHE or --cache to another file",
                                       path, corrupt.detail, doing, consequence));
}

[[noreturn]] void throw_read_only(const std::string& path, std::string_view what) {
  throw Error(Status::cache_error,
              fmt::format("cache store {} is open read-only, so {} cannot be stored; open it without read-only "
                          "on a writable file, or {}",
                          path, what, kUseWritableFile));
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

Store::Store(const StoreOptions& options)
    : path_(options.path.empty() ? default_store_path() : options.path), read_only_(options.read_only) {
  if (read_only_) {
    db_ = open_read_only(path_).release();
    return;
  }
  ensure_parent_folder(path_);
  for (int attempt = 1;; ++attempt) {
    try {
      Connection db = open_writable(path_);
      if (db == nullptr) {
        log_line(LogLevel::warn, fmt::format("cache store {} is not writable by this process; using it read-only, "
                                             "so new kernels and tuning results are not saved ({} to keep them)",
                                             path_, kUseWritableFile));
        read_only_ = true;
        db = open_read_only(path_);
      }
      db_ = db.release();
      return;
    } catch (const StoreCorrupt& corrupt) {
      if (attempt == 3) {
        throw Error(Status::cache_error,
                    fmt::format("cache store {} still reads as corrupt after being set aside and rebuilt ({}); "
                                "set GLQJIT_CACHE or --cache to a file on a healthy disk",
                                path_, corrupt.detail));
      }
      set_aside_corrupt(path_, corrupt.detail);
    }
  }
}

Store::~Store() {
  if (db_ != nullptr) sqlite3_close_v2(db_);  // the last connection checkpoints and removes the -wal
}

std::optional<CompiledKernel> Store::find_kernel(const std::string& key_digest) {
  std::lock_guard lock(mutex_);
  try {
    Statement select(db_, path_,
                     "SELECT key_text, cubin, ptx, compile_log, registers, spill_bytes, shared_bytes, compile_ms "
                     "FROM kernels WHERE key_digest = ?1",
                     "looking up a kernel");
    select.bind_text(1, key_digest);
    if (!select.step()) return std::nullopt;
    CompiledKernel kernel;
    kernel.key_digest = key_digest;
    kernel.key_text = select.text(0);
    kernel.cubin = select.blob(1);
    kernel.ptx = select.text(2);
    kernel.compile_log = select.text(3);
    kernel.registers = static_cast<int>(select.integer(4));
    kernel.spill_bytes = static_cast<int>(select.integer(5));
    kernel.shared_bytes = static_cast<int>(select.integer(6));
    kernel.compile_ms = select.real(7);
    return kernel;
  } catch (const StoreCorrupt& corrupt) {
    warn_degraded(path_, corrupt, fmt::format("looking up kernel {}", key_digest), "treating it as a miss");
    return std::nullopt;
  }
}

void Store::put_kernel(const CompiledKernel& kernel) {
  if (read_only_) throw_read_only(path_, fmt::format("kernel {}", kernel.key_digest));
  if (kernel.key_digest.empty()) {
    throw Error(Status::cache_error,
                fmt::format("cache store {}: a kernel with an empty key digest cannot be stored; pass "
                            "KernelKey::digest() as key_digest",
                            path_));
  }
  std::lock_guard lock(mutex_);
  try {
    // One statement is its own transaction; it takes the write lock first, waiting up to the busy
    // timeout, so concurrent writers queue instead of failing. The first writer of a key wins.
    Statement insert(db_, path_,
                     "INSERT INTO kernels (key_digest, key_text, cubin, ptx, compile_log, registers, spill_bytes, "
                     "shared_bytes, compile_ms, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10) "
                     "ON CONFLICT (key_digest) DO NOTHING",
                     "storing a kernel");
    insert.bind_text(1, kernel.key_digest);
    insert.bind_text(2, kernel.key_text);
    insert.bind_blob(3, kernel.cubin);
    insert.bind_text(4, kernel.ptx);
    insert.bind_text(5, kernel.compile_log);
    insert.bind_int(6, kernel.registers);
    insert.bind_int(7, kernel.spill_bytes);
    insert.bind_int(8, kernel.shared_bytes);
    insert.bind_real(9, kernel.compile_ms);
    insert.bind_int(10, now_unix());
    insert.step();
  } catch (const StoreCorrupt& corrupt) {
    warn_degraded(path_, corrupt, fmt::format("storing kernel {}", kernel.key_digest), "it is not saved");
  }
}

std::optional<TuningRecord> Store::find_tuning(const std::string& device_signature, const std::string& spec,
                                               int batch_bucket) {
  std::lock_guard lock(mutex_);
  try {
    Statement select(db_, path_,
                     "SELECT variant, time_us, details FROM tuning "
                     "WHERE device_signature = ?1 AND spec = ?2 AND batch_bucket = ?3",
                     "looking up a tuning record");
    select.bind_text(1, device_signature);
    select.bind_text(2, spec);
    select.bind_int(3, batch_bucket);
    if (!select.step()) return std::nullopt;
    TuningRecord record;
    record.device_signature = device_signature;
    record.spec = spec;
    record.batch_bucket = batch_bucket;
    record.variant = select.text(0);
    record.time_us = select.real(1);
    record.details = select.text(2);
    return record;
  } catch (const StoreCorrupt& corrupt) {
    warn_degraded(path_, corrupt, fmt::format("looking up tuning for {} bucket {}", spec, batch_bucket),
                  "treating it as untuned");
    return std::nullopt;
  }
}

void Store::put_tuning(const TuningRecord& record) {
  if (read_only_) {
    throw_read_only(path_, fmt::format("the tuning record for {} bucket {}", record.spec, record.batch_bucket));
  }
  std::lock_guard lock(mutex_);
  try {
    Statement upsert(db_, path_,
                     "INSERT INTO tuning (device_signature, spec, batch_bucket, variant, time_us, details, "
                     "updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                     "ON CONFLICT (device_signature, spec, batch_bucket) DO UPDATE SET "
                     "variant = excluded.variant, time_us = excluded.time_us, details = excluded.details, "
                     "updated_at = excluded.updated_at",
                     "storing a tuning record");
    upsert.bind_text(1, record.device_signature);
    upsert.bind_text(2, record.spec);
    upsert.bind_int(3, record.batch_bucket);
    upsert.bind_text(4, record.variant);
    upsert.bind_real(5, record.time_us);
    upsert.bind_text(6, record.details);
    upsert.bind_int(7, now_unix());
    upsert.step();
  } catch (const StoreCorrupt& corrupt) {
    warn_degraded(path_, corrupt, fmt::format("storing tuning for {} bucket {}", record.spec, record.batch_bucket),
                  "it is not saved");
  }
}

std::vector<TuningRecord> Store::all_tuning() {
  std::lock_guard lock(mutex_);
  std::vector<TuningRecord> records;
  try {
    Statement select(db_, path_,
                     "SELECT device_signature, spec, batch_bucket, variant, time_us, details FROM tuning "
                     "ORDER BY device_signature, spec, batch_bucket",
                     "listing tuning records");
    while (select.step()) {
      TuningRecord record;
      record.device_signature = select.text(0);
      record.spec = select.text(1);
      record.batch_bucket = static_cast<int>(select.integer(2));
      record.variant = select.text(3);
      record.time_us = select.real(4);
      record.details = select.text(5);
      records.push_back(std::move(record));
    }
  } catch (const StoreCorrupt& corrupt) {
    warn_degraded(path_, corrupt, "listing tuning records", "returning none");
    return {};
  }
  return records;
}

}  // namespace glqjit
