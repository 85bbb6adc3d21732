// The store's schema (DESIGN.md, Contracts: Store): an ordered list of migrations, how a file is
// recognized as a store before anything is written to it, and how it is brought up to date.
// Migration N takes a file whose `PRAGMA user_version` is N-1 to N; the store runs every migration
// above the file's version inside one transaction and then sets user_version and application_id.
// Never edit a shipped migration: append a new one and bump kStoreSchemaVersion.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "cache/sqlite.hpp"
#include "cache/store.hpp"

namespace glqjit {

// `PRAGMA application_id` of every store from schema version 2 on: "GLQJ" in ASCII. Version 1
// files have 0 and are recognized by their tables.
constexpr int64_t kStoreApplicationId = 0x474C514A;

struct StoreMigration {
  int version;      // user_version after this step
  const char* sql;  // one or more statements, run inside the migration transaction
  // Work SQL cannot do, run after sql inside the same transaction; may be null.
  void (*finish)(sqlite3* db, const std::string& path);
};

std::span<const StoreMigration> store_migrations();

// What the kernels.cubin_sha256 column holds for these bytes.
std::string cubin_sha256(const std::vector<uint8_t>& cubin);

// Reads the file's identity without writing anything and returns its schema version: 0 for an
// empty database (a new store), 1..kStoreSchemaVersion for a store. Throws Error(cache_error) for
// a file of another program (another application_id, or tables that are not a store's) and for a
// store newer than this glqjit; sqlite::Corrupt for a damaged file. It is also the cheap health
// check of every open: it reads page 1 (the header, whose page count sqlite compares with the
// file's size, so a truncated file shows up here) and the schema, and no later page, since a
// full integrity_check would cost seconds on a shipped store.
int64_t identify_store(sqlite3* db, const std::string& path);

// Runs every migration above the file's version inside one write transaction (and nothing when
// another process got there first).
void migrate_store(sqlite3* db, const std::string& path);

// Checks that every column the store's members read or write at this schema version is there.
void verify_store_tables(sqlite3* db, const std::string& path, int64_t version);

}  // namespace glqjit
