// Architectures: the names glqjit generates for, the compute-capability mapping, and the
// errors for GPUs that are too old or names it does not know.
#include <catch2/catch.hpp>

#include "codegen/arch.hpp"
#include "test_helpers.hpp"

using namespace glqjit;

TEST_CASE("every supported architecture parses back to itself", "[arch]") {
  REQUIRE(supported_archs().size() >= 6);
  for (const Arch& arch : supported_archs()) {
    INFO(arch.name());
    CHECK(parse_arch(arch.name()) == arch);
    CHECK(arch.major >= 8);
    CHECK(arch.max_shared_bytes_per_block() >= 99 * 1024);
    CHECK(arch.typical_sm_count() > 0);
  }
  // The six targets the tests compile for (DESIGN.md, Tests).
  for (const char* name : {"sm_80", "sm_86", "sm_89", "sm_90a", "sm_100a", "sm_120"}) {
    INFO(name);
    CHECK(parse_arch(name).name() == name);
  }
}

TEST_CASE("sm_90a and sm_90 are different targets", "[arch]") {
  const Arch a = parse_arch("sm_90a");
  const Arch plain = parse_arch("sm_90");
  CHECK(a.arch_specific);
  CHECK_FALSE(plain.arch_specific);
  CHECK_FALSE(a == plain);
  CHECK(a.name() != plain.name());
  CHECK(parse_arch("sm_100a").arch_specific);
  CHECK_FALSE(parse_arch("sm_120").arch_specific);
}

TEST_CASE("shared memory limits per architecture", "[arch]") {
  CHECK(parse_arch("sm_80").max_shared_bytes_per_block() == 163 * 1024);
  CHECK(parse_arch("sm_86").max_shared_bytes_per_block() == 99 * 1024);
  CHECK(parse_arch("sm_89").max_shared_bytes_per_block() == 99 * 1024);
  CHECK(parse_arch("sm_90a").max_shared_bytes_per_block() == 227 * 1024);
  CHECK(parse_arch("sm_100a").max_shared_bytes_per_block() == 227 * 1024);
  CHECK(parse_arch("sm_120").max_shared_bytes_per_block() == 99 * 1024);
}

TEST_CASE("compute capability maps to the best target", "[arch]") {
  CHECK(arch_for_compute_capability(8, 0).name() == "sm_80");
  CHECK(arch_for_compute_capability(8, 6).name() == "sm_86");
  CHECK(arch_for_compute_capability(8, 7).name() == "sm_86");  // Orin runs sm_86 cubins
  CHECK(arch_for_compute_capability(8, 9).name() == "sm_89");
  CHECK(arch_for_compute_capability(9, 0).name() == "sm_90a");
  CHECK(arch_for_compute_capability(10, 0).name() == "sm_100a");
  CHECK(arch_for_compute_capability(12, 0).name() == "sm_120");
  // Whatever it picks must be a target glqjit compiles for.
  for (auto [major, minor] : {std::pair{8, 0}, {8, 6}, {8, 7}, {8, 9}, {9, 0}, {9, 1}, {10, 0}, {10, 3}, {12, 0},
                              {12, 1}}) {
    INFO("compute capability " << major << "." << minor);
    CHECK_NOTHROW(parse_arch(arch_for_compute_capability(major, minor).name()));
  }
}

// An arch-specific ("a") cubin runs only on exactly that compute capability, and a cubin of
// major version X runs only on devices of major version X at the same or a higher minor. So
// 9.x and 10.x other than x.0 get the portable sm_90 / sm_100, every 12.x gets sm_120, and a
// major version glqjit has no target for (11, 13 and up) is an unsupported_arch error rather
// than a cubin that fails later at module load.
TEST_CASE("compute capabilities without a matching cubin target are not mapped to one", "[arch]") {
  CHECK(arch_for_compute_capability(9, 1).name() == "sm_90");
  CHECK(arch_for_compute_capability(9, 9).name() == "sm_90");
  CHECK(arch_for_compute_capability(10, 1).name() == "sm_100");
  CHECK(arch_for_compute_capability(10, 3).name() == "sm_100");  // B300
  CHECK(arch_for_compute_capability(12, 1).name() == "sm_120");
  CHECK(arch_for_compute_capability(12, 9).name() == "sm_120");
  // The general rule over a range of minors: same major, "a" only at exactly x.0, never a
  // higher minor than the device's.
  for (int major : {8, 9, 10, 12}) {
    for (int minor = 0; minor <= 9; ++minor) {
      INFO("compute capability " << major << "." << minor);
      const Arch arch = arch_for_compute_capability(major, minor);
      INFO("mapped to " << arch.name());
      CHECK(arch.major == major);
      CHECK(arch.minor <= minor);
      if (arch.arch_specific) CHECK(arch.minor == minor);
    }
  }
  for (auto [major, minor] : {std::pair{11, 0}, {11, 2}, {13, 0}, {14, 0}, {20, 5}}) {
    const std::string capability = std::to_string(major) + "." + std::to_string(minor);
    INFO("compute capability " << capability);
    GLQ_REQUIRE_ERROR(arch_for_compute_capability(major, minor), Status::unsupported_arch, capability.c_str(),
                      "sm_120");
  }
}

TEST_CASE("old and unknown architectures are unsupported_arch errors naming the supported ones", "[arch][errors]") {
  GLQ_REQUIRE_ERROR(parse_arch("sm_75"), Status::unsupported_arch, "sm_75", "sm_80", "sm_90a", "8.0");
  GLQ_REQUIRE_ERROR(parse_arch("sm_70"), Status::unsupported_arch, "sm_70", "sm_120");
  GLQ_REQUIRE_ERROR(parse_arch("garbage"), Status::unsupported_arch, "garbage", "sm_80");
  GLQ_REQUIRE_ERROR(parse_arch(""), Status::unsupported_arch, "sm_80");
  GLQ_REQUIRE_ERROR(parse_arch("SM_90A"), Status::unsupported_arch, "SM_90A");
  GLQ_REQUIRE_ERROR(parse_arch("sm_90ab"), Status::unsupported_arch, "sm_90ab");
  GLQ_REQUIRE_ERROR(arch_for_compute_capability(7, 5), Status::unsupported_arch, "7.5", "8.0");
  GLQ_REQUIRE_ERROR(arch_for_compute_capability(6, 1), Status::unsupported_arch, "6.1");
}

TEST_CASE("an SM fits the CTAs whose shared memory, plus 1 KB each, its capacity holds", "[arch]") {
  for (const Arch& arch : supported_archs()) {
    INFO(arch.name());
    const unsigned most = unsigned(arch.max_shared_bytes_per_block());
    CHECK(arch.ctas_fitting_shared_memory(most) == 1);
    CHECK(arch.ctas_fitting_shared_memory(most + 1) == 0);
    // Two CTAs fit while 2 x (bytes + 1 KB) <= most + 1 KB.
    const unsigned half = (most + 1024) / 2 - 1024;
    CHECK(arch.ctas_fitting_shared_memory(half) == 2);
    CHECK(arch.ctas_fitting_shared_memory(half + 1) == 1);
  }
  CHECK(parse_arch("sm_90a").ctas_fitting_shared_memory(106496) == 2);  // family 3 at 2 bpw, two per SM
  CHECK(parse_arch("sm_90a").ctas_fitting_shared_memory(131072) == 1);
}
