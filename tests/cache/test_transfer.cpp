// Export (a filtered copy into a new file, written whole or not at all) and merge (every row of
// another store folded in, in one transaction, by first-writer and newer-wins rules).
#include <algorithm>
#include <catch2/catch.hpp>
#include <filesystem>
#include <functional>
#include <iterator>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "cache/transfer.hpp"
#include "cache_checks.hpp"
#include "cache_fixtures.hpp"
#include "glqjit/error.hpp"

using namespace glqjit;
using namespace glqjit::test;
namespace fs = std::filesystem;

namespace {

constexpr const char* kH200 = "NVIDIA H200 | sm_count=132 | cc=9.0 | driver=13000";
constexpr const char* kA100 = "NVIDIA A100-SXM4-80GB | sm_count=108 | cc=8.0 | driver=13000";
constexpr const char* kL40 = "NVIDIA L40S | sm_count=142 | cc=8.9 | driver=12080";
constexpr const char* kDevices[] = {kH200, kA100, kL40};
constexpr const char* kArches[] = {"sm_90", "sm_90a", "sm_80", "sm_89", "sm_100a", "sm_120"};

struct Rows {
  std::vector<CompiledKernel> kernels;          // by digest
  std::vector<TuningRecord> tuning;             // by (device, spec, bucket)
  std::vector<MeasurementRecord> measurements;  // by (device, spec, bucket, variant)
};

TuningRecord random_tuning(std::mt19937_64& random, const std::string& device_signature) {
  TuningRecord record;
  record.device_signature = device_signature;
  record.spec = "in=" + std::to_string(random() % 100000) + " out=4096";
  record.batch_bucket = 1 << (random() % 6);
  record.variant = "warps=" + std::to_string(random() % 32);
  record.time_us = static_cast<double>(random() % 100000) / 8.0;
  record.details = random_json(random);
  record.updated_at = 1'700'000'000 + static_cast<int64_t>(random() % 100'000'000);
  return record;
}

void sort_rows(Rows& rows) {
  std::ranges::sort(rows.kernels, {}, &CompiledKernel::key_digest);
  std::ranges::sort(rows.tuning, {},
                    [](const TuningRecord& r) { return std::tie(r.device_signature, r.spec, r.batch_bucket); });
  std::ranges::sort(rows.measurements, {}, [](const MeasurementRecord& r) {
    return std::tie(r.device_signature, r.spec, r.batch_bucket, r.variant);
  });
}

// Puts random rows of every device and arch into store; returns them sorted as the store lists them.
// A drawn record whose key is already taken is dropped, so every row put is a row kept.
Rows fill(Store& store, std::mt19937_64& random) {
  Rows rows;
  for (int i = 0; i < 30; ++i) rows.kernels.push_back(random_kernel(random, kArches[random() % std::size(kArches)]));
  const auto device = [&] { return kDevices[random() % std::size(kDevices)]; };
  for (int i = 0; i < 24; ++i) {
    const TuningRecord record = random_tuning(random, device());
    const auto key = [](const TuningRecord& r) { return std::tie(r.device_signature, r.spec, r.batch_bucket); };
    if (std::ranges::none_of(rows.tuning, [&](const TuningRecord& r) { return key(r) == key(record); })) {
      rows.tuning.push_back(record);
    }
  }
  for (int i = 0; i < 60; ++i) {
    const MeasurementRecord record = random_measurement(random, device());
    const auto key = [](const MeasurementRecord& r) {
      return std::tie(r.device_signature, r.spec, r.batch_bucket, r.variant);
    };
    if (std::ranges::none_of(rows.measurements, [&](const MeasurementRecord& r) { return key(r) == key(record); })) {
      rows.measurements.push_back(record);
    }
  }
  for (const auto& kernel : rows.kernels) store.put_kernel(kernel);
  for (const auto& record : rows.tuning) store.put_tuning(record);
  for (const auto& record : rows.measurements) store.put_measurement(record);
  sort_rows(rows);
  return rows;
}

Rows read_all(Store& store) {
  Rows rows;
  store.for_each_kernel([&](const CompiledKernel& kernel) { rows.kernels.push_back(kernel); });
  rows.tuning = store.all_tuning();
  rows.measurements = store.all_measurements();
  return rows;
}

Rows read_all(const std::string& path) {
  Store store(StoreOptions{path, true});
  return read_all(store);
}

// Rows equal field by field, timestamps included; says which table differs.
void check_same_rows(const Rows& got, const Rows& want) {
  REQUIRE(got.kernels.size() == want.kernels.size());
  for (size_t i = 0; i < got.kernels.size(); ++i) {
    INFO("kernel " << want.kernels[i].key_digest);
    CHECK(same_kernel(got.kernels[i], want.kernels[i]));
    CHECK(got.kernels[i].created_at == want.kernels[i].created_at);
  }
  REQUIRE(got.tuning.size() == want.tuning.size());
  for (size_t i = 0; i < got.tuning.size(); ++i) CHECK(same_tuning(got.tuning[i], want.tuning[i]));
  REQUIRE(got.measurements.size() == want.measurements.size());
  for (size_t i = 0; i < got.measurements.size(); ++i) {
    CHECK(same_measurement(got.measurements[i], want.measurements[i]));
  }
}

Rows keep(const Rows& rows, const auto& kernel_fits, const auto& record_fits) {
  Rows kept;
  std::ranges::copy_if(rows.kernels, std::back_inserter(kept.kernels), kernel_fits);
  std::ranges::copy_if(rows.tuning, std::back_inserter(kept.tuning),
                       [&](const TuningRecord& r) { return record_fits(r.device_signature); });
  std::ranges::copy_if(rows.measurements, std::back_inserter(kept.measurements),
                       [&](const MeasurementRecord& r) { return record_fits(r.device_signature); });
  return kept;
}

bool of_arch(const CompiledKernel& kernel, std::initializer_list<std::string_view> arches) {
  return std::ranges::find(arches, arch_of_canonical(kernel.key_text)) != arches.end();
}

void check_counts(const TransferCounts& counts, const Rows& rows) {
  CHECK(counts.kernels == static_cast<int>(rows.kernels.size()));
  CHECK(counts.tuning == static_cast<int>(rows.tuning.size()));
  CHECK(counts.measurements == static_cast<int>(rows.measurements.size()));
}


}  // namespace

