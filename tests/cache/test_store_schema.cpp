// Schema version 2: a version-1 file is migrated in place (kernels hashed, arch filled, rows
// kept), or read as it is when opened read-only; every store carries glqjit's application_id.
#include <catch2/catch.hpp>
#include <filesystem>
#include <random>
#include <string>
#include <vector>

#include "cache_fixtures.hpp"
#include "glqjit/error.hpp"

using namespace glqjit;
using namespace glqjit::test;
namespace fs = std::filesystem;

namespace {

constexpr const char* kArches[] = {"sm_80", "sm_86", "sm_89", "sm_90a", "sm_100a", "sm_120"};

struct Version1Rows {
  std::vector<CompiledKernel> kernels;
  std::vector<TuningRecord> tuning;
};

Version1Rows random_version1_rows(std::mt19937_64& random) {
  Version1Rows rows;
  const int kernels = 1 + static_cast<int>(random() % 6);
  for (int i = 0; i < kernels; ++i) rows.kernels.push_back(random_kernel(random, kArches[random() % 6]));
  TuningRecord record = sample_tuning("spec-" + std::to_string(random()), 8, "variant-" + std::to_string(random()));
  record.updated_at = 1'600'000'000 + static_cast<int64_t>(random() % 1000);
  rows.tuning.push_back(record);
  return rows;
}

}  // namespace

TEST_CASE("schema: a version-1 file is migrated to version 2 and keeps its rows", "[cache][store][schema]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  TempDir dir;
  const std::string path = dir.file("v1.db");
  const Version1Rows rows = random_version1_rows(random);
  write_version1_store(path, rows.kernels, rows.tuning);
  REQUIRE(sqlite_scalar(path, "PRAGMA user_version") == "1");
  REQUIRE(sqlite_scalar(path, "PRAGMA application_id") == "0");

  {
    StderrCapture capture(dir.file("stderr.txt"));
    Store store(StoreOptions{path, false});
    const std::string log = capture.finish();
    INFO("stderr: " << log);
    CHECK_THAT(log, Catch::Contains("hashing " + std::to_string(rows.kernels.size()) + " kernels"));
    for (const CompiledKernel& kernel : rows.kernels) {
      const auto back = store.find_kernel(kernel.key_digest);  // served: its hash verifies
      REQUIRE(back.has_value());
      CHECK(same_kernel(*back, kernel));
      CHECK(back->created_at == kernel.created_at);
    }
    const auto tuning = store.find_tuning(rows.tuning[0].device_signature, rows.tuning[0].spec, 8);
    REQUIRE(tuning.has_value());
    CHECK(same_tuning(*tuning, rows.tuning[0]));
    CHECK(store.all_measurements().empty());
  }
  CHECK(sqlite_scalar(path, "PRAGMA user_version") == "2");
  CHECK(sqlite_scalar(path, "PRAGMA application_id") == std::to_string(kStoreApplicationId));
  CHECK(sqlite_scalar(path, "PRAGMA journal_mode") == "wal");
  CHECK(sqlite_scalar(path, "PRAGMA integrity_check") == "ok");
  CHECK(sqlite_scalar(path, "SELECT count(*) FROM kernels") == std::to_string(rows.kernels.size()));
  for (const CompiledKernel& kernel : rows.kernels) {
    const std::string where = " FROM kernels WHERE key_digest = '" + kernel.key_digest + "'";
    CHECK(sqlite_scalar(path, "SELECT cubin_sha256" + where) == cubin_sha256(kernel.cubin));
    CHECK(sqlite_scalar(path, "SELECT arch" + where) == arch_of_canonical(kernel.key_text));
    CHECK_FALSE(sqlite_scalar(path, "SELECT arch" + where).empty());
  }
  CHECK(sqlite_scalar(path, "SELECT count(*) FROM measurements") == "0");
}

TEST_CASE("schema: a version-1 file opened read-only is read as it is", "[cache][store][schema]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  TempDir dir;
  const std::string path = dir.file("v1.db");
  const Version1Rows rows = random_version1_rows(random);
  write_version1_store(path, rows.kernels, rows.tuning);
  const std::string bytes = read_bytes(path);
  {
    Store store(StoreOptions{path, true});
    for (const CompiledKernel& kernel : rows.kernels) {
      const auto back = store.find_kernel(kernel.key_digest);
      REQUIRE(back.has_value());
      CHECK(same_kernel(*back, kernel));
    }
    int listed = 0;
    store.for_each_kernel([&](const CompiledKernel&) { ++listed; });
    CHECK(listed == static_cast<int>(rows.kernels.size()));
    const std::vector<TuningRecord> tuning = store.all_tuning();
    REQUIRE(tuning.size() == 1);
    CHECK(same_tuning(tuning[0], rows.tuning[0]));
    CHECK(store.find_measurements(rows.tuning[0].device_signature, rows.tuning[0].spec, 8).empty());
    CHECK(store.all_measurements().empty());
    MeasurementRecord measurement = random_measurement(random, "gpu");
    CHECK_THROWS_AS(store.put_measurement(measurement), Error);
  }
  CHECK(read_bytes(path) == bytes);
  CHECK(sqlite_scalar(path, "PRAGMA user_version") == "1");
}

TEST_CASE("schema: new and empty files become stores with glqjit's application_id", "[cache][store][schema]") {
  TempDir dir;
  const std::string empty = dir.file("empty.db");
  std::ofstream(empty).flush();
  for (const std::string& path : {dir.file("new.db"), empty}) {
    INFO(path);
    { Store store(StoreOptions{path, false}); }
    CHECK(sqlite_scalar(path, "PRAGMA application_id") == std::to_string(kStoreApplicationId));
    CHECK(sqlite_scalar(path, "PRAGMA user_version") == std::to_string(kStoreSchemaVersion));
    CHECK(sqlite_scalar(path, "SELECT count(*) FROM sqlite_master WHERE name = 'measurements'") == "1");
    CHECK(sqlite_scalar(path, "SELECT count(*) FROM sqlite_master WHERE name = 'kernels_by_arch'") == "1");
  }
}

TEST_CASE("schema: arch_of_canonical reads the arch line of a key", "[cache][key]") {
  KernelKey key = sample_key("arch");
  for (const char* arch : kArches) {
    key.arch = arch;
    CHECK(arch_of_canonical(key.canonical()) == arch);
  }
  key.spec = "x\narch=sm_00";  // escaped by canonical(), so it cannot pose as the arch line
  key.arch = "sm_90a";
  CHECK(arch_of_canonical(key.canonical()) == "sm_90a");
  CHECK(arch_of_canonical("arch=sm_86") == "sm_86");
  CHECK(arch_of_canonical("spec=x\narch=sm_89\n") == "sm_89");
  CHECK(arch_of_canonical("spec=x\nsearch=sm_89\n").empty());
  CHECK(arch_of_canonical("").empty());
}
