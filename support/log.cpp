#include "support/log.hpp"

#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <string>

namespace glqjit {
namespace {

// An unknown value is said once, not ignored: GLQJIT_LOG=loud would otherwise look like it worked.
LogLevel level_from_environment() {
  const char* value = std::getenv("GLQJIT_LOG");
  if (value == nullptr) return LogLevel::info;
  const std::string text = value;
  if (text == "debug") return LogLevel::debug;
  if (text == "warn") return LogLevel::warn;
  if (text != "info") {
    std::fprintf(stderr, "glqjit warning: GLQJIT_LOG=%s is not warn, info or debug; logging at info\n", value);
  }
  return LogLevel::info;
}

}  // namespace

bool log_enabled(LogLevel level) {
  static const LogLevel threshold = level_from_environment();
  return static_cast<int>(level) <= static_cast<int>(threshold);
}

void log_line(LogLevel level, std::string_view message) {
  if (!log_enabled(level)) return;
  static std::mutex mutex;
  static constexpr const char* kNames[] = {"warning", "info", "debug"};
  std::lock_guard lock(mutex);
  std::fprintf(stderr, "glqjit %s: %.*s\n", kNames[static_cast<int>(level)],
               static_cast<int>(message.size()), message.data());
}

}  // namespace glqjit
