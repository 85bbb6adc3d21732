#include "cache/schema.hpp"

namespace glqjit {
namespace {

// Plain CREATE TABLE (no IF NOT EXISTS): a foreign sqlite file that already has a table of the
// same name makes the migration fail and roll back instead of being silently mixed with ours.
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
)sql"},
};

constexpr bool migrations_are_ordered() {
  int expected = 1;
  for (const auto& migration : kMigrations) {
    if (migration.version != expected++) return false;
  }
  return expected - 1 == kStoreSchemaVersion;
}
static_assert(migrations_are_ordered(), "migrations must be numbered 1..kStoreSchemaVersion in order");

}  // namespace

std::span<const StoreMigration> store_migrations() { return kMigrations; }

}  // namespace glqjit
