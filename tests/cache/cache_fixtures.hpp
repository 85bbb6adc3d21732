// Helpers shared by the cache tests and the stress writer: temporary folders, stderr capture,
// raw sqlite access to check the file from outside the Store, deterministic sample rows, rows
// drawn at random, and a version-1 store written by hand.
#pragma once

#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cache/key.hpp"
#include "cache/schema.hpp"
#include "cache/store.hpp"
#include "support/sha256.hpp"
#include "temp_dir.hpp"

namespace glqjit::test {

// Sends this process's stderr (fd 2, where glqjit logs) into a file until finish().
class StderrCapture {
 public:
  explicit StderrCapture(std::string file) : file_(std::move(file)) {
    std::fflush(stderr);
    saved_ = ::dup(2);
    const int fd = ::open(file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (saved_ < 0 || fd < 0) throw std::runtime_error("cannot capture stderr into " + file_);
    ::dup2(fd, 2);
    ::close(fd);
  }
  ~StderrCapture() { restore(); }
  StderrCapture(const StderrCapture&) = delete;
  StderrCapture& operator=(const StderrCapture&) = delete;

  std::string finish() {
    restore();
    std::ifstream in(file_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  void restore() {
    if (saved_ < 0) return;
    std::fflush(stderr);
    ::dup2(saved_, 2);
    ::close(saved_);
    saved_ = -1;
  }
  std::string file_;
  int saved_ = -1;
};

// The first column of the first row of sql, run on a connection of its own.
inline std::string sqlite_scalar(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open_v2(path.c_str(), &db, SQLITE_OPEN_READWRITE, nullptr) != SQLITE_OK) {
    const std::string message = sqlite3_errmsg(db);
    sqlite3_close(db);
    throw std::runtime_error("cannot open " + path + ": " + message);
  }
  sqlite3_busy_timeout(db, 30000);
  sqlite3_stmt* stmt = nullptr;
  std::string result;
  int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr);
  if (rc == SQLITE_OK) rc = sqlite3_step(stmt);
  if (rc == SQLITE_ROW) {
    const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
    result = text == nullptr ? "" : text;
  }
  const std::string message = sqlite3_errmsg(db);
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  if (rc != SQLITE_ROW && rc != SQLITE_DONE) throw std::runtime_error(sql + " on " + path + ": " + message);
  return result;
}

// The whole file, byte for byte.
inline std::string read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

inline KernelKey sample_key(const std::string& name) {
  KernelKey key;
  key.schema_version = 1;
  key.library_version = "0.1.0";
  key.source_hash = sha256_hex("source of " + name);
  key.spec = name;
  key.variant = "tile=64x128 stages=3";
  key.batch_bucket = 8;
  key.arch = "sm_90a";
  key.nvrtc_version = "13.0";
  key.options = "--std=c++17 -arch=sm_90a";
  return key;
}

// A kernel whose every field follows from its name, so any writer of the same name writes the
// same row. The cubin holds zero bytes on purpose.
inline CompiledKernel sample_kernel(const std::string& name, size_t cubin_bytes = 3000) {
  const KernelKey key = sample_key(name);
  CompiledKernel kernel;
  kernel.key_digest = key.digest();
  kernel.key_text = key.canonical();
  const std::string seed = sha256_hex(name);
  kernel.cubin.resize(cubin_bytes);
  for (size_t i = 0; i < cubin_bytes; ++i) {
    kernel.cubin[i] = i % 5 == 0 ? 0 : static_cast<uint8_t>(seed[i % seed.size()] * 31 + i);
  }
  kernel.ptx = "// ptx of " + name + "\n.version 8.0\n";
  kernel.compile_log = name.size() % 2 == 0 ? "" : "warning: something about " + name;
  kernel.registers = static_cast<int>(name.size() % 200) + 32;
  kernel.spill_bytes = static_cast<int>(name.size() % 3) * 8;
  kernel.shared_bytes = 49152;
  kernel.compile_ms = 12.5 + static_cast<double>(name.size());
  return kernel;
}

inline KernelKey random_key(std::mt19937_64& random, const std::string& arch) {
  KernelKey key = sample_key("random-" + std::to_string(random()));
  key.arch = arch;
  key.batch_bucket = 1 << (random() % 8);
  return key;
}

// A kernel of arch with cubin bytes (NULs included) and text fields drawn from random.
inline CompiledKernel random_kernel(std::mt19937_64& random, const std::string& arch) {
  const KernelKey key = random_key(random, arch);
  CompiledKernel kernel;
  kernel.key_digest = key.digest();
  kernel.key_text = key.canonical();
  kernel.cubin.resize(1 + random() % 6000);
  for (uint8_t& byte : kernel.cubin) byte = static_cast<uint8_t>(random());
  kernel.ptx = "// ptx " + std::to_string(random());
  kernel.compile_log = random() % 2 == 0 ? "" : "warning #" + std::to_string(random() % 1000);
  kernel.registers = static_cast<int>(random() % 255);
  kernel.spill_bytes = static_cast<int>(random() % 64) * 4;
  kernel.shared_bytes = static_cast<int>(random() % 228) * 1024;
  kernel.compile_ms = static_cast<double>(random() % 100000) / 64.0;
  kernel.created_at = 1'700'000'000 + static_cast<int64_t>(random() % 100'000'000);
  return kernel;
}

inline bool same_kernel(const CompiledKernel& a, const CompiledKernel& b) {
  return a.key_digest == b.key_digest && a.key_text == b.key_text && a.cubin == b.cubin && a.ptx == b.ptx &&
         a.compile_log == b.compile_log && a.registers == b.registers && a.spill_bytes == b.spill_bytes &&
         a.shared_bytes == b.shared_bytes && a.compile_ms == b.compile_ms;
}

inline TuningRecord sample_tuning(const std::string& spec, int bucket, const std::string& variant) {
  TuningRecord record;
  record.device_signature = "NVIDIA H100 80GB HBM3|132 SMs|cc 9.0|driver 580.65";
  record.spec = spec;
  record.batch_bucket = bucket;
  record.variant = variant;
  record.time_us = 10.0 + bucket;
  record.details = R"({"candidates":[{"variant":")" + variant + R"(","time_us":10.0}]})";
  return record;
}

// Valid JSON that a normalizing store would change: uneven white space, escapes, raw UTF-8,
// numbers in several spellings, keys out of alphabetical order.
inline std::string random_json(std::mt19937_64& random) {
  static constexpr const char* kSpaces[] = {"", " ", "  ", "\n", "\t", " \r\n "};
  const auto space = [&] { return kSpaces[random() % std::size(kSpaces)]; };
  std::string samples;
  const int count = 1 + static_cast<int>(random() % 12);
  for (int i = 0; i < count; ++i) {
    const uint64_t value = random() % 100000;
    if (i > 0) samples += fmt::format(",{}", space());
    samples += random() % 3 == 0 ? fmt::format("{}e-3", value) : fmt::format("{}.{:03}", value / 1000, value % 1000);
  }
  return fmt::format(R"({{{}"samples_us":{}[{}],{}"spread":{}.5E-2,"reason":"café \"q\" \\ \u00e9\n {}",{})"
                     R"("resources":{{"registers":{},"shared":null,"ok":true}}{}}})",
                     space(), space(), samples, space(), random() % 100, random(), space(), random() % 255, space());
}

inline MeasurementRecord random_measurement(std::mt19937_64& random, const std::string& device_signature) {
  MeasurementRecord record;
  record.device_signature = device_signature;
  record.spec = "in=" + std::to_string(256 << (random() % 6)) + " out=" + std::to_string(256 << (random() % 6));
  record.batch_bucket = 1 << (random() % 6);
  record.variant = "tile=" + std::to_string(random() % 100000) + " stages=" + std::to_string(random() % 5);
  record.status = std::string(kMeasurementStatuses[random() % kMeasurementStatuses.size()]);
  record.median_us = record.status == "ok" ? 1.0 + static_cast<double>(random() % 1'000'000) / 1024.0 : 0;
  record.details = random_json(random);
  record.measured_at = 1'700'000'000 + static_cast<int64_t>(random() % 100'000'000);
  return record;
}

inline bool same_measurement(const MeasurementRecord& a, const MeasurementRecord& b) {
  return a.device_signature == b.device_signature && a.spec == b.spec && a.batch_bucket == b.batch_bucket &&
         a.variant == b.variant && a.status == b.status && a.median_us == b.median_us && a.details == b.details &&
         a.measured_at == b.measured_at;
}

inline bool same_tuning(const TuningRecord& a, const TuningRecord& b) {
  return a.device_signature == b.device_signature && a.spec == b.spec && a.batch_bucket == b.batch_bucket &&
         a.variant == b.variant && a.time_us == b.time_us && a.details == b.details && a.updated_at == b.updated_at;
}

// Runs sql on a connection of its own (several statements allowed); throws with sqlite's message.
inline void sqlite_exec(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  int rc = sqlite3_open(path.c_str(), &db);
  if (rc == SQLITE_OK) rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr);
  const std::string message = sqlite3_errmsg(db);
  sqlite3_close(db);
  if (rc != SQLITE_OK) throw std::runtime_error(sql + " on " + path + ": " + message);
}

