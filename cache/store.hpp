// The sqlite store (DESIGN.md, Contracts: Store): compiled kernels by key digest, tuning records
// by device signature, spec and batch bucket, and every measurement the tuner took, in one file
// that many processes share.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

struct sqlite3;

namespace glqjit {

constexpr int kStoreSchemaVersion = 2;

struct CompiledKernel {
  std::string key_digest;
  std::string key_text;  // KernelKey::canonical(), kept so a dump can show the parts
  std::vector<uint8_t> cubin;
  std::string ptx;  // may be empty
  std::string compile_log;
  int registers = 0;
  int spill_bytes = 0;
  int shared_bytes = 0;  // static shared memory
  double compile_ms = 0;
  int64_t created_at = 0;  // unix seconds; set by put_kernel when 0
};

struct TuningRecord {
  std::string device_signature;  // GPU name, SM count, compute capability, driver version
  std::string spec;
  int batch_bucket = 0;
  std::string variant;  // the winner
  double time_us = 0;
  std::string details;     // JSON: every candidate's time and why the winner won
  int64_t updated_at = 0;  // unix seconds; set by put_tuning when 0
};

// What became of timing one variant.
inline constexpr std::array<std::string_view, 5> kMeasurementStatuses = {"ok", "compile_failed", "launch_failed",
                                                                         "wrong_result", "over_resources"};

// One variant's timing for a (device signature, spec, batch bucket): the tuner writes one per
// variant it tried, so an interrupted tune resumes where it stopped.
struct MeasurementRecord {
  std::string device_signature, spec;
  int batch_bucket = 0;
  std::string variant;      // canonical variant text
  std::string status;       // one of kMeasurementStatuses
  double median_us = 0;     // kept only when status is "ok" (stored NULL otherwise, read back as 0)
  std::string details;      // JSON: samples, spread, reason, resources
  int64_t measured_at = 0;  // unix seconds; set by put_measurement when 0
};

struct StoreOptions {
  std::string path;  // empty: default_store_path()
  bool read_only = false;
};

// $GLQJIT_CACHE, else $XDG_CACHE_HOME/glqjit/glqjit.db, else $HOME/.cache/glqjit/glqjit.db.
std::string default_store_path();

struct ExportFilter;
struct TransferCounts;

class Store {
 public:
  // Creates the file and its folder if missing. A corrupt or truncated file is logged as a
  // warning, renamed aside (<path>.corrupt-<unix time>) and rebuilt. A sqlite file of another
  // program (another application_id, or tables that are not a store's) is refused and left
  // byte for byte as it was. Throws Error(cache_error) saying what to do when the path cannot be
  // used at all.
  // read_only opens without creating, migrating or rebuilding anything; an older store (schema
  // version 1) is then read as it is: no measurements, and kernels served without a hash check.
  // A writable open of an existing file this process may not write (read-only filesystem,
  // permissions) falls back to read-only with one warning; read_only() then returns true.
  // Every member may be called from several threads at once.
  // Corruption that shows up after the open makes that call log a warning and degrade: find_*
  // and all_* return nothing, put_* skip the write. Any other failure throws Error(cache_error).
  explicit Store(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }

  // A kernel whose cubin no longer matches the SHA-256 it was stored with (bytes overwritten on
  // disk) is not returned: that logs a warning and deletes the row unless the store is read-only,
  // so the caller compiles it again.
  std::optional<CompiledKernel> find_kernel(const std::string& key_digest);
  // Keeps the existing row if the key is present (first writer wins). Throws
  // Error(cache_error) when the store is read-only (check read_only() first).
  void put_kernel(const CompiledKernel& kernel);
  // Every kernel in key_digest order, one in memory at a time (a shipped store can hold GBs).
  // Rows whose cubin does not match its hash are skipped with a warning. The store stays locked
  // while it runs, so visit must not call this Store.
  void for_each_kernel(const std::function<void(const CompiledKernel&)>& visit);

  std::optional<TuningRecord> find_tuning(const std::string& device_signature, const std::string& spec,
                                          int batch_bucket);
  // Replaces the record for the same triple. Throws Error(cache_error) when read-only.
  void put_tuning(const TuningRecord& record);
  std::vector<TuningRecord> all_tuning();

  // Replaces the record for the same (signature, spec, bucket, variant), in a transaction of its
  // own, so a process killed at any moment loses at most the record it was writing. Throws
  // Error(cache_error) when read-only, for a status not in kMeasurementStatuses, and for details
  // that are not JSON.
  void put_measurement(const MeasurementRecord& record);
  // Ordered by variant text.
  std::vector<MeasurementRecord> find_measurements(const std::string& device_signature, const std::string& spec,
                                                   int batch_bucket);
  // Ordered by (signature, spec, bucket, variant).
  std::vector<MeasurementRecord> all_measurements();

 private:
  friend TransferCounts export_store(Store& from, const std::string& to, const ExportFilter& filter);
  friend TransferCounts merge_store(Store& into, const std::string& from);

  enum class OnConflict { replace, keep_newer };

  // The bodies of the members above for a caller that holds mutex_; they throw sqlite::Corrupt
  // instead of degrading. arches, when given, keeps only the kernels of those arches.
  void read_kernels(const std::optional<std::vector<std::string>>& arches,
                    const std::function<void(const CompiledKernel&)>& visit);
  bool write_kernel(const CompiledKernel& kernel);  // true when the key was new
  std::vector<TuningRecord> read_tuning();
  bool write_tuning(const TuningRecord& record, OnConflict on_conflict);  // true when the row changed
  std::vector<MeasurementRecord> read_measurements();
  bool write_measurement(const MeasurementRecord& record, OnConflict on_conflict);  // true when the row changed

  std::string path_;
  bool read_only_ = false;
  int64_t schema_version_ = kStoreSchemaVersion;  // of the file: older only when read as it is
  sqlite3* db_ = nullptr;
  std::mutex mutex_;  // one connection, used by one thread at a time
};

}  // namespace glqjit
