// What every fuzz target asserts beyond "no crash, no sanitizer report": a parser answers a bad
// input with glqjit::Error carrying a message, never with another exception type, and the
// properties each target states hold. A broken property aborts, so libFuzzer keeps the input.
// Messages go to stdout: the store targets run with -close_fd_mask=2 to drop the store's warnings.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <string_view>

#include "glqjit/error.hpp"

namespace glqjit::fuzz {

[[noreturn]] inline void fail(std::string_view what) {
  std::printf("fuzz property broken: %.*s\n", static_cast<int>(what.size()), what.data());
  std::fflush(stdout);
  std::abort();
}

inline void check(bool holds, std::string_view what) {
  if (!holds) fail(what);
}

// Runs parse(); true when it returned, false when it threw a glqjit::Error with a message.
// Any other exception breaks the property.
template <class Parse>
bool parses(Parse&& parse) {
  try {
    parse();
    return true;
  } catch (const Error& error) {
    check(error.what()[0] != '\0', "a glqjit::Error without a message");
    return false;
  } catch (const std::exception& error) {
    fail(std::string("an exception other than glqjit::Error escaped: ") + error.what());
  } catch (...) {
    fail("a non-std::exception escaped");
  }
}

inline std::string_view as_text(const uint8_t* data, size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

}  // namespace glqjit::fuzz
