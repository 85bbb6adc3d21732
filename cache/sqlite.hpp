// The thin sqlite layer under the store: connections, prepared statements, transactions, and
// error text that names the store's path and what to do. Nothing here knows the schema.
#pragma once

#include <sqlite3.h>

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace glqjit::sqlite {

constexpr int kBusyTimeoutMs = 30'000;
constexpr std::string_view kUseWritableFile = "set GLQJIT_CACHE or --cache to a writable file";
constexpr std::string_view kUseAnotherFile = "set GLQJIT_CACHE or --cache to another file (this one is left as it is)";

// Thrown by raise() when sqlite says the file is damaged (SQLITE_CORRUPT, SQLITE_NOTADB). The
// Store constructor sets such a file aside and rebuilds it; the other members degrade.
struct Corrupt {
  std::string path;
  std::string detail;
};

bool is_corruption(int rc);

// sqlite's own words for the last failure on db, with the result code's name where it adds to them.
std::string detail(sqlite3* db, int rc);

// Throws Corrupt for corruption, else Error(cache_error) naming path, what was being done and
// what to do about it.
[[noreturn]] void raise(sqlite3* db, const std::string& path, int rc, std::string_view doing);

struct ConnectionCloser {
  void operator()(sqlite3* db) const { sqlite3_close_v2(db); }
};
using Connection = std::unique_ptr<sqlite3, ConnectionCloser>;

// Opens with extended result codes and the busy timeout. filename is what sqlite opens (a file:
// URI where flags hold SQLITE_OPEN_URI); path names the store in messages.
Connection open(const std::string& path, int flags, std::string_view advice, const std::string& filename = {});

// One prepared statement; every failure goes through raise(), so it names the path.
class Statement {
 public:
  Statement(sqlite3* db, const std::string& path, std::string_view sql, std::string_view doing);
  ~Statement() { sqlite3_finalize(stmt_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  void bind_text(int index, std::string_view text);
  void bind_int(int index, int64_t value);
  void bind_real(int index, double value);
  void bind_null(int index);
  void bind_blob(int index, const std::vector<uint8_t>& bytes);

  int try_step() { return sqlite3_step(stmt_); }
  // True for a row, false when done.
  bool step();
  // Rewinds for another step() with other bindings.
  void reset() { sqlite3_reset(stmt_); }
  // Rows the last step() inserted, updated or deleted.
  int changes() const { return sqlite3_changes(db_); }

  bool is_null(int column) const { return sqlite3_column_type(stmt_, column) == SQLITE_NULL; }
  std::string text(int column) const;
  std::vector<uint8_t> blob(int column) const;
  int64_t integer(int column) const { return sqlite3_column_int64(stmt_, column); }
  double real(int column) const { return sqlite3_column_double(stmt_, column); }

 private:
  void check(int rc);

  sqlite3* db_;
  const std::string& path_;
  std::string_view doing_;
  sqlite3_stmt* stmt_ = nullptr;
};

void exec(sqlite3* db, const std::string& path, const char* sql, std::string_view doing);

// A transaction that rolls back unless commit() was reached, so a throw anywhere inside leaves
// the file as it was. begin is "BEGIN" (a read snapshot) or "BEGIN IMMEDIATE" (takes the write
// lock first, waiting up to the busy timeout, so concurrent writers queue instead of failing).
class Transaction {
 public:
  Transaction(sqlite3* db, const std::string& path, const char* begin, std::string_view doing);
  ~Transaction();
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;
  void commit();

 private:
  sqlite3* db_;
  const std::string& path_;
  std::string_view doing_;
  bool open_ = true;
};

int64_t now_unix();

}  // namespace glqjit::sqlite
