// parse_shape and shape_validator (tools/tool_main.hpp), what --shape OUTxIN goes through, on any
// text. Asserts: it accepts exactly "digits x digits" (x or X, decimal, leading zeros allowed)
// with both numbers from 1 to kMaxFeatures, else says why; an accepted shape's name() parses back
// to it; the CLI11 validator agrees with parse_shape.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "format/geometry.hpp"
#include "fuzz_check.hpp"
#include "tools/tool_main.hpp"

namespace {

using namespace glqjit;

std::optional<int64_t> reference_feature(std::string_view digits) {
  if (digits.empty()) return std::nullopt;
  int64_t value = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
    if (value > kMaxFeatures) return std::nullopt;
  }
  if (value < 1) return std::nullopt;
  return value;
}

std::optional<Shape> reference_shape(std::string_view text) {
  const size_t x = text.find_first_of("xX");
  if (x == std::string_view::npos) return std::nullopt;
  const std::optional<int64_t> out = reference_feature(text.substr(0, x));
  const std::optional<int64_t> in = reference_feature(text.substr(x + 1));
  if (!out || !in) return std::nullopt;
  return Shape{*out, *in};
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(fuzz::as_text(data, size));
  std::string why;
  std::optional<Shape> shape;
  fuzz::check(fuzz::parses([&] { shape = parse_shape(text, why); }), "parse_shape threw instead of saying why");
  const std::optional<Shape> expected = reference_shape(text);
  fuzz::check(shape.has_value() == expected.has_value(),
              shape ? "parse_shape accepted '" + text + "'" : "parse_shape refused '" + text + "': " + why);
  if (shape) {
    fuzz::check(*shape == *expected, "parse_shape read other numbers than '" + text + "' says: " + shape->name());
    std::string again_why;
    const std::optional<Shape> again = parse_shape(shape->name(), again_why);
    fuzz::check(again && *again == *shape, "parse_shape(name()) is not the shape " + shape->name());
  } else {
    fuzz::check(!why.empty(), "parse_shape refused '" + text + "' without saying why");
  }

  std::string validated = text;
  std::string verdict;
  fuzz::check(fuzz::parses([&] { verdict = shape_validator()(validated); }), "shape_validator threw");
  fuzz::check(verdict.empty() == shape.has_value(), "shape_validator and parse_shape disagree on '" + text + "'");
  return 0;
}
