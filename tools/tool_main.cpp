#include "tools/tool_main.hpp"

#include <fmt/format.h>

#include <charconv>

#include "format/geometry.hpp"

#include "support/log.hpp"

namespace glqjit {
namespace {

// Digits only: from_chars reads "010" as ten, never as octal.
std::optional<int64_t> parse_count(std::string_view text) {
  int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size() || text.empty()) return std::nullopt;
  return value;
}

}  // namespace

std::string Shape::name() const { return fmt::format("{}x{}", out, in); }

std::optional<Shape> parse_shape(const std::string& text, std::string& why) {
  const size_t x = text.find_first_of("xX");
  if (x == std::string::npos) {
    why = fmt::format("shape '{}' is not OUTxIN (out_features x in_features, e.g. 28672x4096)", text);
    return std::nullopt;
  }
  const auto out = parse_count(std::string_view(text).substr(0, x));
  const auto in = parse_count(std::string_view(text).substr(x + 1));
  if (!out || !in) {
    why = fmt::format("shape '{}' is not OUTxIN with two whole numbers (e.g. 28672x4096)", text);
    return std::nullopt;
  }
  if (*out < 1 || *in < 1 || *out > kMaxFeatures || *in > kMaxFeatures) {
    why = fmt::format("shape '{}': features must be from 1 to {}", text, kMaxFeatures);
    return std::nullopt;
  }
  return Shape{*out, *in};
}

CLI::Validator shape_validator() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        std::string why;
        return parse_shape(text, why) ? std::string() : why;
      },
      "OUTxIN", "SHAPE");
}

std::unique_ptr<Store> open_tool_store(const std::string& cache_path, bool read_only) {
  if (!cache_path.empty()) return std::make_unique<Store>(StoreOptions{cache_path, read_only});
  try {
    return std::make_unique<Store>(StoreOptions{"", read_only});
  } catch (const Error& error) {
    log_line(LogLevel::warn, fmt::format("{}; going on without a kernel store", error.what()));
    return nullptr;
  }
}

}  // namespace glqjit
