// One line to stderr per event worth telling: warnings, and (at the default level, info) a line
// before any compile that may take a while. GLQJIT_LOG=warn quiets the latter, debug adds detail.
#pragma once

#include <string_view>

namespace glqjit {

enum class LogLevel { warn = 0, info = 1, debug = 2 };

bool log_enabled(LogLevel level);
void log_line(LogLevel level, std::string_view message);

}  // namespace glqjit
