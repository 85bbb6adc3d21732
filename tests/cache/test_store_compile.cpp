// The store around NVRTC compiles (issue 13, findings 5 and 6): a store write that fails (a full
// disk) still returns the compile, with one warning; processes and threads that miss the same
// kernel at once compile it once, through the compile lock beside the store; a holder killed
// mid-compile blocks nobody, and one that hangs is waited for only until the timeout.
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>
#include <vector>

#include "cache/key_lock.hpp"
#include "cache_fixtures.hpp"
#include "child_process.hpp"
#include "codegen/variant_space.hpp"
#include "runtime/kernel_binary.hpp"

using namespace glqjit;
using namespace glqjit::test;

namespace {

using Clock = std::chrono::steady_clock;

// A small layer: one kernel set compiles in a few seconds.
const LinearSpec kSpec{64, 16, 8};
constexpr const char* kArch = "sm_120";

GeneratedKernel kernel_set(int bucket) {
  const Arch arch = parse_arch(kArch);
  return generate_kernel(kSpec, default_variant(kSpec, bucket, arch, arch.typical_sm_count()), bucket, arch);
}

std::string digest_of(int bucket) { return make_kernel_key(kernel_set(bucket)).digest(); }

size_t count_of(const std::string& text, const std::string& part) {
  size_t count = 0;
  for (size_t at = text.find(part); at != std::string::npos; at = text.find(part, at + 1)) ++count;
  return count;
}

// One glq-dump process asking for kernel_set(1) from the store at path, its stdout and stderr in
// files of dir named after it.
class Dump {
 public:
  Dump(const TempDir& dir, const std::string& path, const std::string& name, const std::vector<std::string>& env = {})
      : out_(dir.file(name + ".json")), err_(dir.file(name + ".log")) {
    const int out = ::open(out_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    const int err = ::open(err_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    REQUIRE((out >= 0 && err >= 0));
    pid_ = spawn_child({GLQJIT_TEST_GLQ_DUMP, "kernel", "--in-features", "64", "--out-features", "16", "--bpw", "8",
                        "--batch", "1", "--arch", kArch, "--emit", "info", "--json", "--cache", path},
                       -1, out, err, env);
    ::close(out);
    ::close(err);
  }
  ~Dump() {
    if (pid_ != 0) ::kill(pid_, SIGKILL), ::waitpid(pid_, nullptr, 0);
  }
  Dump(const Dump&) = delete;
  Dump& operator=(const Dump&) = delete;

  pid_t pid() const { return pid_; }
  // Its wait status, once it ended.
  int wait() {
    int status = 0;
    ::waitpid(pid_, &status, 0);
    pid_ = 0;
    return status;
  }
  // After a successful wait: whether it compiled the kernel (else it found it in the store).
  bool compiled() const {
    const nlohmann::json info = nlohmann::json::parse(read_bytes(out_));
    CHECK(info.at("key_digest") == digest_of(1));
    return !info.at("from_store").get<bool>();
  }
  std::string log() const { return read_bytes(err_); }

 private:
  std::string out_, err_;
  pid_t pid_ = 0;
};

int compiled_count(std::vector<std::unique_ptr<Dump>>& fleet) {
  int compiled = 0;
  for (auto& dump : fleet) {
    const int status = dump->wait();
    INFO("glq-dump stderr: " << dump->log());
    REQUIRE(WIFEXITED(status));
    REQUIRE(WEXITSTATUS(status) == 0);
    compiled += dump->compiled();
  }
  return compiled;
}

// Polls until some process holds the compile lock of digest in the store at path.
bool wait_until_held(const std::string& path, const std::string& digest, std::chrono::seconds limit) {
  const auto deadline = Clock::now() + limit;
  while (Clock::now() < deadline) {
    if (KeyLock(KeyLockKind::compile, path, digest, std::chrono::milliseconds(0)).outcome() == KeyLock::Outcome::timed_out) {
      return true;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return false;
}

}  // namespace

TEST_CASE("key lock: two holders in one process exclude each other, other keys and kinds do not wait", "[cache][lock]") {
  TempDir dir;
  const std::string path = dir.file("store.db");
  { Store create(StoreOptions{path, false}); }
  const KeyLock first(KeyLockKind::compile, path, "digest-a", std::chrono::milliseconds(0));
  REQUIRE(first.outcome() == KeyLock::Outcome::held);
  // Per open file description, not per process (as plain fcntl locks are): the compile threads of
  // one process wait for each other too.
  const auto start = Clock::now();
  const KeyLock second(KeyLockKind::compile, path, "digest-a", std::chrono::milliseconds(200));
  CHECK(second.outcome() == KeyLock::Outcome::timed_out);
  CHECK(Clock::now() - start >= std::chrono::milliseconds(200));
  CHECK(second.waited() >= std::chrono::milliseconds(200));
  CHECK(KeyLock(KeyLockKind::compile, path, "digest-b", std::chrono::milliseconds(0)).outcome() == KeyLock::Outcome::held);
  CHECK(first.file() == path + "-compile-lock");
  // A tune claim of the same digest is another lock, in a file of its own.
  const KeyLock claim(KeyLockKind::tune, path, "digest-a", std::chrono::milliseconds(0));
  CHECK(claim.outcome() == KeyLock::Outcome::held);
  CHECK(claim.file() == path + "-tune-lock");
  // Without a folder to hold the lock file there is nothing to coordinate with.
  CHECK(KeyLock(KeyLockKind::compile, dir.file("missing/store.db"), "digest-a", std::chrono::milliseconds(0)).outcome() ==
        KeyLock::Outcome::unavailable);
}

TEST_CASE("a store write that fails returns the compiled kernel with one warning naming the store and why",
          "[cache][store][compile]") {
  TempDir dir;
  const std::string path = dir.file("full.db");
  Store store(StoreOptions{path, false});
  // A file size limit just above the store's files: the next write past it fails, as on a full
  // disk (sqlite reports SQLITE_FULL or SQLITE_IOERR_WRITE), and fails only the store's writes.
  const auto size_of = [](const std::string& file) -> uintmax_t {
    std::error_code missing;
    const uintmax_t size = std::filesystem::file_size(file, missing);
    return missing ? 0 : size;
  };
  const uintmax_t largest = std::max(size_of(path), size_of(path + "-wal"));
  rlimit saved{};
  REQUIRE(::getrlimit(RLIMIT_FSIZE, &saved) == 0);
  rlimit tight = saved;
  tight.rlim_cur = largest + 8192;
  const auto previous = ::signal(SIGXFSZ, SIG_IGN);  // the write fails with EFBIG instead of killing the test
  StderrCapture capture(dir.file("stderr.log"));
  REQUIRE(::setrlimit(RLIMIT_FSIZE, &tight) == 0);
  std::vector<KernelBinary> binaries;
  try {
    std::vector<GeneratedKernel> sets;
    sets.push_back(kernel_set(1));
    binaries = obtain_kernels(&store, std::move(sets), {});
  } catch (...) {
    ::setrlimit(RLIMIT_FSIZE, &saved);
    ::signal(SIGXFSZ, previous);
    throw;
  }
  ::setrlimit(RLIMIT_FSIZE, &saved);
  ::signal(SIGXFSZ, previous);
  const std::string log = capture.finish();
  INFO("stderr: " << log);

  REQUIRE(binaries.size() == 1);
  CHECK_FALSE(binaries[0].from_store);
  CHECK(binaries[0].compiled.cubin.size() > tight.rlim_cur);
  CHECK(count_of(log, "glqjit warning") == 1);
  CHECK(count_of(log, "1 compiled kernel set(s) are used without being stored, so they are compiled again next "
                      "time: cache store " + path + ": storing a kernel failed: sqlite: ") == 1);
  CHECK_FALSE(store.find_kernel(binaries[0].key.digest()).has_value());
  // With room again the same store takes it: nothing was left half written.
  store.put_kernel(binaries[0].compiled);
  CHECK(store.find_kernel(binaries[0].key.digest()).has_value());
  CHECK(sqlite_scalar(path, "PRAGMA integrity_check") == "ok");
}

TEST_CASE("threads of one process that miss the same kernel compile it once", "[cache][store][compile]") {
  TempDir dir;
  const std::string path = dir.file("store.db");
  // Two Stores on one file, as two contexts of a serving process have.
  Store one(StoreOptions{path, false});
  Store other(StoreOptions{path, false});
  std::vector<KernelBinary> got[2];
  const auto obtain = [&](Store& store, std::vector<KernelBinary>& into) {
    std::vector<GeneratedKernel> sets;
    sets.push_back(kernel_set(1));
    into = obtain_kernels(&store, std::move(sets), {});
  };
  std::thread first(obtain, std::ref(one), std::ref(got[0]));
  obtain(other, got[1]);
  first.join();
  REQUIRE(got[0].size() == 1);
  REQUIRE(got[1].size() == 1);
  CHECK(got[0][0].from_store + got[1][0].from_store == 1);
  CHECK(got[0][0].compiled.cubin == got[1][0].compiled.cubin);
}

TEST_CASE("eight processes that miss the same kernel at once compile it once", "[cache][store][compile]") {
  TempDir dir;
  const std::string path = dir.file("fleet.db");
  { Store create(StoreOptions{path, false}); }  // a cold store
  std::vector<std::unique_ptr<Dump>> fleet;
  for (int i = 0; i < 8; ++i) fleet.push_back(std::make_unique<Dump>(dir, path, "member-" + std::to_string(i)));
  CHECK(compiled_count(fleet) == 1);
}

TEST_CASE("a compile lock holder killed mid-compile blocks nobody", "[cache][store][compile]") {
  TempDir dir;
  const std::string path = dir.file("fleet.db");
  { Store create(StoreOptions{path, false}); }
  Dump holder(dir, path, "holder");
  REQUIRE(wait_until_held(path, digest_of(1), std::chrono::seconds(60)));
  // Waiters with the default timeout (120 s) that start while it compiles.
  std::vector<std::unique_ptr<Dump>> waiters;
  for (int i = 0; i < 4; ++i) waiters.push_back(std::make_unique<Dump>(dir, path, "waiter-" + std::to_string(i)));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // well inside the second or more NVRTC takes
  REQUIRE(::kill(holder.pid(), SIGKILL) == 0);
  const auto killed = Clock::now();
  const int status = holder.wait();
  REQUIRE(WIFSIGNALED(status));  // still compiling when it was killed
  CHECK(compiled_count(waiters) == 1);
  CHECK(Clock::now() - killed < std::chrono::seconds(60));
}

TEST_CASE("a compile lock holder that hangs is waited for only until the timeout", "[cache][store][compile]") {
  TempDir dir;
  const std::string path = dir.file("fleet.db");
  { Store create(StoreOptions{path, false}); }
  const KeyLock hung(KeyLockKind::compile, path, digest_of(1), std::chrono::milliseconds(0));  // held here, never released
  REQUIRE(hung.outcome() == KeyLock::Outcome::held);
  const auto start = Clock::now();
  std::vector<std::unique_ptr<Dump>> fleet;
  for (int i = 0; i < 2; ++i) {
    fleet.push_back(
        std::make_unique<Dump>(dir, path, "member-" + std::to_string(i), std::vector<std::string>{"GLQJIT_COMPILE_LOCK_TIMEOUT=1"}));
  }
  CHECK(compiled_count(fleet) == 2);
  CHECK(Clock::now() - start >= std::chrono::seconds(1));
  for (const auto& dump : fleet) {
    const std::string log = dump->log();
    INFO("glq-dump stderr: " << log);
    CHECK(count_of(log, "glqjit warning: cache store " + path + ": waited 1 s for another process compiling kernel set " +
                            digest_of(1)) == 1);
    CHECK(count_of(log, "which holds " + path + "-compile-lock; compiling it here too") == 1);
  }
}
