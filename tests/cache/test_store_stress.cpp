// Eight processes write into one new store at once (DESIGN.md: many processes may compile and
// tune into the same file without corrupting it or losing records).
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "cache_fixtures.hpp"

extern char** environ;

using namespace glqjit;
using namespace glqjit::test;

namespace {

constexpr int kWriters = 8;
constexpr int kShared = 30;
constexpr int kUnique = 30;
constexpr int kTuning = 16;
constexpr int kSharedSpecs = 4;

// Starts kWriters stress writers on path at the same moment and waits for them; returns each
// one's wait status (killing, by pid, any still running after two minutes).
std::vector<int> run_writers(const std::string& path) {
  // Every writer blocks reading stdin until the write end closes, so they all start together.
  int start[2];
  REQUIRE(::pipe2(start, O_CLOEXEC) == 0);
  std::vector<pid_t> writers;
  for (int w = 0; w < kWriters; ++w) {
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, start[0], 0);
    const std::vector<std::string> args = {GLQJIT_CACHE_STRESS_WRITER,  path,
                                           std::to_string(w),           std::to_string(kShared),
                                           std::to_string(kUnique),     std::to_string(kTuning),
                                           std::to_string(kSharedSpecs)};
    std::vector<char*> argv;
    for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
      for (pid_t started : writers) ::kill(started, SIGKILL);
      for (pid_t started : writers) ::waitpid(started, nullptr, 0);
      FAIL("posix_spawn " << argv[0] << " failed: " << std::strerror(rc));
    }
    writers.push_back(pid);
  }
  ::close(start[0]);
  const auto began = std::chrono::steady_clock::now();
  ::close(start[1]);

  std::vector<int> statuses(kWriters, -1);
  int running = kWriters;
  while (running > 0) {
    for (int w = 0; w < kWriters; ++w) {
      if (writers[w] == 0) continue;
      int status = 0;
      if (::waitpid(writers[w], &status, WNOHANG) == writers[w]) {
        statuses[w] = status;
        writers[w] = 0;
        --running;
      }
    }
    if (running > 0 && std::chrono::steady_clock::now() - began > std::chrono::seconds(120)) {
      for (pid_t pid : writers) {
        if (pid != 0) ::kill(pid, SIGKILL);
      }
      for (pid_t pid : writers) {
        if (pid != 0) ::waitpid(pid, nullptr, 0);
      }
      FAIL("stress writers still running after 120 s");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return statuses;
}

// Every writer succeeded and the file is one intact database holding every row they wrote.
void check_everything_stored(const std::string& path, const std::vector<int>& statuses) {
  for (int w = 0; w < kWriters; ++w) {
    INFO("writer " << w);
    REQUIRE(WIFEXITED(statuses[w]));
    CHECK(WEXITSTATUS(statuses[w]) == 0);
  }
  CHECK(sqlite_scalar(path, "PRAGMA integrity_check") == "ok");
  CHECK(sqlite_scalar(path, "SELECT count(*) FROM kernels") == std::to_string(kShared + kWriters * kUnique));
  CHECK(sqlite_scalar(path, "SELECT count(*) FROM tuning") == std::to_string(kWriters * kTuning + kSharedSpecs));

  Store store(StoreOptions{path, true});
  int missing = 0;
  for (int i = 0; i < kShared; ++i) {
    const CompiledKernel kernel = sample_kernel(shared_kernel_name(i));
    const auto back = store.find_kernel(kernel.key_digest);
    if (!back || !same_kernel(*back, kernel)) ++missing;
  }
  for (int w = 0; w < kWriters; ++w) {
    for (int i = 0; i < kUnique; ++i) {
      const CompiledKernel kernel = sample_kernel(unique_kernel_name(w, i), 2000 + 37 * i);
      const auto back = store.find_kernel(kernel.key_digest);
      if (!back || !same_kernel(*back, kernel)) ++missing;
    }
    for (int i = 0; i < kTuning; ++i) {
      const TuningRecord record = sample_tuning(unique_tuning_spec(w, i), 1 << (i % 8), writer_variant(w));
      const auto back = store.find_tuning(record.device_signature, record.spec, record.batch_bucket);
      if (!back || back->variant != record.variant || back->details != record.details) ++missing;
    }
  }
  CHECK(missing == 0);
  std::set<std::string> variants;
  for (int w = 0; w < kWriters; ++w) variants.insert(writer_variant(w));
  for (int i = 0; i < kSharedSpecs; ++i) {
    const TuningRecord probe = sample_tuning("shared-spec-" + std::to_string(i), 16, "");
    const auto back = store.find_tuning(probe.device_signature, probe.spec, 16);
    REQUIRE(back.has_value());
    CHECK(variants.count(back->variant) == 1);  // one whole record of some writer, not a mix
    CHECK(back->details == sample_tuning(probe.spec, 16, back->variant).details);
  }
}

}  // namespace

TEST_CASE("store: eight processes writing at once lose nothing", "[cache][store][stress]") {
  TempDir dir;
  const std::string path = dir.file("shared/stress.db");  // neither the folder nor the file exists yet
  check_everything_stored(path, run_writers(path));
}

TEST_CASE("store: eight processes finding one corrupt file set it aside once", "[cache][store][stress]") {
  TempDir dir;
  const std::string path = dir.file("stress.db");
  std::ofstream(path) << std::string(10000, 'x');
  // Warnings of the writers go to this test's stderr; the one that set the file aside says so.
  const std::vector<int> statuses = run_writers(path);
  // Whoever came first moved it aside; the others saw the fresh store and kept it.
  CHECK(dir.find("stress.db.corrupt-").size() == 1);
  check_everything_stored(path, statuses);
}
