// Helpers of the codegen and runtime tests: temporary folders (temp_dir.hpp), "this call
// throws glqjit::Error with this status and a message containing these words", and environment
// variables set for a scope.
#pragma once

#include <catch2/catch.hpp>
#include <cstdlib>
#include <initializer_list>
#include <optional>
#include <string>

#include "glqjit/error.hpp"
#include "temp_dir.hpp"

namespace glqjit::test {

inline const char* status_name(Status status) {
  switch (status) {
    case Status::ok: return "ok";
    case Status::invalid_argument: return "invalid_argument";
    case Status::unsupported_shape: return "unsupported_shape";
    case Status::unsupported_arch: return "unsupported_arch";
    case Status::no_driver: return "no_driver";
    case Status::cuda_error: return "cuda_error";
    case Status::compile_error: return "compile_error";
    case Status::cache_error: return "cache_error";
    case Status::capture_in_progress: return "capture_in_progress";
    case Status::no_jit: return "no_jit";
    case Status::internal: return "internal";
  }
  return "?";
}

// What a call threw: its status and message, or nothing thrown.
struct Thrown {
  bool threw = false;
  bool was_glqjit_error = false;
  Status status = Status::ok;
  std::string message;
};

template <class F>
Thrown capture_error(F&& f) {
  Thrown t;
  try {
    f();
  } catch (const Error& e) {
    t.threw = t.was_glqjit_error = true;
    t.status = e.status();
    t.message = e.what();
  } catch (const std::exception& e) {
    t.threw = true;
    t.message = e.what();
  }
  return t;
}

// Sets (or, with nullopt, unsets) an environment variable for the scope and restores it after.
class ScopedEnvironment {
 public:
  ScopedEnvironment(const char* name, std::optional<std::string> value) : name_(name) {
    if (const char* old = std::getenv(name)) saved_ = old;
    set(value);
  }
  ~ScopedEnvironment() { set(saved_); }
  ScopedEnvironment(const ScopedEnvironment&) = delete;
  ScopedEnvironment& operator=(const ScopedEnvironment&) = delete;
  void set(const std::optional<std::string>& value) const {
    if (value) ::setenv(name_.c_str(), value->c_str(), 1);
    else ::unsetenv(name_.c_str());
  }

 private:
  std::string name_;
  std::optional<std::string> saved_;
};

}  // namespace glqjit::test

// Asserts that `expr` throws glqjit::Error with `expected_status` and that the message contains
// every word of the braced list.
#define GLQ_REQUIRE_ERROR(expr, expected_status, ...)                                                      \
  do {                                                                                                     \
    const ::glqjit::test::Thrown glq_thrown = ::glqjit::test::capture_error([&] { (void)(expr); });        \
    INFO("expression: " #expr);                                                                            \
    INFO("message: " << glq_thrown.message);                                                               \
    REQUIRE(glq_thrown.threw);                                                                             \
    REQUIRE(glq_thrown.was_glqjit_error);                                                                  \
    CHECK(::glqjit::test::status_name(glq_thrown.status) == std::string(::glqjit::test::status_name(expected_status))); \
    for (const std::string& glq_word : std::initializer_list<std::string>{__VA_ARGS__}) {                         \
      INFO("expected word: " << glq_word);                                                                 \
      CHECK(glq_thrown.message.find(glq_word) != std::string::npos);                                    \
    }                                                                                                      \
  } while (false)
