// Catch2 checks the cache tests share (cache_fixtures.hpp stays free of Catch2: the stress
// writer process uses it too).
#pragma once

#include <catch2/catch.hpp>

#include <functional>
#include <string>
#include <vector>

#include "glqjit/error.hpp"

namespace glqjit::test {

// Runs action, which must throw Error(cache_error) whose message holds every one of words.
inline void require_cache_error(const std::function<void()>& action, const std::vector<std::string>& words) {
  try {
    action();
  } catch (const Error& error) {
    INFO("message: " << error.what());
    CHECK(error.status() == Status::cache_error);
    for (const auto& word : words) CHECK_THAT(error.what(), Catch::Contains(word));
    return;
  }
  FAIL("no Error was thrown");
}

}  // namespace glqjit::test
