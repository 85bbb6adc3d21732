// Helpers shared by the cache tests and the stress writer: temporary folders, stderr capture,
// raw sqlite access to check the file from outside the Store, and deterministic sample rows.
#pragma once

#include <fcntl.h>
#include <sqlite3.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "cache/key.hpp"
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

// Names the stress writer and the stress test agree on.
inline std::string shared_kernel_name(int i) { return "shared-" + std::to_string(i); }
inline std::string unique_kernel_name(int writer, int i) {
  return "writer-" + std::to_string(writer) + "-kernel-" + std::to_string(i);
}
inline std::string unique_tuning_spec(int writer, int i) {
  return "spec-" + std::to_string(writer) + "-" + std::to_string(i);
}
inline std::string writer_variant(int writer) { return "variant-of-writer-" + std::to_string(writer); }

}  // namespace glqjit::test
