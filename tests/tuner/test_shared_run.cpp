// Workers sharing one tuning run over one store (tuner/shared_run.hpp, glq-tune --devices), on the
// CPU: forked processes each running the tuning loop with a simulated timer, one of them killed
// with SIGKILL while it times a candidate.
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <fmt/format.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <map>
#include <random>
#include <set>
#include <thread>

#include "codegen/variant_space.hpp"
#include "temp_dir.hpp"
#include "tuner/shared_run.hpp"
#include "tuner/tune.hpp"
#include "tuner_fakes.hpp"

namespace glqjit {
namespace {

const Arch kArch = parse_arch("sm_90a");
constexpr int kSmCount = 132;
constexpr int kWorkers = 4;
const std::string kSignature = "Simulated GPU | sm_count=132 | cc=9.0 | driver=13000";

std::vector<TuneKey> run_keys() {
  std::vector<TuneKey> keys;
  for (int bucket : {1, 2, 4, 8, 16, 32}) keys.push_back({{4096, 4096, 2, DType::f16, false, false}, bucket});
  keys.push_back({{1024, 4096, 3, DType::f16, false, false}, 1});
  keys.push_back({{4096, 1024, 4, DType::bf16, true, false}, 8});
  return keys;
}

std::string key_name(const TuneKey& key) { return fmt::format("{} | bucket {}", key.spec.canonical(), key.batch_bucket); }

// Every legal variant of the key a time from a generator seeded by the run and the key, so that
// every worker sees the same landscape.
std::map<std::string, double> landscape(const TuneKey& key, uint64_t run_seed) {
  std::mt19937_64 rng(run_seed ^ std::hash<std::string>{}(key_name(key)));
  std::uniform_real_distribution<double> time(5.0, 50.0);
  std::map<std::string, double> times;
  for (const Variant& v : legal_variants(key.spec, key.batch_bucket, kArch, kSmCount)) times[v.canonical()] = time(rng);
  return times;
}

// Appends "key|variant" to the worker's log before each timing, then takes a while as a GPU
// would, so that the workers overlap; the worker that is to die is killed during its kill_at-th.
class LoggingTimer final : public Timer {
 public:
  LoggingTimer(SimulatedTimer& inner, int log_fd, const std::string& key, int kill_at, int& calls)
      : inner_(inner), log_fd_(log_fd), key_(key), kill_at_(kill_at), calls_(calls) {}
  std::vector<double> time_us(const Variant& variant, int batch) override {
    const std::string line = key_ + "|" + variant.canonical() + "\n";
    REQUIRE(::write(log_fd_, line.data(), line.size()) == ssize_t(line.size()));
    if (++calls_ == kill_at_) ::raise(SIGKILL);
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    return inner_.time_us(variant, batch);
  }

 private:
  SimulatedTimer& inner_;
  int log_fd_;
  std::string key_;
  int kill_at_;
  int& calls_;
};

// One worker: the run's keys through for_each_shared_key, each with tune_key. Returns how many
// candidates it measured (what tune_key counts as measured now).
int run_worker(const std::string& store_path, const std::string& log_path, uint64_t run_seed, int kill_at) {
  Store store(StoreOptions{store_path, false});
  const int log_fd = ::open(log_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  REQUIRE(log_fd >= 0);
  TuneSettings settings;
  settings.device_signature = kSignature;
  settings.arch = kArch;
  settings.sm_count = kSmCount;
  const std::vector<TuneKey> keys = run_keys();
  std::vector<std::string> names;
  for (const TuneKey& key : keys) names.push_back(key_name(key));
  int calls = 0, measured = 0;
  for_each_shared_key(store_path, names, [&](size_t i) {
    SimulatedTimer simulated(landscape(keys[i], run_seed), 0.0, run_seed);
    LoggingTimer timer(simulated, log_fd, names[i], kill_at, calls);
    FakeBuilder builder;
    FakeGate gate;
    measured += tune_key(keys[i], settings, builder, gate, timer, &store).measured_now;
  });
  ::close(log_fd);
  return measured;
}

}  // namespace

TEST_CASE("workers sharing a run time every candidate once; a killed one loses only its candidate in flight",
          "[tuner][shared_run]") {
  const uint64_t run_seed = (uint64_t(std::random_device{}()) << 32) | std::random_device{}();
  INFO("seed " << run_seed);
  test::TempDir dir;
  const std::string store_path = dir.file("shared.db");
  { Store create(StoreOptions{store_path, false}); }
  const int kill_at = 3 + int(run_seed % 5);  // worker 0 dies while timing its kill_at-th candidate
  std::vector<pid_t> workers;
  for (int w = 0; w < kWorkers; ++w) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
      int measured = -1;
      try {
        measured = run_worker(store_path, dir.file(fmt::format("log{}", w)), run_seed, w == 0 ? kill_at : 0);
      } catch (...) {
        ::_exit(101);
      }
      std::ofstream(dir.file(fmt::format("measured{}", w))) << measured << "\n";
      ::_exit(0);
    }
    workers.push_back(pid);
  }
  for (int w = 0; w < kWorkers; ++w) {
    int status = 0;
    REQUIRE(::waitpid(workers[w], &status, 0) == workers[w]);
    if (w == 0) {
      CHECK(WIFSIGNALED(status));
      CHECK(WTERMSIG(status) == SIGKILL);
    } else {
      CHECK(WIFEXITED(status));
      CHECK(WEXITSTATUS(status) == 0);
    }
  }

  // How often each (key, candidate) was timed, by every worker; and what the killed one was timing.
  std::map<std::string, int> timed;
  std::string in_flight;
  int workers_that_timed = 0;
  for (int w = 0; w < kWorkers; ++w) {
    std::ifstream log(dir.file(fmt::format("log{}", w)));
    std::string line, last;
    int lines = 0;
    while (std::getline(log, line)) ++timed[line], last = line, ++lines;
    if (w == 0) {
      CHECK(lines == kill_at);
      in_flight = last;
    }
    workers_that_timed += lines > 0;
  }
  CHECK(workers_that_timed >= 3);  // the run was shared, not done by whoever started first
  for (const auto& [candidate, times] : timed) {
    INFO(candidate);
    CHECK(times == (candidate == in_flight ? 2 : 1));
  }

  // Nothing completed was lost: every timed candidate is a stored measurement, every key has its
  // record, and a run afterwards measures nothing again.
  Store store(StoreOptions{store_path, false});
  size_t stored = 0;
  for (const TuneKey& key : run_keys()) {
    stored += store.find_measurements(kSignature, key.spec.canonical(), key.batch_bucket).size();
    CHECK(store.find_tuning(kSignature, key.spec.canonical(), key.batch_bucket).has_value());
  }
  CHECK(stored == timed.size());
  int measured_by_survivors = 0;
  for (int w = 1; w < kWorkers; ++w) {
    int measured = -1;
    std::ifstream(dir.file(fmt::format("measured{}", w))) >> measured;
    measured_by_survivors += measured;
  }
  CHECK(measured_by_survivors == int(timed.size()) - (kill_at - 1));  // the rest the killed one stored
  CHECK(run_worker(store_path, dir.file("log-after"), run_seed, 0) == 0);
}

}  // namespace glqjit
