#include "cache/sqlite.hpp"

#include <fmt/format.h>

#include <ctime>

#include "glqjit/error.hpp"

namespace glqjit::sqlite {
namespace {

std::string_view advice_for(int rc) {
  switch (rc & 0xff) {
    case SQLITE_BUSY:
    case SQLITE_LOCKED:
      return "another connection kept the store locked for more than 30 s; retry, or give this "
             "process its own file with GLQJIT_CACHE or --cache";
    case SQLITE_FULL:
      return "free some disk space, or set GLQJIT_CACHE or --cache to a file on another disk";
    case SQLITE_NOMEM:
      return "free some memory and retry";
    default:
      return kUseWritableFile;
  }
}

}  // namespace

bool is_corruption(int rc) {
  const int primary = rc & 0xff;
  return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}

std::string detail(sqlite3* db, int rc) {
  const std::string code = sqlite3_errstr(rc);
  if (db == nullptr) return fmt::format("sqlite: {}", code);
  const std::string message = sqlite3_errmsg(db);
  if (message == code) return fmt::format("sqlite: {}", message);
  return fmt::format("sqlite: {} ({})", message, code);
}

void raise(sqlite3* db, const std::string& path, int rc, std::string_view doing) {
  std::string text = detail(db, rc);
  if (is_corruption(rc)) throw Corrupt{path, std::move(text)};
  throw Error(Status::cache_error, fmt::format("cache store {}: {} failed: {}; {}", path, doing, text, advice_for(rc)));
}

Connection open(const std::string& path, int flags, std::string_view advice, const std::string& filename) {
  sqlite3* raw = nullptr;
  const std::string& name = filename.empty() ? path : filename;
  const int rc = sqlite3_open_v2(name.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
  Connection db(raw);
  if (rc != SQLITE_OK) {
    throw Error(Status::cache_error,
                fmt::format("cache store {}: cannot open it: {}; {}", path, detail(raw, rc), advice));
  }
  sqlite3_extended_result_codes(raw, 1);
  sqlite3_busy_timeout(raw, kBusyTimeoutMs);
  return db;
}

Statement::Statement(sqlite3* db, const std::string& path, std::string_view sql, std::string_view doing)
    : db_(db), path_(path), doing_(doing) {
  const int rc = sqlite3_prepare_v2(db, sql.data(), static_cast<int>(sql.size()), &stmt_, nullptr);
  if (rc != SQLITE_OK) raise(db_, path_, rc, doing_);
}

void Statement::bind_text(int index, std::string_view text) {
  check(sqlite3_bind_text64(stmt_, index, text.empty() ? "" : text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8));
}

void Statement::bind_int(int index, int64_t value) { check(sqlite3_bind_int64(stmt_, index, value)); }

void Statement::bind_real(int index, double value) { check(sqlite3_bind_double(stmt_, index, value)); }

void Statement::bind_null(int index) { check(sqlite3_bind_null(stmt_, index)); }

void Statement::bind_blob(int index, const std::vector<uint8_t>& bytes) {
  // A null pointer would bind NULL, not an empty blob.
  if (bytes.empty()) {
    check(sqlite3_bind_zeroblob(stmt_, index, 0));
  } else {
    check(sqlite3_bind_blob64(stmt_, index, bytes.data(), bytes.size(), SQLITE_TRANSIENT));
  }
}

bool Statement::step() {
  const int rc = try_step();
  if (rc == SQLITE_ROW) return true;
  if (rc == SQLITE_DONE) return false;
  raise(db_, path_, rc, doing_);
}

std::string Statement::text(int column) const {
  const auto* data = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, column));
  const int size = sqlite3_column_bytes(stmt_, column);
  return data == nullptr ? std::string() : std::string(data, static_cast<size_t>(size));
}

std::vector<uint8_t> Statement::blob(int column) const {
  const auto* data = static_cast<const uint8_t*>(sqlite3_column_blob(stmt_, column));
  const int size = sqlite3_column_bytes(stmt_, column);
  if (data == nullptr || size <= 0) return {};
  return std::vector<uint8_t>(data, data + size);
}

void Statement::check(int rc) {
  if (rc != SQLITE_OK) raise(db_, path_, rc, doing_);
}

void exec(sqlite3* db, const std::string& path, const char* sql, std::string_view doing) {
  const int rc = sqlite3_exec(db, sql, nullptr, nullptr, nullptr);
  if (rc != SQLITE_OK) raise(db, path, rc, doing);
}

Transaction::Transaction(sqlite3* db, const std::string& path, const char* begin, std::string_view doing)
    : db_(db), path_(path), doing_(doing) {
  exec(db_, path_, begin, doing_);
}

Transaction::~Transaction() {
  // sqlite rolls some failures (SQLITE_FULL, SQLITE_IOERR) back by itself; only roll back what is
  // still open.
  if (open_ && sqlite3_get_autocommit(db_) == 0) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
}

void Transaction::commit() {
  exec(db_, path_, "COMMIT", doing_);
  open_ = false;
}

int64_t now_unix() { return static_cast<int64_t>(std::time(nullptr)); }

}  // namespace glqjit::sqlite
