// A kernel whose bytes changed on disk after it was stored is never served: the store checks
// each cubin against the SHA-256 it was stored with, and drops a row that does not match.
#include <algorithm>
#include <catch2/catch.hpp>
#include <random>
#include <string>
#include <vector>

#include "cache_fixtures.hpp"

using namespace glqjit;
using namespace glqjit::test;

namespace {

// Stores kernel and one neighbour in a closed store at path.
void store_two(const std::string& path, const CompiledKernel& kernel, const CompiledKernel& neighbour) {
  Store store(StoreOptions{path, false});
  store.put_kernel(kernel);
  store.put_kernel(neighbour);
}

}  // namespace

TEST_CASE("integrity: a cubin overwritten in place is not served and its row is deleted", "[cache][store][integrity]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  TempDir dir;
  const std::string path = dir.file("glqjit.db");
  const CompiledKernel kernel = random_kernel(random, "sm_90a");
  const CompiledKernel neighbour = random_kernel(random, "sm_90a");
  store_two(path, kernel, neighbour);
  // Same length, one byte flipped, hash column untouched: what a bad sector or a stray write does.
  std::vector<uint8_t> changed = kernel.cubin;
  changed[random() % changed.size()] ^= 0x5A;
  std::string hex;
  for (const uint8_t byte : changed) hex += fmt::format("{:02x}", byte);
  sqlite_scalar(path, "UPDATE kernels SET cubin = x'" + hex + "' WHERE key_digest = '" + kernel.key_digest + "'");
  REQUIRE(sqlite_scalar(path, "SELECT length(cubin) FROM kernels WHERE key_digest = '" + kernel.key_digest + "'") ==
          std::to_string(kernel.cubin.size()));

  {
    // Read-only first: not served, and the row stays since the store may not write.
    Store store(StoreOptions{path, true});
    StderrCapture capture(dir.file("stderr-ro.txt"));
    CHECK_FALSE(store.find_kernel(kernel.key_digest).has_value());
    const std::string log = capture.finish();
    CHECK_THAT(log, Catch::Contains(path) && Catch::Contains(kernel.key_digest) && Catch::Contains("SHA-256") &&
                        Catch::Contains("read-only"));
  }
  CHECK(sqlite_scalar(path, "SELECT count(*) FROM kernels") == "2");

  Store store(StoreOptions{path, false});
  int listed = 0;
  {
    StderrCapture capture(dir.file("stderr-list.txt"));
    store.for_each_kernel([&](const CompiledKernel& k) {
      ++listed;
      CHECK(k.key_digest == neighbour.key_digest);
    });
    CHECK_THAT(capture.finish(), Catch::Contains(kernel.key_digest) && Catch::Contains("skipped"));
  }
  CHECK(listed == 1);
  StderrCapture capture(dir.file("stderr.txt"));
  CHECK_FALSE(store.find_kernel(kernel.key_digest).has_value());
  const std::string log = capture.finish();
  INFO("stderr: " << log);
  CHECK_THAT(log, Catch::Contains("glqjit warning") && Catch::Contains(path) && Catch::Contains(kernel.key_digest) &&
                      Catch::Contains("deleted"));
  CHECK(sqlite_scalar(path, "SELECT count(*) FROM kernels WHERE key_digest = '" + kernel.key_digest + "'") == "0");
  const auto kept = store.find_kernel(neighbour.key_digest);
  REQUIRE(kept.has_value());
  CHECK(same_kernel(*kept, neighbour));
  // The caller compiles it again and stores it; that row is served.
  store.put_kernel(kernel);
  const auto again = store.find_kernel(kernel.key_digest);
  REQUIRE(again.has_value());
  CHECK(same_kernel(*again, kernel));
}

TEST_CASE("integrity: bytes flipped in the file itself are caught", "[cache][store][integrity]") {
  const uint64_t seed = std::random_device{}();
  INFO("seed " << seed);
  std::mt19937_64 random(seed);
  TempDir dir;
  const std::string path = dir.file("glqjit.db");
  CompiledKernel kernel = random_kernel(random, "sm_120");
  kernel.cubin.resize(200 + random() % 1800);  // small enough to lie in one page, in one piece
  for (uint8_t& byte : kernel.cubin) byte = static_cast<uint8_t>(random());
  const CompiledKernel neighbour = random_kernel(random, "sm_120");
  store_two(path, kernel, neighbour);
  REQUIRE_FALSE(std::filesystem::exists(path + "-wal"));  // closed: every byte is in the file

  // Find a run of the cubin in the file and flip one byte of it, under sqlite's feet.
  std::string bytes = read_bytes(path);
  const size_t run = std::min<size_t>(kernel.cubin.size(), 24);
  const size_t offset = random() % (kernel.cubin.size() - run + 1);
  const std::string needle(reinterpret_cast<const char*>(kernel.cubin.data()) + offset, run);
  const size_t found = bytes.find(needle);
  REQUIRE(found != std::string::npos);
  bytes[found + run / 2] = static_cast<char>(bytes[found + run / 2] ^ 0x01);
  std::ofstream(path, std::ios::binary | std::ios::trunc)
      .write(bytes.data(), static_cast<std::streamsize>(bytes.size()));

  Store store(StoreOptions{path, false});
  StderrCapture capture(dir.file("stderr.txt"));
  CHECK_FALSE(store.find_kernel(kernel.key_digest).has_value());
  CHECK_THAT(capture.finish(), Catch::Contains(kernel.key_digest));
  CHECK(sqlite_scalar(path, "SELECT count(*) FROM kernels") == "1");
  const auto kept = store.find_kernel(neighbour.key_digest);
  REQUIRE(kept.has_value());
  CHECK(same_kernel(*kept, neighbour));
}
