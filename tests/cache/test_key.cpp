#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include "cache/key.hpp"
#include "cache_fixtures.hpp"
#include "support/sha256.hpp"

using namespace glqjit;

namespace {

KernelKey base_key() {
  KernelKey key;
  key.schema_version = 1;
  key.library_version = "0.1.0";
  key.source_hash = "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08";
  key.spec = "in=4096 out=11008 bpw=2 dtype=fp16 max_batch=16";
  key.variant = "tile_n=128 tile_k=256 stages=3 split_k=1";
  key.batch_bucket = 8;
  key.arch = "sm_90a";
  key.nvrtc_version = "13.0";
  key.options = "--std=c++17 --gpu-architecture=sm_90a -default-device";
  return key;
}

}  // namespace

TEST_CASE("key: changing any one part changes the digest", "[cache][key]") {
  const KernelKey base = base_key();
  const std::vector<std::pair<std::string, std::function<void(KernelKey&)>>> changes = {
      {"schema_version", [](KernelKey& k) { k.schema_version = 2; }},
      {"library_version", [](KernelKey& k) { k.library_version = "0.1.1"; }},
      {"source_hash", [](KernelKey& k) { k.source_hash[0] = 'a'; }},
      {"spec", [](KernelKey& k) { k.spec = "in=4096 out=11008 bpw=3 dtype=fp16 max_batch=16"; }},
      {"variant", [](KernelKey& k) { k.variant = "tile_n=64 tile_k=256 stages=3 split_k=1"; }},
      {"batch_bucket", [](KernelKey& k) { k.batch_bucket = 16; }},
      {"arch", [](KernelKey& k) { k.arch = "sm_90"; }},
      {"nvrtc_version", [](KernelKey& k) { k.nvrtc_version = "12.8"; }},
      {"options", [](KernelKey& k) { k.options += " -lineinfo"; }},
  };
  std::set<std::string> digests = {base.digest()};
  for (const auto& [part, change] : changes) {
    KernelKey changed = base;
    change(changed);
    INFO("part " << part);
    CHECK(changed.digest() != base.digest());
    CHECK(changed.canonical() != base.canonical());
    digests.insert(changed.digest());
  }
  CHECK(digests.size() == changes.size() + 1);  // no two changes collide either
}

TEST_CASE("key: equal parts give equal digests", "[cache][key]") {
  const KernelKey a = base_key();
  KernelKey b;  // built field by field, separately
  b.schema_version = 1;
  b.library_version = std::string("0.1") + ".0";
  b.source_hash = a.source_hash;
  b.spec = a.spec;
  b.variant = a.variant;
  b.batch_bucket = 8;
  b.arch = "sm_" + std::to_string(90) + "a";
  b.nvrtc_version = "13.0";
  b.options = a.options;
  CHECK(a.canonical() == b.canonical());
  CHECK(a.digest() == b.digest());
  CHECK(a.digest() == sha256_hex(a.canonical()));
  REQUIRE(a.digest().size() == 64);
  CHECK(a.digest().find_first_not_of("0123456789abcdef") == std::string::npos);
}

TEST_CASE("key: canonical text is fixed name=value lines of the parts only", "[cache][key]") {
  const KernelKey key = base_key();
  // The exact text is an on-disk contract: changing it invalidates every shipped store.
  const std::string expected =
      "schema_version=1\n"
      "library_version=0.1.0\n"
      "source_hash=9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n"
      "spec=in=4096 out=11008 bpw=2 dtype=fp16 max_batch=16\n"
      "variant=tile_n=128 tile_k=256 stages=3 split_k=1\n"
      "batch_bucket=8\n"
      "arch=sm_90a\n"
      "nvrtc_version=13.0\n"
      "options=--std=c++17 --gpu-architecture=sm_90a -default-device\n";
  CHECK(key.canonical() == expected);
  CHECK(key.digest() == sha256_hex(expected));

  // Nothing machine-local or time-dependent: no path, and the same text from another folder.
  const std::string text = key.canonical();
  CHECK(text.find('/') == std::string::npos);
  const auto cwd = std::filesystem::current_path();
  glqjit::test::TempDir dir;
  std::filesystem::current_path(dir.path());
  const std::string elsewhere = key.canonical();
  std::filesystem::current_path(cwd);
  CHECK(elsewhere == text);
  CHECK(text.find(cwd.string()) == std::string::npos);
  if (const char* home = std::getenv("HOME"); home != nullptr && std::string(home).size() > 1) {
    CHECK(text.find(home) == std::string::npos);
  }
}

TEST_CASE("key: a newline inside a part cannot forge another part", "[cache][key]") {
  KernelKey a = base_key();
  a.spec = "s";
  a.variant = "v";
  KernelKey b = a;
  b.spec = "s\nvariant=v";
  b.variant = "";
  CHECK(a.digest() != b.digest());
  const std::string text = b.canonical();
  CHECK(std::count(text.begin(), text.end(), '\n') == 9);
  KernelKey c = a;
  c.spec = "s\\nvariant=v";  // the escaped spelling of b's spec, typed literally
  c.variant = "";
  CHECK(c.digest() != b.digest());
}
