#include "cache/schema.hpp"

#include <fmt/format.h>

#include <optional>
#include <string_view>
#include <vector>

#include "cache/key.hpp"
#include "glqjit/error.hpp"
#include "support/log.hpp"
#include "support/sha256.hpp"

namespace glqjit {
namespace {

// Hashes every kernel's cubin and reads its arch out of key_text. Row by row through the rowids,
// so a multi-GB store is never in memory at once; each UPDATE rewrites its row, so the WAL grows
// to about the size of the store until the checkpoint after the commit.
void fill_kernel_hash_and_arch(sqlite3* db, const std::string& path) {
  std::vector<int64_t> rows;
  {
    sqlite::Statement list(db, path, "SELECT rowid FROM kernels", "listing kernels to hash");
    while (list.step()) rows.push_back(list.integer(0));
  }
  if (rows.empty()) return;
  log_line(LogLevel::info,
           fmt::format("cache store {}: hashing {} kernels for schema version 2 (once)", path, rows.size()));
  static constexpr std::string_view kDoing = "hashing a kernel for schema version 2";
  sqlite::Statement select(db, path, "SELECT key_text, cubin FROM kernels WHERE rowid = ?1", kDoing);
  sqlite::Statement update(db, path, "UPDATE kernels SET cubin_sha256 = ?2, arch = ?3 WHERE rowid = ?1", kDoing);
  for (const int64_t row : rows) {
    select.bind_int(1, row);
    select.step();
    update.bind_int(1, row);
    update.bind_text(2, cubin_sha256(select.blob(1)));
    update.bind_text(3, arch_of_canonical(select.text(0)));
    select.reset();
    update.step();
    update.reset();
  }
}

// Plain CREATE TABLE (no IF NOT EXISTS): a file that already has a table of the same name makes
// the migration fail and roll back instead of being silently mixed with ours (identify_store
// refuses such files before this; this is the second line).
constexpr StoreMigration kMigrations[] = {
    {1, R"sql(
CREATE TABLE kernels (
  key_digest   TEXT PRIMARY KEY NOT NULL,
  key_text     TEXT NOT NULL,
  cubin        BLOB NOT NULL,
  ptx          TEXT NOT NULL DEFAULT '',
  compile_log  TEXT NOT NULL DEFAULT '',
  registers    INTEGER NOT NULL DEFAULT 0,
  spill_bytes  INTEGER NOT NULL DEFAULT 0,
  shared_bytes INTEGER NOT NULL DEFAULT 0,
  compile_ms   REAL NOT NULL DEFAULT 0,
  created_at   INTEGER NOT NULL
);
CREATE TABLE tuning (
  device_signature TEXT NOT NULL,
  spec             TEXT NOT NULL,
  batch_bucket     INTEGER NOT NULL,
  variant          TEXT NOT NULL,
  time_us          REAL NOT NULL,
  details          TEXT NOT NULL DEFAULT '',
  updated_at       INTEGER NOT NULL,
  PRIMARY KEY (device_signature, spec, batch_bucket)
);
)sql",
     nullptr},
    // cubin_sha256 is NULL only between the ALTER and fill_kernel_hash_and_arch, inside one
    // transaction; afterwards a row without a matching hash is not served. The index on arch lets an
    // export pick kernels without reading every cubin (arch sits after the blob in each row).
    // median_us is NULL for every status but "ok".
    {2, R"sql(
ALTER TABLE kernels ADD COLUMN cubin_sha256 TEXT;
ALTER TABLE kernels ADD COLUMN arch TEXT NOT NULL DEFAULT '';
CREATE INDEX kernels_by_arch ON kernels (arch);
CREATE TABLE measurements (
  device_signature TEXT NOT NULL,
  spec             TEXT NOT NULL,
  batch_bucket     INTEGER NOT NULL,
  variant          TEXT NOT NULL,
  status           TEXT NOT NULL,
  median_us        REAL,
  details          TEXT NOT NULL,
  measured_at      INTEGER NOT NULL,
  PRIMARY KEY (device_signature, spec, batch_bucket, variant)
);
)sql",
     fill_kernel_hash_and_arch},
};

constexpr bool migrations_are_ordered() {
  int expected = 1;
  for (const auto& migration : kMigrations) {
    if (migration.version != expected++) return false;
  }
  return expected - 1 == kStoreSchemaVersion;
}
static_assert(migrations_are_ordered(), "migrations must be numbered 1..kStoreSchemaVersion in order");

// Every column the members read or write, as queries that prepare only when all of them are
// there: the columns of version 1, then those version 2 added.
constexpr const char* kVersion1Columns[] = {
    "SELECT key_digest, key_text, cubin, ptx, compile_log, registers, spill_bytes, shared_bytes, compile_ms, "
    "created_at FROM kernels LIMIT 0",
    "SELECT device_signature, spec, batch_bucket, variant, time_us, details, updated_at FROM tuning LIMIT 0",
};
constexpr const char* kVersion2Columns[] = {
    "SELECT cubin_sha256, arch FROM kernels LIMIT 0",
    "SELECT device_signature, spec, batch_bucket, variant, status, median_us, details, measured_at FROM "
    "measurements LIMIT 0",
};

