// The tuner's measurements: one row per (device, spec, bucket, variant), replaced on a second
// put, listed in variant order, details kept byte for byte.
#include <algorithm>
#include <catch2/catch.hpp>
#include <ctime>
#include <map>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "cache_fixtures.hpp"
#include "glqjit/error.hpp"

using namespace glqjit;
using namespace glqjit::test;

namespace {

constexpr const char* kH200 = "NVIDIA H200 | sm_count=132 | cc=9.0 | driver=13000";

MeasurementRecord measurement(const std::string& variant, const std::string& status, double median_us) {
  MeasurementRecord record;
  record.device_signature = kH200;
  record.spec = "in=4096 out=4096 bpw=2";
  record.batch_bucket = 4;
  record.variant = variant;
  record.status = status;
  record.median_us = median_us;
  record.details = R"({"samples_us":[1,2,3]})";
  return record;
}

}  // namespace

TEST_CASE("measurements: put, find, replace and order", "[cache][store][measurements]") {
  TempDir dir;
  Store store(StoreOptions{dir.file("glqjit.db"), false});
  CHECK(store.find_measurements(kH200, "in=4096 out=4096 bpw=2", 4).empty());
  const auto before = static_cast<int64_t>(std::time(nullptr));
  store.put_measurement(measurement("warps=8", "ok", 12.5));
  store.put_measurement(measurement("warps=16", "wrong_result", 9.0));
  store.put_measurement(measurement("warps=4", "compile_failed", 0));
  MeasurementRecord other_bucket = measurement("warps=8", "ok", 30);
  other_bucket.batch_bucket = 8;
  store.put_measurement(other_bucket);

  std::vector<MeasurementRecord> found = store.find_measurements(kH200, "in=4096 out=4096 bpw=2", 4);
  REQUIRE(found.size() == 3);
  CHECK(found[0].variant == "warps=16");  // variant text order, not insertion order
  CHECK(found[1].variant == "warps=4");
  CHECK(found[2].variant == "warps=8");
  CHECK(found[0].status == "wrong_result");
  CHECK(found[0].median_us == 0);  // only an ok row keeps its median
  CHECK(found[2].median_us == 12.5);
  for (const MeasurementRecord& record : found) CHECK(record.measured_at >= before);  // stamped by the put
  CHECK(sqlite_scalar(store.path(), "SELECT count(*) FROM measurements WHERE median_us IS NULL") == "2");

  MeasurementRecord again = measurement("warps=16", "ok", 7.25);
  again.details = R"({"samples_us":[7.25],"retry":true})";
  again.measured_at = 1234;
  store.put_measurement(again);
  found = store.find_measurements(kH200, "in=4096 out=4096 bpw=2", 4);
  REQUIRE(found.size() == 3);
  CHECK(same_measurement(found[0], again));
  CHECK(store.find_measurements(kH200, "in=4096 out=4096 bpw=2", 8).size() == 1);
  CHECK(store.find_measurements("another GPU", "in=4096 out=4096 bpw=2", 4).empty());
  CHECK(store.all_measurements().size() == 4);
}

TEST_CASE("measurements: many random rows round trip through a reopen", "[cache][store][measurements]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  TempDir dir;
  const std::string path = dir.file("glqjit.db");
  static constexpr const char* kDevices[] = {kH200, "NVIDIA A100-SXM4-80GB | sm_count=108 | cc=8.0 | driver=13000"};
  // The last put of each key is the one that must come back.
  std::map<std::tuple<std::string, std::string, int, std::string>, MeasurementRecord> expected;
  {
    Store store(StoreOptions{path, false});
    for (int i = 0; i < 400; ++i) {
      MeasurementRecord record = random_measurement(random, kDevices[random() % 2]);
      if (i % 10 == 9 && !expected.empty()) {  // now and then replace an earlier row
        auto earlier = expected.begin();
        std::advance(earlier, static_cast<long>(random() % expected.size()));
        record.device_signature = earlier->second.device_signature;
        record.spec = earlier->second.spec;
        record.batch_bucket = earlier->second.batch_bucket;
        record.variant = earlier->second.variant;
      }
      store.put_measurement(record);
      expected[{record.device_signature, record.spec, record.batch_bucket, record.variant}] = record;
    }
  }
  Store store(StoreOptions{path, true});
  const std::vector<MeasurementRecord> all = store.all_measurements();
  REQUIRE(all.size() == expected.size());
  auto want = expected.begin();
  int different = 0;
  for (const MeasurementRecord& record : all) {
    if (!same_measurement(record, want->second)) ++different;  // the map's order is the store's order
    ++want;
  }
  CHECK(different == 0);
  for (const auto& [key, record] : expected) {
    const auto found = store.find_measurements(record.device_signature, record.spec, record.batch_bucket);
    const auto match = std::ranges::find(found, record.variant, &MeasurementRecord::variant);
    REQUIRE(match != found.end());
    CHECK(match->details == record.details);  // byte for byte, white space and escapes included
    CHECK(std::ranges::is_sorted(found, {}, &MeasurementRecord::variant));
  }
}

TEST_CASE("measurements: bad records are refused with what to do", "[cache][store][measurements][errors]") {
  TempDir dir;
  Store store(StoreOptions{dir.file("glqjit.db"), false});
  MeasurementRecord bad_status = measurement("warps=8", "timed_out", 1);
  CHECK_THROWS_WITH(store.put_measurement(bad_status),
                    Catch::Contains(store.path()) && Catch::Contains("timed_out") && Catch::Contains("over_resources"));
  for (const char* details : {"", "{\"samples_us\":[1,2", "not json", "{'single':1}"}) {
    INFO("details: " << details);
    MeasurementRecord bad_json = measurement("warps=8", "ok", 1);
    bad_json.details = details;
    CHECK_THROWS_WITH(store.put_measurement(bad_json), Catch::Contains(store.path()) && Catch::Contains("JSON"));
  }
  CHECK(store.all_measurements().empty());

  store.put_measurement(measurement("warps=8", "ok", 1));
  Store read_only(StoreOptions{store.path(), true});
  CHECK_THROWS_WITH(read_only.put_measurement(measurement("warps=2", "ok", 1)),
                    Catch::Contains("read-only") && Catch::Contains("warps=2"));
  CHECK(read_only.all_measurements().size() == 1);
}