TEST_CASE("transfer: export by device signature keeps that device's rows and its arch's kernels", "[cache][transfer]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  TempDir dir;
  Store from(StoreOptions{dir.file("all.db"), false});
  const Rows all = fill(from, random);

  const std::string to = dir.file("ship/h200.db");  // the folder is made
  const TransferCounts counts = export_store(from, to, ExportFilter{kH200, ""});
  const Rows want = keep(
      all,
      [](const CompiledKernel& k) {
        return of_arch(k, {"sm_90", "sm_90a"});
      },
      [](const std::string& signature) { return signature == kH200; });
  check_counts(counts, want);
  check_same_rows(read_all(to), want);
  CHECK(sqlite_scalar(to, "PRAGMA application_id") == std::to_string(kStoreApplicationId));
  CHECK(sqlite_scalar(to, "PRAGMA integrity_check") == "ok");
  int files = 0;
  for ([[maybe_unused]] const auto& entry : fs::directory_iterator(dir.file("ship"))) ++files;
  CHECK(files == 1);  // no temporary file, -wal or -shm left beside it

  // Both fields: only the kernels of that arch, and the device's records since it runs it.
  const std::string both = dir.file("h200-sm_90a.db");
  const TransferCounts both_counts = export_store(from, both, ExportFilter{kH200, "sm_90a"});
  const Rows want_both = keep(
      all, [](const CompiledKernel& k) { return of_arch(k, {"sm_90a"}); },
      [](const std::string& signature) { return signature == kH200; });
  check_counts(both_counts, want_both);
  check_same_rows(read_all(both), want_both);
}

TEST_CASE("transfer: export by arch keeps its kernels and the records of devices that run it", "[cache][transfer]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  TempDir dir;
  Store from(StoreOptions{dir.file("all.db"), false});
  const Rows all = fill(from, random);
  for (const char* arch : {"sm_80", "sm_89", "sm_120"}) {
    INFO(arch);
    const std::string to = dir.file(std::string(arch) + ".db");
    const TransferCounts counts = export_store(from, to, ExportFilter{"", arch});
    const std::string device = std::string(arch) == "sm_80" ? kA100 : std::string(arch) == "sm_89" ? kL40 : "";
    const Rows want = keep(
        all, [&](const CompiledKernel& k) { return of_arch(k, {arch}); },
        [&](const std::string& signature) { return signature == device; });
    check_counts(counts, want);
    check_same_rows(read_all(to), want);
  }
  // A device and an arch it does not run: nothing fits both.
  check_counts(export_store(from, dir.file("none.db"), ExportFilter{kH200, "sm_80"}), Rows{});
  check_same_rows(read_all(dir.file("none.db")), Rows{});
  // No filter: everything.
  const TransferCounts counts = export_store(from, dir.file("everything.db"), ExportFilter{});
  check_counts(counts, all);
  check_same_rows(read_all(dir.file("everything.db")), all);
}

