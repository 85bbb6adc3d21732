// The store's rows read back (cache/store.hpp) and what the tuner and the runtime make of them: the
// input fills a version-1 or version-2 store with kernels, tuning records and measurements whose
// columns hold any value of any sqlite type (as a damaged file or another writer could), written
// past the Store's checks; then the Store opens it (read-only or writable) and every reader runs,
// and parse_variant, parse_status and measurement_from_json decode what they return. Asserts:
// nothing but glqjit::Error escapes; a kernel is served only with the bytes it was stored with, and
// from a version-2 file only when its SHA-256 column matches them, and then always;
// arch_of_canonical finds the arch of any KernelKey::canonical(); a measurement that decodes is
// written back by to_json to the same measurement.
#include <fuzzer/FuzzedDataProvider.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "cache/key.hpp"
#include "cache/schema.hpp"
#include "cache/store.hpp"
#include "codegen/variant.hpp"
#include "fuzz_check.hpp"
#include "support/sha256.hpp"
#include "tuner/measurement.hpp"

namespace {

using namespace glqjit;
namespace fs = std::filesystem;

// In memory where the machine has a tmpfs: every Store open and close syncs the file, which on a
// disk costs more than the rest of an input.
fs::path scratch_folder() {
  std::error_code ignored;
  return fs::is_directory("/dev/shm", ignored) && access("/dev/shm", W_OK) == 0 ? fs::path("/dev/shm")
                                                                                : fs::temp_directory_path();
}

// Empty stores of each schema version, made once; each input starts from a copy.
struct Templates {
  fs::path folder;
  fs::path version1, version2, work;

