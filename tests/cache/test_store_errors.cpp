// Every bad input is an Error(cache_error) whose message names the path and what to do.
#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>

#include "cache_checks.hpp"
#include "cache_fixtures.hpp"
#include "glqjit/error.hpp"

using namespace glqjit;
using namespace glqjit::test;
namespace fs = std::filesystem;

TEST_CASE("store errors: a path that cannot be created", "[cache][store][errors]") {
  TempDir dir;
  const std::string regular = dir.file("a-regular-file");
  std::ofstream(regular) << "not a folder";
  const std::string under_file = regular + "/glqjit.db";
  require_cache_error([&] { Store store(StoreOptions{under_file, false}); }, {under_file, "GLQJIT_CACHE"});
  const std::string deeper = regular + "/sub/glqjit.db";
  require_cache_error([&] { Store store(StoreOptions{deeper, false}); }, {deeper, "GLQJIT_CACHE"});
  const std::string in_proc = "/proc/glqjit-no-such-folder/glqjit.db";
  require_cache_error([&] { Store store(StoreOptions{in_proc, false}); }, {in_proc, "GLQJIT_CACHE"});
  // A folder where the file should be.
  fs::create_directory(dir.file("a-folder"));
  require_cache_error(
      [&] {
        Store store(StoreOptions{dir.file("a-folder"), false});
      },
      {dir.file("a-folder"), "GLQJIT_CACHE"});
  CHECK(std::ifstream(regular).good());
  CHECK(fs::is_directory(dir.file("a-folder")));
}

TEST_CASE("store errors: read-only open of a missing file", "[cache][store][errors]") {
  TempDir dir;
  const std::string path = dir.file("missing/glqjit.db");
  require_cache_error([&] { Store store(StoreOptions{path, true}); }, {path, "does not exist", "GLQJIT_CACHE"});
  CHECK_FALSE(fs::exists(dir.file("missing")));  // read-only creates nothing
}

TEST_CASE("store errors: put on a read-only store", "[cache][store][errors]") {
  TempDir dir;
  const std::string path = dir.file("glqjit.db");
  const CompiledKernel kept = sample_kernel("kept");
  {
    Store store(StoreOptions{path, false});
    store.put_kernel(kept);
  }
  Store store(StoreOptions{path, true});
  REQUIRE(store.read_only());
  const CompiledKernel kernel = sample_kernel("new");
  require_cache_error([&] { store.put_kernel(kernel); }, {path, "read-only", kernel.key_digest});
  require_cache_error([&] { store.put_tuning(sample_tuning("spec-x", 4, "v")); }, {path, "read-only", "spec-x"});
  CHECK(store.find_kernel(kept.key_digest).has_value());  // reads still work
  CHECK_FALSE(store.find_kernel(kernel.key_digest).has_value());
  CHECK(store.all_tuning().empty());
}

TEST_CASE("store errors: a file from a newer glqjit is refused and kept", "[cache][store][errors]") {
  TempDir dir;
  const std::string path = dir.file("glqjit.db");
  {
    Store store(StoreOptions{path, false});
    store.put_kernel(sample_kernel("from-the-future"));
  }
  const std::string newer = std::to_string(kStoreSchemaVersion + 1);
  sqlite_scalar(path, "PRAGMA user_version = " + newer);
  require_cache_error([&] { Store store(StoreOptions{path, false}); }, {path, "newer", newer, "GLQJIT_CACHE"});
  require_cache_error([&] { Store store(StoreOptions{path, true}); }, {path, "newer", newer});
  CHECK(sqlite_scalar(path, "PRAGMA user_version") == newer);
  CHECK(sqlite_scalar(path, "SELECT count(*) FROM kernels") == "1");
  CHECK(dir.find("glqjit.db.corrupt-").empty());
}

TEST_CASE("store errors: a foreign sqlite file is refused and kept", "[cache][store][errors]") {
  TempDir dir;
  const std::string path = dir.file("other.db");
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "CREATE TABLE kernels(name TEXT); INSERT INTO kernels VALUES ('linux');", nullptr,
                       nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  require_cache_error([&] { Store store(StoreOptions{path, false}); }, {path, "GLQJIT_CACHE"});
  // Refused before any write: nothing of ours was added, nothing of theirs was lost.
  CHECK(sqlite_scalar(path, "PRAGMA user_version") == "0");
  CHECK(sqlite_scalar(path, "SELECT count(*) FROM sqlite_master WHERE name = 'tuning'") == "0");
  CHECK(sqlite_scalar(path, "SELECT name FROM kernels") == "linux");

  // Same schema version number, other tables: refused as well.
  const std::string lookalike = dir.file("lookalike.db");
  REQUIRE(sqlite3_open(lookalike.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "CREATE TABLE t(x); PRAGMA user_version = 1;", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
  require_cache_error([&] { Store store(StoreOptions{lookalike, false}); }, {lookalike, "not a glqjit store"});
  require_cache_error([&] { Store store(StoreOptions{lookalike, true}); }, {lookalike, "not a glqjit store"});
}

TEST_CASE("store errors: a store without the tables of its version is refused and kept", "[cache][store][errors]") {
  TempDir dir;
  const std::string path = dir.file("glqjit.db");
  { Store store(StoreOptions{path, false}); }
  // In the rollback journal mode, as a copy by another program may be: the open's switch to WAL
  // once wrote to the file before its tables were checked (found by fuzz_store_file).
  sqlite_exec(path, "DROP TABLE measurements; PRAGMA journal_mode = DELETE;");
  const std::string before = read_bytes(path);
  require_cache_error([&] { Store store(StoreOptions{path, false}); }, {path, "measurements", "not a glqjit store"});
  require_cache_error([&] { Store store(StoreOptions{path, true}); }, {path, "measurements", "not a glqjit store"});
  CHECK(read_bytes(path) == before);
  CHECK(dir.find("glqjit.db.corrupt-").empty());
}

TEST_CASE("store errors: glqjit's application_id with a schema version below 1 is refused and kept",
          "[cache][store][errors]") {
  TempDir dir;
  const std::string path = dir.file("glqjit.db");
  { Store store(StoreOptions{path, false}); }
  for (const char* version : {"0", "-1"}) {
    INFO(version);
    // No glqjit writes such a file; it was once taken for a store and written to (found by fuzz_store_file).
    sqlite_exec(path, std::string("PRAGMA journal_mode = DELETE; PRAGMA user_version = ") + version);
    const std::string before = read_bytes(path);
    const std::string says = "schema version " + std::string(version);
    require_cache_error([&] { Store store(StoreOptions{path, false}); }, {path, says});
    require_cache_error([&] { Store store(StoreOptions{path, true}); }, {path, says});
    CHECK(read_bytes(path) == before);
  }
  CHECK(dir.find("glqjit.db.corrupt-").empty());
}

TEST_CASE("store errors: an old file opened read-only is not migrated", "[cache][store][errors]") {
  TempDir dir;
  const std::string path = dir.file("old.db");
  std::ofstream(path).flush();  // an empty file is a sqlite database of schema version 0
  require_cache_error([&] { Store store(StoreOptions{path, true}); }, {path, "read-only", "migrated"});
  CHECK(fs::file_size(path) == 0);
}

TEST_CASE("store errors: a kernel without a key digest", "[cache][store][errors]") {
  TempDir dir;
  Store store(StoreOptions{dir.file("glqjit.db"), false});
  CompiledKernel kernel = sample_kernel("k");
  kernel.key_digest.clear();
  require_cache_error([&] { store.put_kernel(kernel); }, {store.path(), "key digest"});
}
