// The sqlite store (DESIGN.md, Contracts: Store): compiled kernels by key digest and tuning
// records by device signature, spec and batch bucket, in one file that many processes share.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

struct sqlite3;

namespace glqjit {

constexpr int kStoreSchemaVersion = 1;

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
};

struct TuningRecord {
  std::string device_signature;  // GPU name, SM count, compute capability, driver version
  std::string spec;
  int batch_bucket = 0;
  std::string variant;  // the winner
  double time_us = 0;
  std::string details;  // JSON: every candidate's time and why the winner won
};

struct StoreOptions {
  std::string path;  // empty: default_store_path()
  bool read_only = false;
};

// $GLQJIT_CACHE, else $XDG_CACHE_HOME/glqjit/glqjit.db, else $HOME/.cache/glqjit/glqjit.db.
std::string default_store_path();

class Store {
 public:
  // Creates the file and its folder if missing. A corrupt or truncated file is logged as a
  // warning, renamed aside (<path>.corrupt-<unix time>) and rebuilt. Throws
  // Error(cache_error) saying what to do when the path cannot be used at all.
  // read_only opens without creating, migrating or rebuilding anything. A writable open of an
  // existing file this process may not write (read-only filesystem, permissions) falls back to
  // read-only with one warning; read_only() then returns true.
  // Every member may be called from several threads at once.
  // Corruption that shows up after the open makes that call log a warning and degrade: find_*
  // return nothing, put_* skip the write. Any other failure throws Error(cache_error).
  explicit Store(const StoreOptions& options);
  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  const std::string& path() const { return path_; }
  bool read_only() const { return read_only_; }

  std::optional<CompiledKernel> find_kernel(const std::string& key_digest);
  // Keeps the existing row if the key is present (first writer wins). Throws
  // Error(cache_error) when the store is read-only (check read_only() first).
  void put_kernel(const CompiledKernel& kernel);

  std::optional<TuningRecord> find_tuning(const std::string& device_signature, const std::string& spec,
                                          int batch_bucket);
  // Replaces the record for the same triple. Throws Error(cache_error) when read-only.
  void put_tuning(const TuningRecord& record);
  std::vector<TuningRecord> all_tuning();

 private:
  std::string path_;
  bool read_only_ = false;
  sqlite3* db_ = nullptr;
  std::mutex mutex_;  // one connection, used by one thread at a time
};

}  // namespace glqjit
