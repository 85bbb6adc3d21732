#include <catch2/catch.hpp>
#include <cstdlib>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "cache_fixtures.hpp"
#include "glqjit/error.hpp"

using namespace glqjit;
using namespace glqjit::test;

TEST_CASE("store: kernels round trip byte for byte", "[cache][store]") {
  TempDir dir;
  const std::string path = dir.file("nested/folder/glqjit.db");  // folders are created
  CompiledKernel kernel = sample_kernel("round-trip", 4099);
  kernel.cubin[0] = 0;
  kernel.cubin[4098] = 0;
  kernel.ptx = std::string("with\0nul", 8);
  CompiledKernel empty = sample_kernel("empty-cubin");
  empty.cubin.clear();
  empty.ptx.clear();
  {
    Store store(StoreOptions{path, false});
    CHECK(store.path() == path);
    CHECK_FALSE(store.read_only());
    CHECK_FALSE(store.find_kernel(kernel.key_digest).has_value());
    store.put_kernel(kernel);
    store.put_kernel(empty);
    const auto back = store.find_kernel(kernel.key_digest);
    REQUIRE(back.has_value());
    CHECK(back->cubin == kernel.cubin);
    CHECK(same_kernel(*back, kernel));
  }
  // Reopened, and through sqlite itself: the schema version, WAL and the rows are on disk.
  CHECK(sqlite_scalar(path, "PRAGMA user_version") == std::to_string(kStoreSchemaVersion));
  CHECK(sqlite_scalar(path, "PRAGMA journal_mode") == "wal");
  CHECK(sqlite_scalar(path, "SELECT count(*) FROM kernels") == "2");
  CHECK(sqlite_scalar(path, "SELECT typeof(cubin) FROM kernels WHERE cubin = x''") == "blob");
  Store reopened(StoreOptions{path, true});
  CHECK(reopened.read_only());
  const auto back = reopened.find_kernel(kernel.key_digest);
  REQUIRE(back.has_value());
  CHECK(same_kernel(*back, kernel));
  const auto back_empty = reopened.find_kernel(empty.key_digest);
  REQUIRE(back_empty.has_value());
  CHECK(back_empty->cubin.empty());
  CHECK(same_kernel(*back_empty, empty));
}

TEST_CASE("store: the first kernel stored under a key wins", "[cache][store]") {
  TempDir dir;
  Store store(StoreOptions{dir.file("glqjit.db"), false});
  const CompiledKernel first = sample_kernel("same-key");
  CompiledKernel second = first;
  second.cubin.assign(100, 0xAB);
  second.registers = first.registers + 1;
  store.put_kernel(first);
  store.put_kernel(second);  // no throw, no replace
  const auto back = store.find_kernel(first.key_digest);
  REQUIRE(back.has_value());
  CHECK(same_kernel(*back, first));
  CHECK(sqlite_scalar(store.path(), "SELECT count(*) FROM kernels") == "1");
}

TEST_CASE("store: tuning records round trip and upsert by (device, spec, bucket)", "[cache][store]") {
  TempDir dir;
  Store store(StoreOptions{dir.file("glqjit.db"), false});
  CHECK(store.all_tuning().empty());
  const TuningRecord a = sample_tuning("spec-a", 4, "variant-1");
  store.put_tuning(a);
  auto back = store.find_tuning(a.device_signature, a.spec, a.batch_bucket);
  REQUIRE(back.has_value());
  CHECK(back->variant == "variant-1");
  CHECK(back->time_us == a.time_us);
  CHECK(back->details == a.details);
  CHECK_FALSE(store.find_tuning(a.device_signature, a.spec, 8).has_value());
  CHECK_FALSE(store.find_tuning("another GPU", a.spec, 4).has_value());

  TuningRecord better = a;
  better.variant = "variant-2";
  better.time_us = 3.25;
  better.details = R"({"winner":"variant-2"})";
  store.put_tuning(better);
  back = store.find_tuning(a.device_signature, a.spec, a.batch_bucket);
  REQUIRE(back.has_value());
  CHECK(back->variant == "variant-2");
  CHECK(back->time_us == 3.25);
  CHECK(back->details == better.details);

  store.put_tuning(sample_tuning("spec-a", 1, "variant-3"));
  store.put_tuning(sample_tuning("spec-0", 4, "variant-4"));
  const std::vector<TuningRecord> all = store.all_tuning();
  REQUIRE(all.size() == 3);
  CHECK(all[0].spec == "spec-0");
  CHECK(all[1].spec == "spec-a");
  CHECK(all[1].batch_bucket == 1);
  CHECK(all[2].batch_bucket == 4);
  CHECK(all[2].variant == "variant-2");
}

