// Sixteen processes write kernels, tuning records and measurements into one new store at once and
// read each row back (DESIGN.md: many processes may compile and tune into the same file without
// corrupting it or losing records), and three of them killed with SIGKILL at different moments of
// a tune lose nothing they had committed.
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cstring>
#include <fstream>
#include <iterator>
#include <map>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "cache_fixtures.hpp"
#include "child_process.hpp"

using namespace glqjit;
using namespace glqjit::test;

namespace {

constexpr int kWriters = 16;
constexpr int kShared = 30;
constexpr int kUnique = 30;
constexpr int kTuning = 16;
constexpr int kSharedSpecs = 4;
constexpr int kMeasurements = 40;
constexpr int kSharedMeasurements = 4;
constexpr int kEndless = 1'000'000;  // measurements of a writer that is killed: more than it gets to

// kWriters stress writers on path, started at the same moment. The victims write kEndless
// measurements and report each commit over a pipe of their own; the others write to /dev/null.
class Writers {
 public:
  Writers(const std::string& path, uint64_t seed, const std::vector<int>& victims = {}) {
    // Every writer blocks reading stdin until the write end closes, so they all start together.
    int start[2];
    REQUIRE(::pipe2(start, O_CLOEXEC) == 0);
    for (int w = 0; w < kWriters; ++w) {
      const bool victim = std::ranges::find(victims, w) != victims.end();
      int report[2] = {-1, -1};
      if (victim) REQUIRE(::pipe2(report, O_CLOEXEC) == 0);
      const std::vector<std::string> args = {GLQJIT_CACHE_STRESS_WRITER,
                                             path,
                                             std::to_string(w),
                                             std::to_string(kShared),
                                             std::to_string(kUnique),
                                             std::to_string(kTuning),
                                             std::to_string(kSharedSpecs),
                                             std::to_string(victim ? kEndless : kMeasurements),
                                             std::to_string(kSharedMeasurements),
                                             std::to_string(seed)};
      try {
        pids_.push_back(spawn_child(args, start[0], report[1]));
      } catch (const std::exception& error) {
        kill_all(pids_);
        FAIL(error.what());
      }
      if (victim) {
        ::close(report[1]);
        reports_.push_back({w, report[0]});
      }
    }
    ::close(start[0]);
    began_ = std::chrono::steady_clock::now();
    ::close(start[1]);
  }
  ~Writers() {
    kill_all(pids_);
    for (const Report& report : reports_) ::close(report.fd);
  }
  Writers(const Writers&) = delete;
  Writers& operator=(const Writers&) = delete;

