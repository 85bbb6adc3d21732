// The GPU suite's main: without a usable driver it prints why and exits 77, which ctest
// reports as skipped; with one it runs Catch2 (the correctness tests fill the store for their
// cases in parallel before they start).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <cstdio>

#include "glqjit/error.hpp"
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
  return Catch::Session().run(argc, argv);
}