TEST_CASE("store: one Store shared by several threads", "[cache][store]") {
  TempDir dir;
  Store store(StoreOptions{dir.file("glqjit.db"), false});
  constexpr int kThreads = 4;
  constexpr int kEach = 40;
  std::vector<std::thread> threads;
  std::vector<int> misses(kThreads, 0);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        const CompiledKernel kernel = sample_kernel(unique_kernel_name(t, i), 500);
        store.put_kernel(kernel);
        store.put_kernel(sample_kernel(shared_kernel_name(i), 500));
        store.put_tuning(sample_tuning(unique_tuning_spec(t, i), 2, writer_variant(t)));
        const auto back = store.find_kernel(kernel.key_digest);
        if (!back || !same_kernel(*back, kernel)) ++misses[t];
      }
    });
  }
  for (auto& thread : threads) thread.join();
  for (int t = 0; t < kThreads; ++t) CHECK(misses[t] == 0);
  CHECK(sqlite_scalar(store.path(), "SELECT count(*) FROM kernels") == std::to_string(kThreads * kEach + kEach));
  CHECK(store.all_tuning().size() == kThreads * kEach);
}

namespace {

// Sets or unsets one environment variable for a scope.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value == nullptr) {
      ::unsetenv(name);
    } else {
      ::setenv(name, value, 1);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

}  // namespace

TEST_CASE("store: default path follows GLQJIT_CACHE, XDG_CACHE_HOME, HOME", "[cache][store]") {
  ScopedEnv home("HOME", "/home/someone");
  {
    ScopedEnv cache("GLQJIT_CACHE", "/srv/models/kernels.db");
    ScopedEnv xdg("XDG_CACHE_HOME", "/xdg");
    CHECK(default_store_path() == "/srv/models/kernels.db");
  }
  {
    ScopedEnv cache("GLQJIT_CACHE", nullptr);
    ScopedEnv xdg("XDG_CACHE_HOME", "/xdg");
    CHECK(default_store_path() == "/xdg/glqjit/glqjit.db");
  }
  {
    ScopedEnv cache("GLQJIT_CACHE", "");
    ScopedEnv xdg("XDG_CACHE_HOME", "relative/is/ignored");
    CHECK(default_store_path() == "/home/someone/.cache/glqjit/glqjit.db");
  }
  {
    ScopedEnv cache("GLQJIT_CACHE", nullptr);
    ScopedEnv xdg("XDG_CACHE_HOME", nullptr);
    ScopedEnv no_home("HOME", nullptr);
    try {
      default_store_path();
      FAIL("default_store_path() returned without any variable set");
    } catch (const Error& error) {
      CHECK(error.status() == Status::cache_error);
      CHECK_THAT(error.what(), Catch::Contains("GLQJIT_CACHE"));
    }
  }
  {
    TempDir dir;
    ScopedEnv cache("GLQJIT_CACHE", dir.file("from-env.db").c_str());
    Store store(StoreOptions{});
    CHECK(store.path() == dir.file("from-env.db"));
    CHECK(std::filesystem::exists(dir.file("from-env.db")));
  }
}