  // Reads the victims' reports and kills each victim (by pid) once each of its lanes has
  // committed its `each` measurements (so both are past their kernels and tuning records, in the
  // middle of the tune: victim k of the list after (k + 1) * each), then reads what it wrote before
  // it died. Returns, per victim, every i it reported committed.
  std::map<int, std::set<int>> kill_victims_after(int each) {
    std::map<int, std::set<int>> committed;
    size_t alive = reports_.size();
    while (alive > 0) {
      if (std::chrono::steady_clock::now() - began_ > std::chrono::seconds(120)) {
        kill_all(pids_);
        FAIL("the writers to kill did not reach their measurements in 120 s");
      }
      std::vector<pollfd> ready;
      for (const Report& report : reports_) {
        if (!report.killed) ready.push_back({report.fd, POLLIN, 0});
      }
      if (::poll(ready.data(), ready.size(), 100) <= 0) continue;
      for (size_t k = 0; k < reports_.size(); ++k) {
        Report& report = reports_[k];
        if (report.killed) continue;
        const auto fd = std::ranges::find(ready, report.fd, &pollfd::fd);
        if ((fd->revents & (POLLIN | POLLHUP)) == 0) continue;
        if (read_reports(report, committed[report.writer]) <= 0) {
          kill_all(pids_);
          FAIL("writer " << report.writer << " stopped reporting before it was killed");
        }
        const int due = static_cast<int>(k + 1) * each;
        if (report.lanes[0] < due || report.lanes[1] < due) continue;
        REQUIRE(::kill(pids_[report.writer], SIGKILL) == 0);
        REQUIRE(::waitpid(pids_[report.writer], &statuses_[report.writer], 0) == pids_[report.writer]);
        pids_[report.writer] = 0;
        while (read_reports(report, committed[report.writer]) > 0) {
        }
        CHECK(report.line.empty());  // each report is one write() of one line, so none is cut short
        report.killed = true;
        --alive;
      }
    }
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
  // The pipe a victim reports "<lane> <i>" lines on, and what has come through it.
  struct Report {
    int writer;
    int fd;
    std::string line;
    int lanes[2] = {0, 0};
    bool killed = false;
  };

  // Reads what is there; returns what read() returned.
  static ssize_t read_reports(Report& report, std::set<int>& committed) {
    char buffer[4096];
    const ssize_t got = ::read(report.fd, buffer, sizeof buffer);
    for (ssize_t i = 0; i < got; ++i) {
      if (buffer[i] != '\n') {
        report.line += buffer[i];
        continue;
      }
      std::istringstream fields(report.line);
      int lane = -1;
      int index = -1;
      fields >> lane >> index;
      REQUIRE((lane == 0 || lane == 1));
      ++report.lanes[lane];
      committed.insert(index);
      report.line.clear();
    }
    return got;
  }

  std::vector<pid_t> pids_;
  std::vector<int> statuses_ = std::vector<int>(kWriters, -1);
  std::vector<Report> reports_;
  std::chrono::steady_clock::time_point began_;
};

// Every writer but the victims succeeded, and the file is one intact database holding every row
// they wrote; of each victim's measurements it holds those it reported committed, each whole, and
// at most one more per lane (committed, killed before it could report it).
void check_everything_stored(const std::string& path, const std::vector<int>& statuses, uint64_t seed,
                             const std::map<int, std::set<int>>& victims = {}) {
  for (int w = 0; w < kWriters; ++w) {
    if (victims.contains(w)) continue;
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
    if (const auto victim = victims.find(w); victim != victims.end()) {
      const std::set<int>& committed = victim->second;
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

TEST_CASE("store: sixteen processes writing at once lose nothing", "[cache][store][stress]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  TempDir dir;
  const std::string path = dir.file("shared/stress.db");  // neither the folder nor the file exists yet
  Writers writers(path, seed);
  check_everything_stored(path, writers.wait(), seed);
}

TEST_CASE("store: sixteen processes finding one corrupt file set it aside once", "[cache][store][stress]") {
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

TEST_CASE("store: writers killed in the middle of a tune lose no committed record, and the next run goes on",
          "[cache][store][stress]") {
  const uint64_t seed = fresh_seed();
  INFO("seed " << seed);
  TempDir dir;
  const std::string path = dir.file("stress.db");
  const std::vector<int> victims = {3, 8, 13};
  Writers writers(path, seed, victims);
  const std::map<int, std::set<int>> committed = writers.kill_victims_after(20);
  const std::vector<int> statuses = writers.wait();
  for (const int victim : victims) {
    INFO("victim " << victim);
    REQUIRE(WIFSIGNALED(statuses[victim]));
    CHECK(WTERMSIG(statuses[victim]) == SIGKILL);
    REQUIRE(committed.at(victim).size() >= 40);
  }
  check_everything_stored(path, statuses, seed, committed);
  // The store the victims died in opens and takes each one's next measurement as before.
  Store store(StoreOptions{path, false});
  for (const int victim : victims) {
    const MeasurementRecord next = stress_measurement(seed, victim, kEndless);
    store.put_measurement(next);
    const auto back = store.find_measurements(next.device_signature, next.spec, next.batch_bucket);
    CHECK(std::ranges::count_if(back, [&](const MeasurementRecord& r) { return same_measurement(r, next); }) == 1);
  }
  CHECK(sqlite_scalar(path, "PRAGMA integrity_check") == "ok");
}