  Templates() {
    folder = scratch_folder() / ("glqjit-fuzz-store-rows-" + std::to_string(getpid()));
    fs::create_directories(folder);
    version1 = folder / "v1.db";
    version2 = folder / "v2.db";
    work = folder / "work.db";
    { Store store(StoreOptions{version2.string(), false}); }
    sqlite3* db = nullptr;
    sqlite3_open(version1.c_str(), &db);
    sqlite3_exec(db, store_migrations()[0].sql, nullptr, nullptr, nullptr);
    sqlite3_exec(db, "PRAGMA user_version = 1", nullptr, nullptr, nullptr);
    sqlite3_close(db);
  }
  ~Templates() {
    std::error_code ignored;
    fs::remove_all(folder, ignored);
  }
};

const Templates& templates() {
  static const Templates made;
  return made;
}

// Binds a value of a type the input picks: NULL, integer, real, text or blob.
void bind_any(sqlite3_stmt* insert, int index, FuzzedDataProvider& input) {
  switch (input.ConsumeIntegralInRange(0, 4)) {
    case 0: sqlite3_bind_null(insert, index); break;
    case 1: sqlite3_bind_int64(insert, index, input.ConsumeIntegral<int64_t>()); break;
    case 2: sqlite3_bind_double(insert, index, input.ConsumeFloatingPoint<double>()); break;
    case 3: {
      const std::string text = input.ConsumeRandomLengthString(64);
      sqlite3_bind_text(insert, index, text.data(), int(text.size()), SQLITE_TRANSIENT);
      break;
    }
    default: {
      const std::string bytes = input.ConsumeRandomLengthString(64);
      sqlite3_bind_blob(insert, index, bytes.data(), int(bytes.size()), SQLITE_TRANSIENT);
    }
  }
}

void bind_text(sqlite3_stmt* insert, int index, const std::string& text) {
  sqlite3_bind_text(insert, index, text.data(), int(text.size()), SQLITE_TRANSIENT);
}

// Text that is sometimes what the column should hold, so that the decoders get past their first check.
std::string text_or(FuzzedDataProvider& input, const std::string& plausible) {
  return input.ConsumeBool() ? plausible : input.ConsumeRandomLengthString(96);
}

nlohmann::json any_json_value(FuzzedDataProvider& input) {
  switch (input.ConsumeIntegralInRange(0, 6)) {
    case 0: return nullptr;
    case 1: return input.ConsumeBool();
    case 2: return input.ConsumeIntegral<int64_t>();
    case 3: return input.ConsumeIntegral<uint64_t>();
    case 4: return input.ConsumeFloatingPoint<double>();
    case 5: return nlohmann::json::array({input.ConsumeFloatingPoint<double>()});
    default: return input.ConsumeRandomLengthString(16);
  }
}

// Random text, or a measurement's JSON with one field (its own or a resource's) set to any value.
std::string measurement_details(FuzzedDataProvider& input) {
  if (input.ConsumeBool()) return input.ConsumeRandomLengthString(256);
  Measurement m;
  m.kernel_digest = input.ConsumeRandomLengthString(16);
  m.median_us = input.ConsumeFloatingPoint<double>();
  m.samples_us = {input.ConsumeFloatingPoint<double>()};
  m.reason = input.ConsumeRandomLengthString(16);
  m.resources.push_back({input.ConsumeRandomLengthString(8), input.ConsumeIntegral<int>()});
  nlohmann::json details = nlohmann::json::parse(to_json(m));
  static constexpr const char* kFields[] = {"variant",    "kernel_digest", "status",     "median_us", "spread",
                                            "samples_us", "reason",        "gate_error", "resources"};
  static constexpr const char* kResourceFields[] = {
      "kernel", "registers", "stack_bytes", "spill_store_bytes", "spill_load_bytes", "shared_bytes"};
  if (input.ConsumeBool()) {
    details[input.PickValueInArray(kFields)] = any_json_value(input);
  } else {
    details["resources"][0][input.PickValueInArray(kResourceFields)] = any_json_value(input);
  }
  return details.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

struct StoredKernel {
  std::string cubin;
  bool true_hash = false;
};

void insert_kernel(sqlite3* db, int64_t version, FuzzedDataProvider& input,
                   std::map<std::string, StoredKernel>& kernels) {
  KernelKey key;
  key.spec = input.ConsumeRandomLengthString(24);
  key.variant = input.ConsumeRandomLengthString(24);
  key.arch = input.ConsumeRandomLengthString(12);
  key.options = input.ConsumeRandomLengthString(24);
  const std::string key_text = text_or(input, key.canonical());
  const std::string digest = text_or(input, key.digest());
  const std::string cubin = input.ConsumeRandomLengthString(128);
  const bool cubin_as_text = input.ConsumeBool();
  const bool true_hash = input.ConsumeBool();
  const char* sql = version >= 2
                        ? "INSERT OR IGNORE INTO kernels (key_digest, key_text, cubin, ptx, compile_log, registers, "
                          "spill_bytes, shared_bytes, compile_ms, created_at, cubin_sha256, arch) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                        : "INSERT OR IGNORE INTO kernels (key_digest, key_text, cubin, ptx, compile_log, registers, "
                          "spill_bytes, shared_bytes, compile_ms, created_at) "
                          "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db, sql, -1, &insert, nullptr);
  bind_text(insert, 1, digest);
  bind_text(insert, 2, key_text);
  if (cubin_as_text) {
    bind_text(insert, 3, cubin);
  } else {
    sqlite3_bind_blob(insert, 3, cubin.data(), int(cubin.size()), SQLITE_TRANSIENT);
  }
  for (int column = 4; column <= 10; ++column) bind_any(insert, column, input);
  if (version >= 2) {
    if (true_hash) {
      bind_text(insert, 11, sha256_hex(cubin));
    } else {
      bind_any(insert, 11, input);
    }
    bind_any(insert, 12, input);
  }
  if (sqlite3_step(insert) == SQLITE_DONE && sqlite3_changes(db) == 1) kernels[digest] = {cubin, true_hash};
  sqlite3_finalize(insert);
}

void insert_record(sqlite3* db, bool measurement, FuzzedDataProvider& input) {
  const char* sql = measurement ? "INSERT OR IGNORE INTO measurements (device_signature, spec, batch_bucket, variant, "
                                  "status, median_us, details, measured_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"
                                : "INSERT OR IGNORE INTO tuning (device_signature, spec, batch_bucket, variant, "
                                  "time_us, details, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)";
  sqlite3_stmt* insert = nullptr;
  sqlite3_prepare_v2(db, sql, -1, &insert, nullptr);
  // The key columns keep their types, so that the lookups by key can find what the listings return.
  bind_text(insert, 1, input.ConsumeRandomLengthString(24));
  bind_text(insert, 2, input.ConsumeRandomLengthString(24));
  sqlite3_bind_int(insert, 3, input.ConsumeIntegral<int>());
  bind_text(insert, 4, text_or(input, "warps=8 k_split=2"));
  if (measurement) {
    bind_text(insert, 5, text_or(input, "ok"));
    bind_any(insert, 6, input);
    bind_text(insert, 7, measurement_details(input));
    bind_any(insert, 8, input);
  } else {
    bind_any(insert, 5, input);
    bind_any(insert, 6, input);
    bind_any(insert, 7, input);
  }
  sqlite3_step(insert);
  sqlite3_finalize(insert);
}

void check_served(const CompiledKernel& kernel, int64_t version, bool migrated,
                  const std::map<std::string, StoredKernel>& kernels) {
  const auto stored = kernels.find(kernel.key_digest);
  fuzz::check(stored != kernels.end(), "a kernel served under a key digest no row has");
  const std::string served(kernel.cubin.begin(), kernel.cubin.end());
  fuzz::check(served == stored->second.cubin, "a kernel served with other bytes than it was stored with");
  fuzz::check(version < 2 || migrated || stored->second.true_hash,
              "a kernel served whose SHA-256 column does not match");
}

void check_measurement_round_trip(const Measurement& m) {
  Measurement again;
  fuzz::check(fuzz::parses([&] { again = measurement_from_json(to_json(m)); }),
              "a measurement read from the store cannot be read back after to_json: " + to_json(m));
  bool same = again.variant == m.variant && again.kernel_digest == m.kernel_digest && again.status == m.status &&
              again.median_us == m.median_us && again.spread == m.spread && again.samples_us == m.samples_us &&
              again.reason == m.reason && again.gate_error == m.gate_error &&
              again.resources.size() == m.resources.size();
  for (size_t i = 0; same && i < m.resources.size(); ++i) {
    const KernelResources &a = again.resources[i], &b = m.resources[i];
    same = a.name == b.name && a.registers == b.registers && a.stack_bytes == b.stack_bytes &&
           a.spill_store_bytes == b.spill_store_bytes && a.spill_load_bytes == b.spill_load_bytes &&
           a.shared_bytes == b.shared_bytes;
  }
  fuzz::check(same, "to_json then measurement_from_json changed a measurement: " + to_json(m));
}

void read_everything(Store& store, int64_t version, bool migrated, const std::map<std::string, StoredKernel>& kernels) {
  std::vector<std::string> served;
  store.for_each_kernel([&](const CompiledKernel& kernel) {
    check_served(kernel, version, migrated, kernels);
    served.push_back(kernel.key_digest);
  });
  for (const auto& [digest, stored] : kernels) {
    const std::optional<CompiledKernel> found = store.find_kernel(digest);
    if (found) check_served(*found, version, migrated, kernels);
    const bool must_serve = version < 2 || migrated || stored.true_hash;
    fuzz::check(found.has_value() == must_serve, must_serve ? "an intact kernel was not served by find_kernel"
                                                            : "a kernel whose SHA-256 does not match was served");
    fuzz::check(std::count(served.begin(), served.end(), digest) == (must_serve ? 1 : 0),
                "for_each_kernel did not list each intact kernel once");
  }
  for (const TuningRecord& record : store.all_tuning()) {
    fuzz::parses([&] { parse_variant(record.variant); });
    const std::optional<TuningRecord> found =
        store.find_tuning(record.device_signature, record.spec, record.batch_bucket);
    fuzz::check(found && found->variant == record.variant && found->details == record.details,
                "find_tuning does not find a record all_tuning lists");
  }
  for (const MeasurementRecord& record : store.all_measurements()) {
    fuzz::parses([&] { parse_status(record.status); });
    Measurement m;
    if (fuzz::parses([&] { m = measurement_from_json(record.details); })) check_measurement_round_trip(m);
    fuzz::check(!store.find_measurements(record.device_signature, record.spec, record.batch_bucket).empty(),
                "find_measurements does not find a record all_measurements lists");
  }
}

void check_arch_of_canonical(FuzzedDataProvider& input) {
  KernelKey key;
  key.library_version = input.ConsumeRandomLengthString(16);
  key.spec = input.ConsumeRandomLengthString(32);
  key.variant = input.ConsumeRandomLengthString(32);
  key.options = input.ConsumeRandomLengthString(32);
  key.arch = input.ConsumeRandomLengthString(12);
  if (key.arch.find_first_of(std::string_view("\\\n\r", 3)) != std::string::npos) return;  // no arch name holds these
  fuzz::check(arch_of_canonical(key.canonical()) == key.arch, "arch_of_canonical read another part as the arch");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  FuzzedDataProvider input(data, size);
  const Templates& made = templates();
  check_arch_of_canonical(input);

  const int64_t version = input.ConsumeBool() ? 2 : 1;
  std::error_code ignored;
  for (const char* suffix : {"", "-wal", "-shm", "-journal"}) fs::remove(made.work.string() + suffix, ignored);
  std::error_code copied;
  fs::copy_file(version == 2 ? made.version2 : made.version1, made.work, copied);
  if (copied) fuzz::fail("the fuzzer cannot copy its template store: " + copied.message());

  std::map<std::string, StoredKernel> kernels;
  sqlite3* db = nullptr;
  sqlite3_open(made.work.c_str(), &db);
  sqlite3_exec(db, "BEGIN", nullptr, nullptr, nullptr);
  for (int rows = input.ConsumeIntegralInRange(0, 12); rows > 0; --rows) {
    switch (input.ConsumeIntegralInRange(0, 2)) {
      case 0: insert_kernel(db, version, input, kernels); break;
      case 1: insert_record(db, false, input); break;
      default:
        if (version >= 2) insert_record(db, true, input);
    }
  }
  sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
  sqlite3_close(db);

  const bool read_only = input.ConsumeBool();
  fuzz::parses([&] {
    Store store(StoreOptions{made.work.string(), read_only});
    read_everything(store, version, !store.read_only() && version < 2, kernels);
  });
  return 0;
}
