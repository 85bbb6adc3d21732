// The header-only C++ API (include/glqjit/glqjit.hpp) over libglqjit.so: failures of the C ABI
// come back as glqjit::Error with the C status and message. Links only the shared library.
#include <dlfcn.h>

#include <catch2/catch.hpp>
#include <string>
#include <type_traits>

#include "glqjit/glqjit.hpp"

namespace {

bool libcuda_starts() {
  void* library = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (library == nullptr) return false;
  auto init = reinterpret_cast<int (*)(unsigned)>(dlsym(library, "cuInit"));
  return init != nullptr && init(0) == 0;
}

}  // namespace

TEST_CASE("throw_on_error maps every C status to an Error with the thread's message", "[cxx_api]") {
  CHECK_NOTHROW(glqjit::throw_on_error(GLQJIT_OK));
  // Make a message: a null linear.
  REQUIRE(glqjit_linear_forward(nullptr, nullptr, nullptr, 1, nullptr) == GLQJIT_INVALID_ARGUMENT);
  const std::string message = glqjit_last_error();
  REQUIRE_FALSE(message.empty());
  for (glqjit_status status : {GLQJIT_INVALID_ARGUMENT, GLQJIT_UNSUPPORTED_SHAPE, GLQJIT_NO_DRIVER, GLQJIT_NO_JIT,
                               GLQJIT_INTERNAL}) {
    try {
      glqjit::throw_on_error(status);
      FAIL("no exception for status " << int(status));
    } catch (const glqjit::Error& e) {
      CHECK(int(e.status()) == int(status));
      CHECK(e.what() == message);
    }
  }
}

TEST_CASE("Runtime without a driver throws Error(no_driver)", "[cxx_api]") {
  if (libcuda_starts()) {
    WARN("a CUDA driver is present: checking that Runtime opens instead");
    glqjit::Runtime runtime;
    CHECK(runtime.get() != nullptr);
    return;
  }
  try {
    glqjit::Runtime runtime(0);
    FAIL("Runtime opened without a driver");
  } catch (const glqjit::Error& e) {
    CHECK(e.status() == glqjit::Status::no_driver);
    CHECK(std::string(e.what()).find("CUDA driver") != std::string::npos);
  }
}

TEST_CASE("moved-from and default wrappers destroy nothing twice", "[cxx_api]") {
  // A Runtime cannot be made without a driver, but moving and destroying empty handles must
  // be safe: the C destroys accept NULL.
  glqjit_context_destroy(nullptr);
  glqjit_linear_destroy(nullptr);
  glqjit_linear_group_destroy(nullptr);
  glqjit_graph_destroy(nullptr);
  SUCCEED();
  CHECK(glqjit_graph_launch(nullptr, nullptr) == GLQJIT_INVALID_ARGUMENT);
  CHECK(std::string(glqjit_last_error()).find("graph") != std::string::npos);
}

TEST_CASE("QuantizedLinearGroup is move-only, like QuantizedLinear", "[cxx_api]") {
  STATIC_REQUIRE_FALSE(std::is_copy_constructible_v<glqjit::QuantizedLinearGroup>);
  STATIC_REQUIRE_FALSE(std::is_copy_assignable_v<glqjit::QuantizedLinearGroup>);
  STATIC_REQUIRE(std::is_nothrow_move_constructible_v<glqjit::QuantizedLinearGroup>);
  STATIC_REQUIRE(std::is_nothrow_move_assignable_v<glqjit::QuantizedLinearGroup>);
  STATIC_REQUIRE(std::is_constructible_v<glqjit::QuantizedLinearGroup, const glqjit::Runtime&,
                                         std::span<const glqjit_linear_desc>, std::span<const glqjit_linear_weights>>);
  STATIC_REQUIRE(std::is_constructible_v<glqjit::QuantizedLinearGroup, const glqjit::Runtime&, int,
                                         const glqjit_linear_desc*, const glqjit_linear_weights*>);
  // Without a Runtime no group can be made; a null group fails in the C ABI with its message.
  CHECK(glqjit_linear_group_forward(nullptr, nullptr, nullptr, 1, nullptr) == GLQJIT_INVALID_ARGUMENT);
  CHECK(std::string(glqjit_last_error()).find("group") != std::string::npos);
}