TEST_CASE("transfer: export then merge back gives the same rows", "[cache][transfer]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  TempDir dir;
  Store original(StoreOptions{dir.file("original.db"), false});
  const Rows all = fill(original, random);
  const std::string shipped = dir.file("shipped.db");
  check_counts(export_store(original, shipped, ExportFilter{}), all);

  Store fresh(StoreOptions{dir.file("fresh.db"), false});
  check_counts(merge_store(fresh, shipped), all);
  check_same_rows(read_all(fresh), all);
  for (const CompiledKernel& kernel : all.kernels) CHECK(fresh.find_kernel(kernel.key_digest).has_value());

  // Back into the original: every row is already there, so nothing changes.
  check_counts(merge_store(original, shipped), Rows{});
  check_same_rows(read_all(original), all);
}

TEST_CASE("transfer: merge keeps the first kernel and the newer record", "[cache][transfer]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  TempDir dir;
  const CompiledKernel ours = random_kernel(random, "sm_90a");
  CompiledKernel theirs = ours;  // same digest, other bytes
  theirs.cubin.assign(ours.cubin.size() + 7, 0xEE);
  const TuningRecord older = random_tuning(random, kH200);
  TuningRecord newer = older;
  newer.variant = "warps=99";
  newer.updated_at = older.updated_at + 1 + static_cast<int64_t>(random() % 1000);
  const TuningRecord tie_ours = random_tuning(random, kA100);
  TuningRecord tie_theirs = tie_ours;
  tie_theirs.variant = "warps=77";
  const MeasurementRecord measured_later = random_measurement(random, kH200);
  MeasurementRecord measured_earlier = measured_later;
  measured_earlier.status = "launch_failed";
  measured_earlier.median_us = 0;
  measured_earlier.measured_at = measured_later.measured_at - 1 - static_cast<int64_t>(random() % 1000);
  const MeasurementRecord only_theirs = random_measurement(random, kL40);

  Store into(StoreOptions{dir.file("into.db"), false});
  into.put_kernel(ours);
  into.put_tuning(older);
  into.put_tuning(tie_ours);
  into.put_measurement(measured_later);
  {
    Store source(StoreOptions{dir.file("from.db"), false});
    source.put_kernel(theirs);
    source.put_tuning(newer);
    source.put_tuning(tie_theirs);
    source.put_measurement(measured_earlier);
    source.put_measurement(only_theirs);
  }
  const TransferCounts counts = merge_store(into, dir.file("from.db"));
  CHECK(counts.kernels == 0);
  CHECK(counts.tuning == 1);
  CHECK(counts.measurements == 1);
  const auto kernel = into.find_kernel(ours.key_digest);
  REQUIRE(kernel.has_value());
  CHECK(kernel->cubin == ours.cubin);
  const auto tuned = into.find_tuning(older.device_signature, older.spec, older.batch_bucket);
  REQUIRE(tuned.has_value());
  CHECK(same_tuning(*tuned, newer));
  const auto tied = into.find_tuning(tie_ours.device_signature, tie_ours.spec, tie_ours.batch_bucket);
  REQUIRE(tied.has_value());
  CHECK(same_tuning(*tied, tie_ours));
  const std::vector<MeasurementRecord> measured =
      into.find_measurements(measured_later.device_signature, measured_later.spec, measured_later.batch_bucket);
  REQUIRE(measured.size() == 1);
  CHECK(same_measurement(measured[0], measured_later));
  const std::vector<MeasurementRecord> added =
      into.find_measurements(only_theirs.device_signature, only_theirs.spec, only_theirs.batch_bucket);
  REQUIRE(added.size() == 1);
  CHECK(same_measurement(added[0], only_theirs));
}

TEST_CASE("transfer: merge from a version-1 file reads it as it is", "[cache][transfer]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  TempDir dir;
  const std::string old_path = dir.file("old.db");
  Rows old;
  for (int i = 0; i < 5; ++i) old.kernels.push_back(random_kernel(random, kArches[random() % std::size(kArches)]));
  for (int i = 0; i < 3; ++i) old.tuning.push_back(random_tuning(random, kDevices[random() % std::size(kDevices)]));
  sort_rows(old);
  write_version1_store(old_path, old.kernels, old.tuning);
  const std::string bytes = read_bytes(old_path);

  Store into(StoreOptions{dir.file("into.db"), false});
  check_counts(merge_store(into, old_path), old);
  check_same_rows(read_all(into), old);
  for (const CompiledKernel& kernel : old.kernels) {
    const std::string where = " FROM kernels WHERE key_digest = '" + kernel.key_digest + "'";
    CHECK(sqlite_scalar(into.path(), "SELECT cubin_sha256" + where) == cubin_sha256(kernel.cubin));
    CHECK(sqlite_scalar(into.path(), "SELECT arch" + where) == arch_of_canonical(kernel.key_text));
  }
  CHECK(read_bytes(old_path) == bytes);  // the source is never migrated
  CHECK(sqlite_scalar(old_path, "PRAGMA user_version") == "1");
}

