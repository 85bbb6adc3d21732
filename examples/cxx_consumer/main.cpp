// The smallest C++ program over the installed package: prints glqjit's version, then opens a
// glqjit::Runtime on GPU 0. Without a GPU (or driver) that throws glqjit::Error with
// Status::no_driver, a clean outcome too: it exits 0 either way and non-zero on any other failure.
#include <cstdio>

#include <glqjit/glqjit.hpp>

int main() {
  std::printf("glqjit %s\n", glqjit_version());
  try {
    const glqjit::Runtime runtime(0);
    std::printf("context on GPU 0\n");
  } catch (const glqjit::Error& error) {
    if (error.status() != glqjit::Status::no_driver) {
      std::fprintf(stderr, "glqjit::Runtime failed: %s\n", error.what());
      return 1;
    }
    std::printf("glqjit::Runtime: Status::no_driver: %s\n", error.what());
  }
  return 0;
}
