// A store this process cannot write (read-only filesystem or permissions, as for a store shipped
// in a serving image): a writable open falls back to read-only with a warning, and both that and
// an explicit read-only open read it even though sqlite cannot create its -shm file there.
#include <grp.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "cache_fixtures.hpp"
#include "glqjit/error.hpp"

using namespace glqjit;
using namespace glqjit::test;
namespace fs = std::filesystem;

namespace {

constexpr uid_t kNobody = 65534;

enum ChildFailure : int {
  kFallbackNotReadOnly = 1,
  kFallbackMissedRow = 2,
  kFallbackPutDidNotThrow = 4,
  kFallbackThrew = 8,
  kReadOnlyMissedRow = 16,
  kReadOnlyThrew = 32,
  kCannotDropPrivileges = 64,
  kCannotReachFile = 200,  // not a combination of the bits above
};

// In a child process that may not write dir (root drops to nobody, since root writes anything):
// opens the store both ways and reports what went wrong as exit-status bits.
int check_in_child(const std::string& path, const std::string& digest, const std::string& log) {
  const int log_fd = ::open(log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (log_fd >= 0) ::dup2(log_fd, 2);
  if (::geteuid() == 0) {
    if (::setgroups(0, nullptr) != 0 || ::setresgid(kNobody, kNobody, kNobody) != 0 ||
        ::setresuid(kNobody, kNobody, kNobody) != 0) {
      return kCannotDropPrivileges;
    }
  }
  if (::access(path.c_str(), R_OK) != 0) return kCannotReachFile;
  int failures = 0;
  try {
    Store store(StoreOptions{path, false});
    if (!store.read_only()) failures |= kFallbackNotReadOnly;
    if (!store.find_kernel(digest).has_value()) failures |= kFallbackMissedRow;
    try {
      store.put_kernel(sample_kernel("not-saved"));
      failures |= kFallbackPutDidNotThrow;
    } catch (const Error& error) {
      if (error.status() != Status::cache_error) failures |= kFallbackPutDidNotThrow;
    }
  } catch (const std::exception& error) {
    std::fprintf(stderr, "writable open threw: %s\n", error.what());
    failures |= kFallbackThrew;
  }
  try {
    Store store(StoreOptions{path, true});
    if (!store.find_kernel(digest).has_value()) failures |= kReadOnlyMissedRow;
  } catch (const std::exception& error) {
    std::fprintf(stderr, "read-only open threw: %s\n", error.what());
    failures |= kReadOnlyThrew;
  }
  return failures;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

}  // namespace

TEST_CASE("store: a file this process cannot write is used read-only", "[cache][store][read-only]") {
  TempDir dir;
  TempDir logs;
  const std::string path = dir.file("shipped.db");
  const CompiledKernel kernel = sample_kernel("shipped");
  {
    Store store(StoreOptions{path, false});
    store.put_kernel(kernel);
  }
  REQUIRE_FALSE(fs::exists(path + "-shm"));  // closed cleanly: only the WAL-mode file is left
  REQUIRE(sqlite_scalar(path, "PRAGMA journal_mode") == "wal");
  REQUIRE_FALSE(fs::exists(path + "-shm"));
  ::chmod(path.c_str(), 0444);
  ::chmod(dir.path().c_str(), 0555);
  ::chmod(logs.path().c_str(), 0777);
  const std::string log = logs.file("child-stderr.txt");

  // No sqlite connection is open here, so none crosses the fork.
  const pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(check_in_child(path, kernel.key_digest, log));
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  ::chmod(dir.path().c_str(), 0700);
  REQUIRE(WIFEXITED(status));
  const std::string child_stderr = read_text(log);
  INFO("child stderr: " << child_stderr);
  if (WEXITSTATUS(status) == kCannotReachFile) {
    WARN("skipped: user nobody cannot reach " << path << " (set TMPDIR to a world-readable folder)");
    return;
  }
  CHECK(WEXITSTATUS(status) == 0);
  CHECK_THAT(child_stderr, Catch::Contains("glqjit warning") && Catch::Contains(path) &&
                               Catch::Contains("not writable") && Catch::Contains("read-only"));
  CHECK(dir.find("shipped.db").size() == 1);  // nothing created or renamed beside it
}