// A store as glqjit 0.1 (schema version 1) wrote it: migration 1's tables, user_version 1, no
// application_id, in the default rollback journal mode.
inline void write_version1_store(const std::string& path, const std::vector<CompiledKernel>& kernels,
                                 const std::vector<TuningRecord>& tuning) {
  sqlite_exec(path, std::string(store_migrations()[0].sql) + "PRAGMA user_version = 1;");
  sqlite3* db = nullptr;
  sqlite3_open(path.c_str(), &db);
  const auto run = [&](const char* sql, const auto& bind) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, sql, -1, &stmt, nullptr) != SQLITE_OK) throw std::runtime_error(sqlite3_errmsg(db));
    bind(stmt);
    const int rc = sqlite3_step(stmt);
    sqlite3_finalize(stmt);
    if (rc != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db));
  };
  for (const CompiledKernel& k : kernels) {
    run("INSERT INTO kernels VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)", [&](sqlite3_stmt* stmt) {
      sqlite3_bind_text(stmt, 1, k.key_digest.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(stmt, 2, k.key_text.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_blob(stmt, 3, k.cubin.data(), static_cast<int>(k.cubin.size()), SQLITE_TRANSIENT);
      sqlite3_bind_text(stmt, 4, k.ptx.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(stmt, 5, k.compile_log.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int(stmt, 6, k.registers);
      sqlite3_bind_int(stmt, 7, k.spill_bytes);
      sqlite3_bind_int(stmt, 8, k.shared_bytes);
      sqlite3_bind_double(stmt, 9, k.compile_ms);
      sqlite3_bind_int64(stmt, 10, k.created_at);
    });
  }
  for (const TuningRecord& t : tuning) {
    run("INSERT INTO tuning VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)", [&](sqlite3_stmt* stmt) {
      sqlite3_bind_text(stmt, 1, t.device_signature.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_text(stmt, 2, t.spec.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int(stmt, 3, t.batch_bucket);
      sqlite3_bind_text(stmt, 4, t.variant.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_double(stmt, 5, t.time_us);
      sqlite3_bind_text(stmt, 6, t.details.c_str(), -1, SQLITE_TRANSIENT);
      sqlite3_bind_int64(stmt, 7, t.updated_at);
    });
  }
  sqlite3_close(db);
}

// Names the stress writer and the stress test agree on.
inline std::string shared_kernel_name(int i) { return "shared-" + std::to_string(i); }
inline std::string unique_kernel_name(int writer, int i) {
  return "writer-" + std::to_string(writer) + "-kernel-" + std::to_string(i);
}
inline std::string unique_tuning_spec(int writer, int i) {
  return "spec-" + std::to_string(writer) + "-" + std::to_string(i);
}
inline std::string writer_variant(int writer) { return "variant-of-writer-" + std::to_string(writer); }

// Measurement i of a stress writer, drawn from the run's seed; its spec and variant say whose it
// is (stress_measurement_index reads them back).
inline MeasurementRecord stress_measurement(uint64_t seed, int writer, int i) {
  std::mt19937_64 random(seed ^ (static_cast<uint64_t>(writer) << 40) ^ static_cast<uint64_t>(i));
  MeasurementRecord record = random_measurement(random, "stress GPU | sm_count=1 | cc=9.0 | driver=1");
  record.spec = "mspec-" + std::to_string(writer) + "-" + std::to_string(i / 8);
  record.variant = "v" + std::to_string(i % 8) + " " + record.variant;
  return record;
}

// The i of a stress_measurement() of writer, or -1 for a record that is not one of that writer's.
inline int stress_measurement_index(const MeasurementRecord& record, int writer) {
  const std::string prefix = "mspec-" + std::to_string(writer) + "-";
  if (record.spec.rfind(prefix, 0) != 0 || record.variant.size() < 2 || record.variant[0] != 'v') return -1;
  return std::stoi(record.spec.substr(prefix.size())) * 8 + (record.variant[1] - '0');
}

// Shared measurement k as writer wrote it: every writer writes the same keys, each its own way.
inline MeasurementRecord shared_measurement(uint64_t seed, int writer, int k) {
  MeasurementRecord record = stress_measurement(seed, writer, 1'000'000 + k);
  record.spec = "mshared-" + std::to_string(k);
  record.variant = "shared";
  return record;
}

}  // namespace glqjit::test
