// Eight processes write into one new store at once (DESIGN.md: many processes may compile and
// tune into the same file without corrupting it or losing records), and one of them killed in the
// middle of a tune loses nothing it had committed.
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <random>
#include <set>
#include <sstream>
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
constexpr int kMeasurements = 40;
constexpr int kSharedMeasurements = 4;
constexpr int kEndless = 1'000'000;  // measurements of the writer that is killed: more than it gets to

// Kills (by pid) and reaps every writer still running.
void kill_all(std::vector<pid_t>& writers) {
  for (pid_t pid : writers) {
    if (pid != 0) ::kill(pid, SIGKILL);
  }
  for (pid_t& pid : writers) {
    if (pid != 0) ::waitpid(pid, nullptr, 0);
    pid = 0;
  }
}

// kWriters stress writers on path, started at the same moment. Writer `victim` (if any) writes
// kEndless measurements and reports to a pipe, the others to /dev/null.
class Writers {
 public:
  Writers(const std::string& path, uint64_t seed, int victim = -1) {
    // Every writer blocks reading stdin until the write end closes, so they all start together.
    int start[2];
    REQUIRE(::pipe2(start, O_CLOEXEC) == 0);
    int report[2];
    REQUIRE(::pipe2(report, O_CLOEXEC) == 0);
    for (int w = 0; w < kWriters; ++w) {
      posix_spawn_file_actions_t actions;
      posix_spawn_file_actions_init(&actions);
      posix_spawn_file_actions_adddup2(&actions, start[0], 0);
      if (w == victim) {
        posix_spawn_file_actions_adddup2(&actions, report[1], 1);
      } else {
        posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
      }
      const std::vector<std::string> args = {GLQJIT_CACHE_STRESS_WRITER,
                                             path,
                                             std::to_string(w),
                                             std::to_string(kShared),
                                             std::to_string(kUnique),
                                             std::to_string(kTuning),
                                             std::to_string(kSharedSpecs),
                                             std::to_string(w == victim ? kEndless : kMeasurements),
                                             std::to_string(kSharedMeasurements),
                                             std::to_string(seed)};
      std::vector<char*> argv;
      for (const auto& arg : args) argv.push_back(const_cast<char*>(arg.c_str()));
      argv.push_back(nullptr);
      pid_t pid = 0;
      const int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), environ);
      posix_spawn_file_actions_destroy(&actions);
      if (rc != 0) {
        kill_all(pids_);
        FAIL("posix_spawn " << argv[0] << " failed: " << std::strerror(rc));
      }
      pids_.push_back(pid);
    }
    ::close(start[0]);
    ::close(report[1]);
    report_ = report[0];
    began_ = std::chrono::steady_clock::now();
    ::close(start[1]);
  }
  ~Writers() {
    kill_all(pids_);
    ::close(report_);
  }
  Writers(const Writers&) = delete;
  Writers& operator=(const Writers&) = delete;

  // Reads the victim's reports until each of its lanes has committed `each` measurements (so both
  // are past their kernels and tuning records, in the middle of the tune), kills it by pid, and
  // reads what it wrote before it died. Returns every i it reported committed.
  std::set<int> kill_victim_after(int victim, int each) {
    std::set<int> committed;
    std::string line;
    int lanes[2] = {0, 0};
    const auto read_reports = [&] {
      char buffer[4096];
      const ssize_t got = ::read(report_, buffer, sizeof buffer);
      for (ssize_t i = 0; i < got; ++i) {
        if (buffer[i] != '\n') {
          line += buffer[i];
          continue;
        }
        std::istringstream fields(line);
        int lane = -1;
        int index = -1;
        fields >> lane >> index;
        REQUIRE((lane == 0 || lane == 1));
        ++lanes[lane];
        committed.insert(index);
        line.clear();
      }
      return got;
    };
    while (lanes[0] < each || lanes[1] < each) {
      if (std::chrono::steady_clock::now() - began_ > std::chrono::seconds(120)) {
        kill_all(pids_);
        FAIL("the writer to kill reported " << lanes[0] << " and " << lanes[1] << " measurements in 120 s");
      }
      pollfd ready{report_, POLLIN, 0};
      if (::poll(&ready, 1, 100) <= 0) continue;
      if (read_reports() <= 0) {
        kill_all(pids_);
        FAIL("the writer to kill stopped reporting before it was killed");
      }
    }
    REQUIRE(::kill(pids_[victim], SIGKILL) == 0);
    REQUIRE(::waitpid(pids_[victim], &statuses_[victim], 0) == pids_[victim]);
    pids_[victim] = 0;
    while (read_reports() > 0) {
    }
    CHECK(line.empty());  // each report is one write() of one line, so none is cut short
    return committed;
  }

  // Waits for every writer (killing, by pid, any still running after two minutes); returns each
  // one's wait status.
  std::vector<int> wait() {
    int running = 0;
    for (pid_t pid : pids_) running += pid != 0;
    while (running > 0) {
      for (int w = 0; w < kWriters; ++w) {
        if (pids_[w] == 0) continue;
        if (::waitpid(pids_[w], &statuses_[w], WNOHANG) == pids_[w]) {
          pids_[w] = 0;
          --running;
        }
      }
      if (running > 0 && std::chrono::steady_clock::now() - began_ > std::chrono::seconds(120)) {
        kill_all(pids_);
        FAIL("stress writers still running after 120 s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(2));
    }
    return statuses_;
  }

 private:
  std::vector<pid_t> pids_;
  std::vector<int> statuses_ = std::vector<int>(kWriters, -1);
  int report_ = -1;
  std::chrono::steady_clock::time_point began_;
};

// Every writer but `victim` succeeded, and the file is one intact database holding every row
// they wrote; of the victim's measurements it holds those in `committed`, each whole, and at
// most one more per lane (committed, killed before it could report it).
void check_everything_stored(const std::string& path, const std::vector<int>& statuses, uint64_t seed, int victim = -1,
                             const std::set<int>& committed = {}) {
  for (int w = 0; w < kWriters; ++w) {
    if (w == victim) continue;
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

  // Measurements: each writer's own, then the shared ones.
  const std::vector<MeasurementRecord> all = store.all_measurements();
  std::vector<std::set<int>> found(kWriters);
  int foreign = 0;
  int different = 0;
  for (const MeasurementRecord& record : all) {
    if (record.spec.rfind("mshared-", 0) == 0) continue;
    int writer = -1;
    for (int w = 0; w < kWriters && writer < 0; ++w) {
      if (stress_measurement_index(record, w) >= 0) writer = w;
    }
    if (writer < 0) {
      ++foreign;
      continue;
    }
    const int i = stress_measurement_index(record, writer);
    found[writer].insert(i);
    if (!same_measurement(record, stress_measurement(seed, writer, i))) ++different;
  }
  CHECK(foreign == 0);
  CHECK(different == 0);  // every row whole, the victim's included
  for (int w = 0; w < kWriters; ++w) {
    INFO("writer " << w);
    if (w == victim) {
      std::vector<int> lost;
      std::ranges::set_difference(committed, found[w], std::back_inserter(lost));
      CHECK(lost.empty());
      CHECK(found[w].size() <= committed.size() + 2);
    } else {
      CHECK(found[w].size() == static_cast<size_t>(kMeasurements));
    }
  }
  for (int k = 0; k < kSharedMeasurements; ++k) {
    const MeasurementRecord probe = shared_measurement(seed, 0, k);
    const auto back = store.find_measurements(probe.device_signature, probe.spec, probe.batch_bucket);
    int whole = 0;
    for (int w = 0; w < kWriters; ++w) {
      whole += std::ranges::count_if(
          back, [&](const MeasurementRecord& r) { return same_measurement(r, shared_measurement(seed, w, k)); });
    }
    CHECK(whole == 1);  // one whole record of some writer, not a mix
  }
}

uint64_t fresh_seed() { return std::random_device{}(); }

}  // namespace

TEST_CASE("store: eight processes writing at once lose nothing", "[cache][store][stress]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  TempDir dir;
  const std::string path = dir.file("shared/stress.db");  // neither the folder nor the file exists yet
  Writers writers(path, seed);
  check_everything_stored(path, writers.wait(), seed);
}

TEST_CASE("store: eight processes finding one corrupt file set it aside once", "[cache][store][stress]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  TempDir dir;
  const std::string path = dir.file("stress.db");
  std::ofstream(path) << std::string(10000, 'x');
  // Warnings of the writers go to this test's stderr; the one that set the file aside says so.
  Writers writers(path, seed);
  const std::vector<int> statuses = writers.wait();
  // Whoever came first moved it aside; the others saw the fresh store and kept it.
  CHECK(dir.find("stress.db.corrupt-").size() == 1);
  check_everything_stored(path, statuses, seed);
}

TEST_CASE("store: a writer killed in the middle of a tune loses no committed measurement", "[cache][store][stress]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  TempDir dir;
  const std::string path = dir.file("stress.db");
  constexpr int kVictim = 3;
  Writers writers(path, seed, kVictim);
  const std::set<int> committed = writers.kill_victim_after(kVictim, 60);
  const std::vector<int> statuses = writers.wait();
  REQUIRE(WIFSIGNALED(statuses[kVictim]));
  CHECK(WTERMSIG(statuses[kVictim]) == SIGKILL);
  REQUIRE(committed.size() >= 120);
  check_everything_stored(path, statuses, seed, kVictim, committed);
  // The store the victim died in opens and takes writes as before.
  Store store(StoreOptions{path, false});
  const MeasurementRecord after = stress_measurement(seed, kVictim, kEndless);
  store.put_measurement(after);
  CHECK(store.find_measurements(after.device_signature, after.spec, after.batch_bucket).size() >= 1);
}