// sqlite's complaint about the first query of columns that does not prepare; nullopt when all do.
std::optional<std::string> missing_columns(sqlite3* db, const std::string& path, std::span<const char* const> columns) {
  for (const char* sql : columns) {
    sqlite3_stmt* stmt = nullptr;
    const int rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr);
    sqlite3_finalize(stmt);
    if (rc == SQLITE_OK) continue;
    if (sqlite::is_corruption(rc)) sqlite::raise(db, path, rc, "reading the schema");
    return sqlite::detail(db, rc);
  }
  return std::nullopt;
}

[[noreturn]] void throw_foreign(const std::string& path, const std::string& why) {
  throw Error(Status::cache_error,
              fmt::format("cache store {} is not a glqjit store ({}); it was left as it is: set GLQJIT_CACHE or "
                          "--cache to a glqjit store or a new file",
                          path, why));
}

}  // namespace

std::span<const StoreMigration> store_migrations() { return kMigrations; }

std::string cubin_sha256(const std::vector<uint8_t>& cubin) {
  return sha256_hex(std::string_view(reinterpret_cast<const char*>(cubin.data()), cubin.size()));
}

int64_t identify_store(sqlite3* db, const std::string& path) {
  // One statement, so one snapshot: read one by one, another process's migration could commit
  // between the reads and leave tables without the version that goes with them.
  sqlite::Statement identity(db, path,
                             "SELECT (SELECT user_version FROM pragma_user_version), "
                             "(SELECT application_id FROM pragma_application_id), (SELECT count(*) FROM sqlite_master)",
                             "reading the schema version");
  identity.step();
  const int64_t version = identity.integer(0);
  const int64_t application_id = identity.integer(1);
  const int64_t objects = identity.integer(2);
  if (application_id == kStoreApplicationId) {
    if (version > kStoreSchemaVersion) {
      throw Error(Status::cache_error,
                  fmt::format("cache store {} has schema version {}, newer than this glqjit knows ({}); use a "
                              "newer glqjit, or {}",
                              path, version, kStoreSchemaVersion, sqlite::kUseAnotherFile));
    }
    // migrate_store sets the application_id together with a version of 1 or more.
    if (version < 1) throw_foreign(path, fmt::format("it has glqjit's application_id but schema version {}", version));
    return version;
  }
  if (application_id != 0) {
    throw_foreign(path, fmt::format("its sqlite application_id is 0x{:08X}, not glqjit's 0x{:08X}",
                                    static_cast<uint32_t>(application_id), kStoreApplicationId));
  }
  if (objects == 0 && version == 0) return 0;
  if (version == 1 && !missing_columns(db, path, kVersion1Columns)) return 1;
  sqlite::Statement names(db, path,
                          "SELECT group_concat(name, ', ') FROM (SELECT name FROM sqlite_master WHERE type = "
                          "'table' AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\' ORDER BY name)",
                          "reading the schema");
  names.step();
  const std::string tables = names.is_null(0) ? std::string("no tables") : "the tables " + names.text(0);
  throw_foreign(path, fmt::format("it has no glqjit application_id, schema version {} and {}", version, tables));
}

void migrate_store(sqlite3* db, const std::string& path) {
  if (identify_store(db, path) == kStoreSchemaVersion) return;
  sqlite::Transaction transaction(db, path, "BEGIN IMMEDIATE", "starting the schema migration");
  // Another process may have migrated it meanwhile; then the transaction, which wrote nothing, rolls back.
  const int64_t from = identify_store(db, path);
  if (from == kStoreSchemaVersion) return;
  int64_t version = from;
  for (const StoreMigration& migration : store_migrations()) {
    if (migration.version <= version) continue;
    const int rc = sqlite3_exec(db, migration.sql, nullptr, nullptr, nullptr);
    if (rc != SQLITE_OK) {
      if (sqlite::is_corruption(rc)) sqlite::raise(db, path, rc, "migrating the schema");
      throw Error(Status::cache_error,
                  fmt::format("cache store {}: migrating the schema from version {} to {} failed: {}; if the file is "
                              "not a glqjit store, {}",
                              path, version, migration.version, sqlite::detail(db, rc), sqlite::kUseAnotherFile));
    }
    if (migration.finish != nullptr) migration.finish(db, path);
    version = migration.version;
  }
  sqlite::exec(
      db, path,
      fmt::format("PRAGMA user_version = {}; PRAGMA application_id = {}", kStoreSchemaVersion, kStoreApplicationId)
          .c_str(),
      "setting the schema version");
  transaction.commit();
  if (from > 0) {
    log_line(LogLevel::info,
             fmt::format("cache store {}: migrated the schema from version {} to {}", path, from, kStoreSchemaVersion));
  }
}

void verify_store_tables(sqlite3* db, const std::string& path, int64_t version) {
  std::optional<std::string> missing = missing_columns(db, path, kVersion1Columns);
  if (!missing && version >= 2) missing = missing_columns(db, path, kVersion2Columns);
  if (!missing) return;
  throw Error(Status::cache_error,
              fmt::format("cache store {} says schema version {} but its tables do not match ({}); it is not a "
                          "glqjit store: {}",
                          path, version, *missing, sqlite::kUseAnotherFile));
}

}  // namespace glqjit
