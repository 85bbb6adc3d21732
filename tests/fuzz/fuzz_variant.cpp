// parse_variant (codegen/variant.hpp) on any text, over the default and over a base made from the
// input's first bytes. Asserts: it throws nothing but glqjit::Error; it accepts exactly the texts
// whose parts (split at spaces and commas) are all "knob=decimal int" and sets what a plain
// reading of the parts says (the last part of a knob wins); canonical() text parses back to the
// same variant, over any base.
#include <cstdint>
#include <cstring>
#include <limits>
#include <optional>
#include <string>
#include <string_view>

#include "codegen/variant.hpp"
#include "fuzz_check.hpp"

namespace {

using namespace glqjit;

// A decimal int as the parts write it: an optional '-', then digits only.
std::optional<int> reference_int(std::string_view digits) {
  const bool negative = !digits.empty() && digits[0] == '-';
  if (negative) digits.remove_prefix(1);
  if (digits.empty()) return std::nullopt;
  int64_t value = 0;
  for (const char c : digits) {
    if (c < '0' || c > '9') return std::nullopt;
    value = value * 10 + (c - '0');
    if (value > int64_t(std::numeric_limits<int>::max()) + 1) return std::nullopt;
  }
  if (negative) value = -value;
  if (value < std::numeric_limits<int>::min() || value > std::numeric_limits<int>::max()) return std::nullopt;
  return int(value);
}

// What parse_variant should give, read part by part without its code.
std::optional<Variant> reference_parse(std::string_view text, Variant variant) {
  std::string part;
  auto apply = [&]() -> bool {
    if (part.empty()) return true;
    const size_t equals = part.find('=');
    if (equals == std::string::npos) return false;
    const std::string_view name = std::string_view(part).substr(0, equals);
    const std::optional<int> value = reference_int(std::string_view(part).substr(equals + 1));
    if (!value) return false;
    for (const VariantKnob& knob : variant_knobs()) {
      if (knob.name == name) {
        variant.*knob.member = *value;
        part.clear();
        return true;
      }
    }
    return false;
  };
  for (const char c : text) {
    if (c == ' ' || c == ',') {
      if (!apply()) return std::nullopt;
    } else {
      part += c;
    }
  }
  if (!apply()) return std::nullopt;
  return variant;
}

// A base variant whose knobs hold the input's first bytes, so that "over base" is exercised with
// values the text does not set.
Variant base_from(const uint8_t* data, size_t size) {
  Variant base;
  size_t at = 0;
  for (const VariantKnob& knob : variant_knobs()) {
    int value = 0;
    if (at + sizeof value <= size) std::memcpy(&value, data + at, sizeof value);
    at += sizeof value;
    base.*knob.member = value;
  }
  return base;
}

void check_round_trip(const Variant& variant) {
  for (const Variant& base : {Variant{}, Variant{.family = 3, .warps = 8}}) {
    Variant again;
    const bool parsed = fuzz::parses([&] { again = parse_variant(variant.canonical(), base); });
    fuzz::check(parsed && again == variant, "parse_variant(canonical()) is not the variant: " + variant.canonical());
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text = fuzz::as_text(data, size);
  for (const Variant& base : {Variant{}, base_from(data, size)}) {
    Variant parsed;
    const bool accepted = fuzz::parses([&] { parsed = parse_variant(text, base); });
    const std::optional<Variant> expected = reference_parse(text, base);
    fuzz::check(accepted == expected.has_value(), accepted
                                                      ? "parse_variant accepted a text with a part that is not knob=int"
                                                      : "parse_variant refused a text of knob=int parts");
    if (!accepted) continue;
    fuzz::check(parsed == *expected, "parse_variant set other values than its parts say: " + parsed.canonical());
    check_round_trip(parsed);
  }
  return 0;
}
