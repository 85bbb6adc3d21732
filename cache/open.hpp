// Opening a store file (DESIGN.md, Contracts: Store): its default path, its folder, and the two
// ways in. Writable refuses another program's file before writing anything, switches to WAL,
// migrates, and sets a corrupt file aside to rebuild it; read-only changes nothing in the file.
#pragma once

#include <cstdint>
#include <string>

#include "cache/sqlite.hpp"

namespace glqjit {

struct OpenedStore {
  sqlite::Connection db;
  bool read_only = false;
  int64_t schema_version = 0;  // below kStoreSchemaVersion only for an old file read as it is
};

// Throws Error(cache_error) saying what to do when the path cannot be used.
OpenedStore open_store_file(const std::string& path, bool read_only);

// Creates the folder path is in; throws Error(cache_error) when it cannot.
void ensure_parent_folder(const std::string& path);

}  // namespace glqjit
