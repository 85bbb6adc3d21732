// The number reading every tool's command line goes through (read_numbers_as_decimal,
// tools/tool_main.hpp), for the option types the tools' own tests cannot reach: unsigned and
// 64-bit integers at their limits, and floating-point values CLI11 alone would take.
#include <catch2/catch.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "tools/tool_main.hpp"

namespace {

using namespace glqjit;

// Parses `--value TEXT` into a T through read_numbers_as_decimal; nullopt when CLI11 refuses it.
template <class T>
std::optional<T> parsed(const std::string& text) {
  T value{};
  CLI::App app{"test"};
  app.add_option("--value", value);
  read_numbers_as_decimal(app);
  std::vector<std::string> arguments = {"test", "--value=" + text};
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  try {
    app.parse(int(argv.size()), argv.data());
  } catch (const CLI::ParseError&) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

TEST_CASE("integer options read decimal numbers that fit, and nothing else", "[tool_main]") {
  CHECK(parsed<int64_t>("010") == 10);
  CHECK(parsed<int64_t>("+7") == 7);
  CHECK(parsed<int64_t>("-9223372036854775808") == INT64_MIN);
  CHECK(parsed<uint64_t>("18446744073709551615") == UINT64_MAX);
  CHECK(parsed<int>("-0") == 0);
  // strtoll and strtoull saturate these, and strtoull takes "-5" as 2^64 - 5 (found by fuzz_number_option).
  CHECK_FALSE(parsed<int64_t>("9223372036854775808"));
  CHECK_FALSE(parsed<int64_t>("-9223372036854775809"));
  CHECK_FALSE(parsed<uint64_t>("18446744073709551616"));
  CHECK_FALSE(parsed<uint64_t>("-5"));
  CHECK_FALSE(parsed<unsigned>("-0"));
  CHECK_FALSE(parsed<int>("2147483648"));
  for (const char* text : {"0x10", "+-5", "", "+", "5 ", " 5", "1e3"}) {
    INFO(text);
    CHECK_FALSE(parsed<int64_t>(text));
  }
}

TEST_CASE("floating-point options read finite decimal numbers, and nothing else", "[tool_main]") {
  CHECK(parsed<double>("2.5") == 2.5);
  CHECK(parsed<double>("+1e3") == 1000);
  CHECK(parsed<double>(".5") == 0.5);
  CHECK(parsed<double>("-0.25") == -0.25);
  // strtold takes these, so "--budget nan" passed CLI::PositiveNumber (found by fuzz_command_line).
  for (const char* text : {"nan", "inf", "-inf", "infinity", "0x10", "1e400", " 5", "+-5", "", "1e", "5,5"}) {
    INFO(text);
    CHECK_FALSE(parsed<double>(text));
  }
}
