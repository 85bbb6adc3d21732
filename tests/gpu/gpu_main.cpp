// The GPU suite's main: without a usable driver it prints why and exits 77, which ctest
// reports as skipped; with one it fills the store for every case first (in parallel; skip with
// --no-prewarm when running a few tests), then runs Catch2.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>
#include <cstring>

#include "glqjit/error.hpp"
#include "gpu_cases.hpp"
#include "gpu_support.hpp"

int main(int argc, char** argv) {
  try {
    glqjit::test::context();
  } catch (const glqjit::Error& error) {
    std::printf("SKIPPED: the GPU tests need a CUDA device: %s\n", error.what());
    return 77;
  }
  const auto& device = glqjit::test::context().device();
  std::printf("GPU: %s, %s, %d SMs\n", device.name.c_str(), device.arch.name().c_str(), device.sm_count);
  if (argc > 1 && std::strcmp(argv[1], "--no-prewarm") == 0) {
    argv[1] = argv[0];
    return Catch::Session().run(argc - 1, argv + 1);
  }
  std::vector<glqjit::test::LayerCase> cases = glqjit::test::correctness_cases();
  for (auto& c : glqjit::test::wgmma_cases()) cases.push_back(std::move(c));
  glqjit::test::prewarm_store(cases);
  return Catch::Session().run(argc, argv);
}
