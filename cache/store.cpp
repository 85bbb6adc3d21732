// The store's records: kernels, tuning records and measurements, each mapped to and from its
// table. Opening the file is open.cpp, the schema schema.cpp, damaged files recovery.cpp.
#include "cache/store.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

#include "cache/key.hpp"
#include "cache/open.hpp"
#include "cache/recovery.hpp"
#include "cache/schema.hpp"
#include "cache/sqlite.hpp"
#include "glqjit/error.hpp"
#include "support/log.hpp"

namespace glqjit {
namespace {

using sqlite::Statement;

// The columns intact_kernel() reads, then rest (WHERE, ORDER BY). A version-1 file read as it is
// has no hash column.
std::string kernel_select(int64_t schema_version, std::string_view rest) {
  return fmt::format(
      "SELECT key_digest, key_text, cubin, ptx, compile_log, registers, spill_bytes, shared_bytes, compile_ms, "
      "created_at, {} FROM kernels{}",
      schema_version >= 2 ? "cubin_sha256" : "NULL", rest);
}

// Reads a row of kernel_select() into kernel; false when its cubin no longer matches the hash it
// was stored with. Rows of a version-1 file carry no hash and are taken as they are.
bool intact_kernel(const Statement& row, bool hashed, CompiledKernel& kernel) {
  kernel.key_digest = row.text(0);
  kernel.key_text = row.text(1);
  kernel.cubin = row.blob(2);
  kernel.ptx = row.text(3);
  kernel.compile_log = row.text(4);
  kernel.registers = static_cast<int>(row.integer(5));
  kernel.spill_bytes = static_cast<int>(row.integer(6));
  kernel.shared_bytes = static_cast<int>(row.integer(7));
  kernel.compile_ms = row.real(8);
  kernel.created_at = row.integer(9);
  return !hashed || (!row.is_null(10) && row.text(10) == cubin_sha256(kernel.cubin));
}

void warn_changed(const std::string& path, const std::string& key_digest, std::string_view consequence) {
  log_line(LogLevel::warn, fmt::format("cache store {}: kernel {} no longer matches the SHA-256 it was stored with "
                                       "(its bytes changed on disk); {}",
                                       path, key_digest, consequence));
}

constexpr const char* kTuningColumns = "device_signature, spec, batch_bucket, variant, time_us, details, updated_at";

TuningRecord tuning_from(const Statement& row) {
  TuningRecord record;
  record.device_signature = row.text(0);
  record.spec = row.text(1);
  record.batch_bucket = static_cast<int>(row.integer(2));
  record.variant = row.text(3);
  record.time_us = row.real(4);
  record.details = row.text(5);
  record.updated_at = row.integer(6);
  return record;
}

constexpr const char* kMeasurementColumns =
    "device_signature, spec, batch_bucket, variant, status, median_us, details, measured_at";

MeasurementRecord measurement_from(const Statement& row) {
  MeasurementRecord record;
  record.device_signature = row.text(0);
  record.spec = row.text(1);
  record.batch_bucket = static_cast<int>(row.integer(2));
  record.variant = row.text(3);
  record.status = row.text(4);
  record.median_us = row.real(5);  // 0 for NULL
  record.details = row.text(6);
  record.measured_at = row.integer(7);
  return record;
}

int64_t stamp_or_now(int64_t stamp) { return stamp != 0 ? stamp : sqlite::now_unix(); }

[[noreturn]] void throw_read_only(const std::string& path, std::string_view what) {
  throw Error(Status::cache_error,
              fmt::format("cache store {} is open read-only, so {} cannot be stored; open it without read-only "
                          "on a writable file, or {}",
                          path, what, sqlite::kUseWritableFile));
}

}  // namespace

Store::Store(const StoreOptions& options)
    : path_(options.path.empty() ? default_store_path() : options.path), read_only_(options.read_only) {
  OpenedStore opened = open_store_file(path_, read_only_);
  read_only_ = opened.read_only;
  schema_version_ = opened.schema_version;
  db_ = opened.db.release();
}

Store::~Store() {
  // The last connection checkpoints and removes the -wal (empties it in a shared folder: side_files.hpp).
  if (db_ != nullptr) sqlite3_close_v2(db_);
}

std::optional<CompiledKernel> Store::find_kernel(const std::string& key_digest) {
  std::lock_guard lock(mutex_);
  try {
    Statement select(db_, path_, kernel_select(schema_version_, " WHERE key_digest = ?1"), "looking up a kernel");
    select.bind_text(1, key_digest);
    if (!select.step()) return std::nullopt;
    CompiledKernel kernel;
    if (intact_kernel(select, schema_version_ >= 2, kernel)) return kernel;
    select.reset();
    std::string consequence =
        "not using it; the store is read-only, so the row stays (replace the file with a good copy)";
    if (!read_only_) {
      // A row another process stored meanwhile under this digest is the same kernel, so deleting
      // that too costs at most one compile.
      Statement erase(db_, path_, "DELETE FROM kernels WHERE key_digest = ?1", "deleting a changed kernel");
      erase.bind_text(1, key_digest);
      const int rc = erase.try_step();
      consequence = rc == SQLITE_DONE
                        ? "deleted it, so it is compiled again"
                        : fmt::format("not using it, and could not delete it ({})", sqlite::detail(db_, rc));
    }
    warn_changed(path_, key_digest, consequence);
    return std::nullopt;
  } catch (const sqlite::Corrupt& corrupt) {
    warn_degraded(path_, corrupt, fmt::format("looking up kernel {}", key_digest), "treating it as a miss");
    return std::nullopt;
  }
}

void Store::put_kernel(const CompiledKernel& kernel) {
  if (read_only_) throw_read_only(path_, fmt::format("kernel {}", kernel.key_digest));
  if (kernel.key_digest.empty()) {
    throw Error(Status::cache_error,
                fmt::format("cache store {}: a kernel with an empty key digest cannot be stored; pass "
                            "KernelKey::digest() as key_digest",
                            path_));
  }
  std::lock_guard lock(mutex_);
  try {
    write_kernel(kernel);
  } catch (const sqlite::Corrupt& corrupt) {
    warn_degraded(path_, corrupt, fmt::format("storing kernel {}", kernel.key_digest), "it is not saved");
  }
}

void Store::for_each_kernel(const std::function<void(const CompiledKernel&)>& visit) {
  std::lock_guard lock(mutex_);
  try {
    read_kernels(std::nullopt, visit);
  } catch (const sqlite::Corrupt& corrupt) {
    warn_degraded(path_, corrupt, "listing kernels", "the rest are not listed");
  }
}

void Store::read_kernels(const std::optional<std::vector<std::string>>& arches,
                         const std::function<void(const CompiledKernel&)>& visit) {
  const bool hashed = schema_version_ >= 2;
  // A version-2 file picks the rows through the index on arch without reading any other row's
  // cubin, and without an ORDER BY, which would make sqlite sort whole rows. A version-1 file has
  // no arch column, so each row's arch is read from its key_text.
  std::string rest = " ORDER BY key_digest";
  if (arches && hashed) {
    rest = " WHERE arch IN (";
    for (size_t i = 0; i < arches->size(); ++i) rest += fmt::format("{}?{}", i == 0 ? "" : ", ", i + 1);
    rest += ")";
  }
  Statement select(db_, path_, kernel_select(schema_version_, rest), "reading kernels");
  if (arches && hashed) {
    for (size_t i = 0; i < arches->size(); ++i) select.bind_text(static_cast<int>(i) + 1, (*arches)[i]);
  }
  while (select.step()) {
    CompiledKernel kernel;
    if (!intact_kernel(select, hashed, kernel)) {
      warn_changed(path_, kernel.key_digest, "skipped it");
      continue;
    }
    if (arches && !hashed && std::ranges::find(*arches, arch_of_canonical(kernel.key_text)) == arches->end()) {
      continue;
    }
    visit(kernel);
  }
}

bool Store::write_kernel(const CompiledKernel& kernel) {
  // Outside a transaction one statement is its own; it takes the write lock first, waiting up to
  // the busy timeout, so concurrent writers queue instead of failing. The first writer of a key wins.
  Statement insert(db_, path_,
                   "INSERT INTO kernels (key_digest, key_text, cubin, ptx, compile_log, registers, spill_bytes, "
                   "shared_bytes, compile_ms, created_at, cubin_sha256, arch) "
                   "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12) "
                   "ON CONFLICT (key_digest) DO NOTHING",
                   "storing a kernel");
  insert.bind_text(1, kernel.key_digest);
  insert.bind_text(2, kernel.key_text);
  insert.bind_blob(3, kernel.cubin);
  insert.bind_text(4, kernel.ptx);
  insert.bind_text(5, kernel.compile_log);
  insert.bind_int(6, kernel.registers);
  insert.bind_int(7, kernel.spill_bytes);
  insert.bind_int(8, kernel.shared_bytes);
  insert.bind_real(9, kernel.compile_ms);
  insert.bind_int(10, stamp_or_now(kernel.created_at));
  insert.bind_text(11, cubin_sha256(kernel.cubin));
  insert.bind_text(12, arch_of_canonical(kernel.key_text));
  insert.step();
  return insert.changes() > 0;
}

std::optional<TuningRecord> Store::find_tuning(const std::string& device_signature, const std::string& spec,
                                               int batch_bucket) {
  std::lock_guard lock(mutex_);
  try {
    Statement select(
        db_, path_,
        fmt::format("SELECT {} FROM tuning WHERE device_signature = ?1 AND spec = ?2 AND batch_bucket = ?3",
                    kTuningColumns),
        "looking up a tuning record");
    select.bind_text(1, device_signature);
    select.bind_text(2, spec);
    select.bind_int(3, batch_bucket);
    if (!select.step()) return std::nullopt;
    return tuning_from(select);
  } catch (const sqlite::Corrupt& corrupt) {
    warn_degraded(path_, corrupt, fmt::format("looking up tuning for {} bucket {}", spec, batch_bucket),
                  "treating it as untuned");
    return std::nullopt;
  }
}

void Store::put_tuning(const TuningRecord& record) {
  if (read_only_) {
    throw_read_only(path_, fmt::format("the tuning record for {} bucket {}", record.spec, record.batch_bucket));
  }
  std::lock_guard lock(mutex_);
  try {
    write_tuning(record, OnConflict::replace);
  } catch (const sqlite::Corrupt& corrupt) {
    warn_degraded(path_, corrupt, fmt::format("storing tuning for {} bucket {}", record.spec, record.batch_bucket),
                  "it is not saved");
  }
}

std::vector<TuningRecord> Store::all_tuning() {
  std::lock_guard lock(mutex_);
  try {
    return read_tuning();
  } catch (const sqlite::Corrupt& corrupt) {
    warn_degraded(path_, corrupt, "listing tuning records", "returning none");
    return {};
  }
}

std::vector<TuningRecord> Store::read_tuning() {
  Statement select(db_, path_,
                   fmt::format("SELECT {} FROM tuning ORDER BY device_signature, spec, batch_bucket", kTuningColumns),
                   "listing tuning records");
  std::vector<TuningRecord> records;
  while (select.step()) records.push_back(tuning_from(select));
  return records;
}

bool Store::write_tuning(const TuningRecord& record, OnConflict on_conflict) {
  Statement upsert(
      db_, path_,
      fmt::format("INSERT INTO tuning ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) "
                  "ON CONFLICT (device_signature, spec, batch_bucket) DO UPDATE SET "
                  "variant = excluded.variant, time_us = excluded.time_us, details = excluded.details, "
                  "updated_at = excluded.updated_at{}",
                  kTuningColumns,
                  on_conflict == OnConflict::keep_newer ? " WHERE excluded.updated_at > tuning.updated_at" : ""),
      "storing a tuning record");
  upsert.bind_text(1, record.device_signature);
  upsert.bind_text(2, record.spec);
  upsert.bind_int(3, record.batch_bucket);
  upsert.bind_text(4, record.variant);
  upsert.bind_real(5, record.time_us);
  upsert.bind_text(6, record.details);
  upsert.bind_int(7, stamp_or_now(record.updated_at));
  upsert.step();
  return upsert.changes() > 0;
}

void Store::put_measurement(const MeasurementRecord& record) {
  const std::string what =
      fmt::format("the measurement of variant '{}' for {} bucket {}", record.variant, record.spec, record.batch_bucket);
  if (read_only_) throw_read_only(path_, what);
  if (std::ranges::find(kMeasurementStatuses, record.status) == kMeasurementStatuses.end()) {
    throw Error(Status::cache_error, fmt::format("cache store {}: {} has status '{}'; pass one of {}", path_, what,
                                                 record.status, fmt::join(kMeasurementStatuses, ", ")));
  }
  std::lock_guard lock(mutex_);
  try {
    Statement check(db_, path_, "SELECT json_valid(?1)", "checking a measurement's details");
    check.bind_text(1, record.details);
    check.step();
    if (check.integer(0) != 1) {
      throw Error(Status::cache_error,
                  fmt::format("cache store {}: {} has details that are not JSON ('{:.60}'); write them with a JSON "
                              "library",
                              path_, what, record.details));
    }
    write_measurement(record, OnConflict::replace);
  } catch (const sqlite::Corrupt& corrupt) {
    warn_degraded(path_, corrupt, fmt::format("storing {}", what), "it is not saved");
  }
}

std::vector<MeasurementRecord> Store::find_measurements(const std::string& device_signature, const std::string& spec,
                                                        int batch_bucket) {
  std::lock_guard lock(mutex_);
  if (schema_version_ < 2) return {};
  try {
    Statement select(db_, path_,
                     fmt::format("SELECT {} FROM measurements WHERE device_signature = ?1 AND spec = ?2 AND "
                                 "batch_bucket = ?3 ORDER BY variant",
                                 kMeasurementColumns),
                     "looking up measurements");
    select.bind_text(1, device_signature);
    select.bind_text(2, spec);
    select.bind_int(3, batch_bucket);
    std::vector<MeasurementRecord> records;
    while (select.step()) records.push_back(measurement_from(select));
    return records;
  } catch (const sqlite::Corrupt& corrupt) {
    warn_degraded(path_, corrupt, fmt::format("looking up measurements for {} bucket {}", spec, batch_bucket),
                  "returning none");
    return {};
  }
}

std::vector<MeasurementRecord> Store::all_measurements() {
  std::lock_guard lock(mutex_);
  try {
    return read_measurements();
  } catch (const sqlite::Corrupt& corrupt) {
    warn_degraded(path_, corrupt, "listing measurements", "returning none");
    return {};
  }
}

std::vector<MeasurementRecord> Store::read_measurements() {
  if (schema_version_ < 2) return {};
  Statement select(db_, path_,
                   fmt::format("SELECT {} FROM measurements ORDER BY device_signature, spec, batch_bucket, variant",
                               kMeasurementColumns),
                   "listing measurements");
  std::vector<MeasurementRecord> records;
  while (select.step()) records.push_back(measurement_from(select));
  return records;
}

bool Store::write_measurement(const MeasurementRecord& record, OnConflict on_conflict) {
  Statement upsert(
      db_, path_,
      fmt::format(
          "INSERT INTO measurements ({}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) "
          "ON CONFLICT (device_signature, spec, batch_bucket, variant) DO UPDATE SET "
          "status = excluded.status, median_us = excluded.median_us, details = excluded.details, "
          "measured_at = excluded.measured_at{}",
          kMeasurementColumns,
          on_conflict == OnConflict::keep_newer ? " WHERE excluded.measured_at > measurements.measured_at" : ""),
      "storing a measurement");
  upsert.bind_text(1, record.device_signature);
  upsert.bind_text(2, record.spec);
  upsert.bind_int(3, record.batch_bucket);
  upsert.bind_text(4, record.variant);
  upsert.bind_text(5, record.status);
  if (record.status == "ok") {
    upsert.bind_real(6, record.median_us);
  } else {
    upsert.bind_null(6);
  }
  upsert.bind_text(7, record.details);
  upsert.bind_int(8, stamp_or_now(record.measured_at));
  upsert.step();
  return upsert.changes() > 0;
}

}  // namespace glqjit
