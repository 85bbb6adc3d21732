#include "tools/tool_main.hpp"

#include <fmt/format.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <type_traits>

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

// The transforms below run before CLI11 converts the text, and leave it text that strtoll,
// strtoull and strtold read as written. from_chars checks it: it takes a '-' (integers: for signed
// types only) but no '+', and neither octal, hex, "nan", "inf" nor blanks.

// A leading '+' dropped where a digit follows it ("+-5" stays, and is refused).
std::string_view without_plus(const std::string& value) {
  const bool plus =
      value.size() > 1 && value[0] == '+' && (std::isdigit(static_cast<unsigned char>(value[1])) || value[1] == '.');
  return std::string_view(value).substr(plus ? 1 : 0);
}

template <class Integer>
std::string decimal_integer(std::string& value) {
  const std::string_view number = without_plus(value);
  Integer parsed = 0;
  const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), parsed);
  if (error == std::errc::invalid_argument || end != number.data() + number.size()) {
    return fmt::format("'{}' is not a whole decimal number{}", value, std::is_signed_v<Integer> ? "" : " of 0 or more");
  }
  if (error != std::errc()) return fmt::format("'{}' does not fit in 64 bits", value);
  value = std::to_string(parsed);
  return "";
}

std::string finite_decimal(std::string& value) {
  const std::string_view number = without_plus(value);
  double parsed = 0;
  const auto [end, error] = std::from_chars(number.data(), number.data() + number.size(), parsed);
  if (number.find_first_not_of("0123456789.eE+-") != std::string_view::npos || error == std::errc::invalid_argument ||
      end != number.data() + number.size()) {
    return fmt::format("'{}' is not a decimal number (such as 2, 0.5 or 1e3)", value);
  }
  if (error != std::errc()) return fmt::format("'{}' is beyond the range of a double", value);
  value = std::string(number);
  return "";
}

}  // namespace

void read_numbers_as_decimal(CLI::App& app) {
  for (CLI::Option* option : app.get_options()) {
    const std::string type = option->get_type_name();
    if (type.rfind("INT", 0) == 0) option->transform(CLI::Validator(decimal_integer<int64_t>, ""));
    if (type.rfind("UINT", 0) == 0) option->transform(CLI::Validator(decimal_integer<uint64_t>, ""));
    if (type.rfind("FLOAT", 0) == 0) option->transform(CLI::Validator(finite_decimal, ""));
  }
  for (CLI::App* subcommand : app.get_subcommands([](CLI::App*) { return true; })) read_numbers_as_decimal(*subcommand);
}

void write_stdout(std::string_view bytes) {
  errno = 0;
  const size_t written = std::fwrite(bytes.data(), 1, bytes.size(), stdout);
  if (std::fflush(stdout) != 0 || written != bytes.size() || std::ferror(stdout)) {
    throw Error(Status::invalid_argument,
                fmt::format("cannot write to standard output: {}", errno != 0 ? std::strerror(errno) : "write failed"));
  }
}

void check_output_writable(const std::string& path, const std::string& what) {
  if (path == "-") return;
  auto refused = [&](const std::string& reason) {
    return Error(Status::invalid_argument,
                 fmt::format("cannot write {}: {}", what.empty() ? path : what + " " + path, reason));
  };
  std::error_code status_error;
  const std::filesystem::file_status status = std::filesystem::status(path, status_error);
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    if (::access(path.c_str(), W_OK) != 0) throw refused(std::strerror(errno));
    return;
  }
  // A regular file (or none yet) is replaced through a temporary beside it: its folder must take one.
  std::string folder = std::filesystem::path(path).parent_path().string();
  if (folder.empty()) folder = ".";
  const std::filesystem::file_status folder_status = std::filesystem::status(folder, status_error);
  if (!std::filesystem::exists(folder_status)) throw refused("there is no folder " + folder);
  if (!std::filesystem::is_directory(folder_status)) throw refused(folder + " is not a folder");
  if (::access(folder.c_str(), W_OK | X_OK) != 0) throw refused("the folder " + folder + ": " + std::strerror(errno));
}

void write_output_file(const std::string& path, std::string_view bytes, const std::string& what) {
  if (path == "-") return write_stdout(bytes);
  const std::string name = what.empty() ? path : what + " " + path;
  auto write_all = [&](const std::string& target) {
    errno = 0;
    std::FILE* file = std::fopen(target.c_str(), "wb");
    if (file == nullptr) return false;
    const bool complete = std::fwrite(bytes.data(), 1, bytes.size(), file) == bytes.size() && std::fflush(file) == 0;
    const int saved = errno;
    const bool closed = std::fclose(file) == 0;
    if (!complete) errno = saved;
    return complete && closed;
  };
  auto failed = [&](const std::string& reason) {
    return Error(Status::invalid_argument, fmt::format("cannot write {}: {}", name, reason));
  };
  std::error_code status_error;
  const std::filesystem::file_status status = std::filesystem::status(path, status_error);
  if (std::filesystem::exists(status) && !std::filesystem::is_regular_file(status)) {
    if (!write_all(path)) throw failed(errno != 0 ? std::strerror(errno) : "write failed");
    return;
  }
  const std::string temporary = fmt::format("{}.partial-{}", path, getpid());
  if (!write_all(temporary)) {
    const std::string reason = errno != 0 ? std::strerror(errno) : "write failed";
    std::filesystem::remove(temporary, status_error);
    throw failed(reason);
  }
  std::error_code rename_error;
  std::filesystem::rename(temporary, path, rename_error);
  if (rename_error) {
    std::filesystem::remove(temporary, status_error);
    throw failed(rename_error.message());
  }
}

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
