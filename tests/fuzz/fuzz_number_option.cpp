// The decimal-only reading of number options (read_numbers_as_decimal, tools/tool_main.hpp) on
// any value: the first byte picks an option of type int, int64_t, unsigned, uint64_t or double and
// how it is written (--opt VALUE or --opt=VALUE), the rest is VALUE. Asserts: for an integer type
// CLI11 accepts exactly an optional sign ('+' or '-', no '-' for unsigned types) and decimal digits
// whose value fits the type, read in base ten ("010" is ten, never eight); for double exactly a
// decimal number ([sign] digits [. digits] [e [sign] digits]) whose value is finite, read as
// strtold reads it; anything else is refused with a CLI::ParseError, never another exception.
#include <CLI/CLI.hpp>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "fuzz_check.hpp"
#include "tools/tool_main.hpp"

namespace {

using namespace glqjit;

// VALUE as a number, when it is [sign]digits; nullopt otherwise. Saturates far outside every type.
std::optional<__int128> reference_value(std::string_view text, bool allow_minus) {
  bool negative = false;
  if (!text.empty() && (text[0] == '+' || (allow_minus && text[0] == '-'))) {
    negative = text[0] == '-';
    text.remove_prefix(1);
  }
  if (text.empty()) return std::nullopt;
  constexpr __int128 kSaturated = __int128(1) << 100;
  __int128 value = 0;
  for (const char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value >= kSaturated ? kSaturated : value * 10 + (c - '0');
  }
  return negative ? -value : value;
}

// Parses `--value VALUE` (or `--value=VALUE`) into `parsed`; false when CLI11 refused it.
template <class T>
bool parse_option(const std::string& value, bool attached, T& parsed) {
  CLI::App app{"fuzz_number_option"};
  app.add_option("--value", parsed);
  read_numbers_as_decimal(app);
  std::vector<std::string> arguments = {"fuzz_number_option"};
  if (attached) {
    arguments.push_back("--value=" + value);
  } else {
    arguments.push_back("--value");
    arguments.push_back(value);
  }
  std::vector<char*> argv;
  for (std::string& argument : arguments) argv.push_back(argument.data());
  try {
    app.parse(int(argv.size()), argv.data());
  } catch (const CLI::ParseError&) {
    return false;
  } catch (const std::exception& error) {
    fuzz::fail(std::string("CLI11 threw something other than CLI::ParseError: ") + error.what());
  }
  return true;
}

// A detached value that starts with '-' and more reads as an option to CLI11 when it looks like one
// ("-5" does not, "--5" and "-x" do): then only a refusal is certain.
bool may_read_as_option(const std::string& value, bool attached) {
  return !attached && value.size() > 1 && value[0] == '-' && !(value[1] >= '0' && value[1] <= '9') && value[1] != '.';
}

template <class T>
void check_integer_option(const std::string& value, bool attached) {
  T parsed = 0;
  const bool accepted = parse_option(value, attached, parsed);
  const std::optional<__int128> expected = reference_value(value, std::numeric_limits<T>::is_signed);
  const bool fits = expected && *expected >= __int128(std::numeric_limits<T>::min()) &&
                    *expected <= __int128(std::numeric_limits<T>::max());
  if (may_read_as_option(value, attached)) {
    fuzz::check(!accepted || fits, "an integer option accepted '" + value + "'");
    return;
  }
  fuzz::check(accepted == fits, accepted ? "an integer option accepted '" + value + "'"
                                         : "an integer option refused the decimal number '" + value + "'");
  if (accepted) fuzz::check(__int128(parsed) == *expected, "an integer option read '" + value + "' as another number");
}

// [+-] digits [. digits] [e [+-] digits], with digits on at least one side of the point.
bool is_decimal(std::string_view text) {
  size_t at = 0;
  const auto digits = [&] {
    const size_t start = at;
    while (at < text.size() && text[at] >= '0' && text[at] <= '9') ++at;
    return at - start;
  };
  if (at < text.size() && (text[at] == '+' || text[at] == '-')) ++at;
  size_t mantissa = digits();
  if (at < text.size() && text[at] == '.') {
    ++at;
    mantissa += digits();
  }
  if (mantissa == 0) return false;
  if (at < text.size() && (text[at] == 'e' || text[at] == 'E')) {
    ++at;
    if (at < text.size() && (text[at] == '+' || text[at] == '-')) ++at;
    if (digits() == 0) return false;
  }
  return at == text.size();
}

void check_double_option(const std::string& value, bool attached) {
  double parsed = 0;
  const bool accepted = parse_option(value, attached, parsed);
  bool expected = is_decimal(value);
  double reference = 0;
  if (expected) {
    errno = 0;
    reference = std::strtod(value.c_str(), nullptr);
    // Beyond a double, or so small that it is 0; a subnormal (ERANGE too) is a number.
    expected = std::isfinite(reference) && !(errno == ERANGE && reference == 0);
  }
  if (may_read_as_option(value, attached)) {
    fuzz::check(!accepted || expected, "a double option accepted '" + value + "'");
    return;
  }
  fuzz::check(accepted == expected, accepted ? "a double option accepted '" + value + "'"
                                             : "a double option refused the decimal number '" + value + "'");
  // CLI11 reads through long double, so a value may round twice and land a unit in the last place
  // away from strtod's; for an option like --budget that is no error.
  const double through_long_double = double(std::strtold(value.c_str(), nullptr));
  if (accepted) {
    fuzz::check(parsed == through_long_double, "a double option read '" + value + "' as another number");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string value(fuzz::as_text(data + 1, size - 1));
  value = value.substr(0, value.find('\0'));  // an argument is a C string
  const bool attached = data[0] & 1;
  switch ((data[0] >> 1) % 5) {
    case 0: check_integer_option<int>(value, attached); break;
    case 1: check_integer_option<int64_t>(value, attached); break;
    case 2: check_integer_option<unsigned>(value, attached); break;
    case 3: check_integer_option<uint64_t>(value, attached); break;
    default: check_double_option(value, attached); break;
  }
  return 0;
}