TEST_CASE("transfer: merge skips a source kernel whose bytes changed", "[cache][transfer]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  TempDir dir;
  const CompiledKernel good = random_kernel(random, "sm_90a");
  const CompiledKernel bad = random_kernel(random, "sm_90a");
  {
    Store source(StoreOptions{dir.file("from.db"), false});
    source.put_kernel(good);
    source.put_kernel(bad);
  }
  sqlite_scalar(dir.file("from.db"),
                "UPDATE kernels SET cubin = zeroblob(length(cubin)) WHERE key_digest = '" + bad.key_digest + "'");
  Store into(StoreOptions{dir.file("into.db"), false});
  StderrCapture capture(dir.file("stderr.txt"));
  const TransferCounts counts = merge_store(into, dir.file("from.db"));
  const std::string log = capture.finish();
  INFO("stderr: " << log);
  CHECK(counts.kernels == 1);
  CHECK(into.find_kernel(good.key_digest).has_value());
  CHECK_FALSE(into.find_kernel(bad.key_digest).has_value());
  CHECK_THAT(log, Catch::Contains("glqjit warning") && Catch::Contains(bad.key_digest) && Catch::Contains("skipped"));
}

TEST_CASE("transfer: a failed merge leaves the store unchanged", "[cache][transfer][errors]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  TempDir dir;
  {
    Store source(StoreOptions{dir.file("from.db"), false});
    fill(source, random);
  }
  const std::string into_path = dir.file("into.db");
  Rows before;
  {
    Store into(StoreOptions{into_path, false});
    before = fill(into, random);
  }
  // Kernels merge first; the tuning records then fail, after kernels were written inside the transaction.
  sqlite_exec(into_path, "CREATE TRIGGER injected BEFORE INSERT ON tuning BEGIN SELECT RAISE(ABORT, 'injected'); END;");
  {
    Store into(StoreOptions{into_path, false});
    require_cache_error([&] { merge_store(into, dir.file("from.db")); },
                        {"merging", dir.file("from.db"), into_path, "unchanged", "injected"});
    check_same_rows(read_all(into), before);
  }

  // Read-only: refused before anything is read.
  const std::string bytes = read_bytes(into_path);
  Store read_only(StoreOptions{into_path, true});
  require_cache_error([&] { merge_store(read_only, dir.file("from.db")); }, {into_path, "read-only", "unchanged"});
  CHECK(read_bytes(into_path) == bytes);

  // A source that is not there, or not a store.
  Store into(StoreOptions{into_path, false});
  require_cache_error([&] { merge_store(into, dir.file("missing.db")); }, {dir.file("missing.db"), "does not exist"});
  sqlite_exec(dir.file("notes.db"), "CREATE TABLE notes(x);");
  require_cache_error([&] { merge_store(into, dir.file("notes.db")); }, {dir.file("notes.db"), "not a glqjit store"});
  require_cache_error([&] { merge_store(into, into_path); }, {into_path, "same file"});
  check_same_rows(read_all(into), before);
}

TEST_CASE("transfer: export never overwrites, and a failed export leaves no file", "[cache][transfer][errors]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  TempDir dir;
  const std::string from_path = dir.file("from.db");
  {
    Store from(StoreOptions{from_path, false});
    for (int i = 0; i < 40; ++i) from.put_kernel(random_kernel(random, "sm_90a"));
  }
  Store from(StoreOptions{from_path, false});
  const std::string existing = dir.file("existing.db");
  const std::string content = "precious " + std::to_string(random());
  std::ofstream(existing) << content;
  require_cache_error([&] { export_store(from, existing, ExportFilter{}); }, {existing, "exists"});
  CHECK(read_bytes(existing) == content);

  require_cache_error(
      [&] {
        export_store(from, dir.file("bad-filter.db"), ExportFilter{"some GPU", ""});
      },
      {dir.file("bad-filter.db"), "some GPU", "cc="});
  CHECK_FALSE(fs::exists(dir.file("bad-filter.db")));

  // Damage every page after the first, so the source opens and then fails while being read.
  const std::string damaged = dir.file("damaged.db");
  fs::copy_file(from_path, damaged);
  std::string bytes = read_bytes(damaged);
  const size_t page = (static_cast<unsigned char>(bytes[16]) << 8) | static_cast<unsigned char>(bytes[17]);
  REQUIRE(bytes.size() > 4 * page);
  std::fill(bytes.begin() + static_cast<std::ptrdiff_t>(page), bytes.end(), '\xff');
  std::ofstream(damaged, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  Store damaged_store(StoreOptions{damaged, true});
  const std::string to = dir.file("out.db");
  require_cache_error([&] { export_store(damaged_store, to, ExportFilter{}); },
                      {damaged, to, "corrupt", "not written"});
  CHECK_FALSE(fs::exists(to));
  CHECK(dir.find("out.db").empty());  // no temporary file either
}
