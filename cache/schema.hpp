// The store's schema as an ordered list of migrations (DESIGN.md, Contracts: Store). Migration
// N takes a file whose `PRAGMA user_version` is N-1 to N; the store runs every migration above
// the file's version inside one transaction and then sets user_version. Never edit a shipped
// migration: append a new one and bump kStoreSchemaVersion.
#pragma once

#include <span>

#include "cache/store.hpp"

namespace glqjit {

struct StoreMigration {
  int version;      // user_version after this step
  const char* sql;  // one or more statements, run inside the migration transaction
};

std::span<const StoreMigration> store_migrations();

}  // namespace glqjit
