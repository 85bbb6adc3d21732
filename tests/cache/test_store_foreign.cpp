// A sqlite file of another program is refused before anything is written to it: same bytes
// afterwards, no journal mode switched, no -wal, -shm or -journal left beside it.
#include <catch2/catch.hpp>
#include <filesystem>
#include <random>
#include <string>

#include "cache_fixtures.hpp"
#include "glqjit/error.hpp"

using namespace glqjit;
using namespace glqjit::test;
namespace fs = std::filesystem;

namespace {

struct Foreign {
  const char* name;
  std::string sql;   // makes the file
  std::string says;  // what the refusal names beside the path
};

}  // namespace

TEST_CASE("foreign files are refused and left byte for byte as they were", "[cache][store][foreign]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  // Any nonzero id but ours; sqlite stores it as a signed 32-bit number.
  int64_t other_id = static_cast<int32_t>(random());
  if (other_id == 0 || other_id == kStoreApplicationId) other_id = 1;
  const std::string other_hex = fmt::format("0x{:08X}", static_cast<uint32_t>(other_id));
  const std::string value = std::to_string(random());
  const Foreign cases[] = {
      {"other-tables", "CREATE TABLE notes(x); INSERT INTO notes VALUES (" + value + ");", "notes"},
      {"other-tables-wal", "PRAGMA journal_mode=WAL; CREATE TABLE notes(x); INSERT INTO notes VALUES (" + value + ");",
       "notes"},
      {"other-id-empty", "PRAGMA application_id = " + std::to_string(other_id) + ";", other_hex},
      {"other-id-our-tables",
       std::string(store_migrations()[0].sql) +
           "PRAGMA user_version = 1; PRAGMA application_id = " + std::to_string(other_id) + ";",
       other_hex},
      {"other-version", "CREATE TABLE kernels(x); PRAGMA user_version = " + std::to_string(3 + random() % 100) + ";",
       "kernels"},
  };
  for (const Foreign& foreign : cases) {
    DYNAMIC_SECTION(foreign.name) {
      TempDir dir;
      const std::string path = dir.file("their.db");
      sqlite_exec(path, foreign.sql);
      const std::string bytes = read_bytes(path);
      const std::string mode = sqlite_scalar(path, "PRAGMA journal_mode");
      REQUIRE(dir.find("their.db").size() == 1);
      for (const bool read_only : {false, true}) {
        INFO("read_only " << read_only);
        try {
          Store store(StoreOptions{path, read_only});
          FAIL("opened another program's file as a store");
        } catch (const Error& error) {
          INFO("message: " << error.what());
          CHECK(error.status() == Status::cache_error);
          CHECK_THAT(error.what(), Catch::Contains(path) && Catch::Contains("not a glqjit store") &&
                                       Catch::Contains(foreign.says) && Catch::Contains("GLQJIT_CACHE"));
        }
        CHECK(read_bytes(path) == bytes);
        CHECK(dir.find("their.db").size() == 1);  // no -wal, -shm, -journal or .corrupt- beside it
      }
      CHECK(sqlite_scalar(path, "PRAGMA journal_mode") == mode);
    }
  }
}
