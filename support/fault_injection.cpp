#include "support/fault_injection.hpp"

#include <array>
#include <charconv>
#include <cstdint>
#include <cstdlib>
#include <mutex>
#include <string>
#include <string_view>

#include "support/log.hpp"

namespace glqjit {
namespace {

constexpr std::array<std::string_view, 3> kPointNames = {"nvrtc_compile", "module_load", "device_alloc"};
constexpr int kNever = 0;

struct Plan {
  std::string text;
  std::array<int, kPointNames.size()> period{};  // every period-th call fails; kNever: none
  std::array<int64_t, kPointNames.size()> calls{};
};

// Reads `text`; a part it cannot read is named in a warning, so a mistyped hook is not silent.
Plan read_plan(std::string_view text) {
  Plan plan;
  plan.text = text;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    const std::string_view part = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    const size_t at = part.find('@');
    const std::string_view name = part.substr(0, at);
    int period = 1;
    bool readable = true;
    if (at != std::string_view::npos) {
      const std::string_view number = part.substr(at + 1);
      const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), period);
      readable = error == std::errc() && end == number.data() + number.size() && period >= 1;
    }
    size_t point = 0;
    while (point < kPointNames.size() && kPointNames[point] != name) ++point;
    if (!readable || point == kPointNames.size()) {
      log_line(LogLevel::warn, "GLQJIT_INJECT_FAULT: ignoring '" + std::string(part) +
                                   "' (expected nvrtc_compile, module_load or device_alloc, optionally @N with N >= 1)");
      continue;
    }
    plan.period[point] = period;
  }
  return plan;
}

}  // namespace

bool fault_injected(FaultPoint point) {
  static std::mutex mutex;
  static Plan plan;
  const char* value = std::getenv("GLQJIT_INJECT_FAULT");
  const std::string_view text = value == nullptr ? std::string_view() : value;
  std::lock_guard lock(mutex);
  if (text != plan.text) plan = read_plan(text);
  const size_t index = size_t(point);
  const int64_t call = ++plan.calls[index];
  const int period = plan.period[index];
  if (period == kNever || call % period != 0) return false;
  log_line(LogLevel::warn, "GLQJIT_INJECT_FAULT: failing " + std::string(kPointNames[index]) + " call " +
                               std::to_string(call) + " on purpose");
  return true;
}

}  // namespace glqjit
