#include "codegen/variant.hpp"

#include <charconv>
#include <fmt/format.h>

#include "glqjit/error.hpp"

namespace glqjit {

std::string Variant::canonical() const {
  return fmt::format(
      "family={} wgmma={} warps={} k_warps={} k_split={} batch_tiles={} prefetch={} ctas_per_sm={} table_copies={} "
      "transform_threads={}",
      family, wgmma, warps, k_warps, k_split, batch_tiles, prefetch, ctas_per_sm, table_copies, transform_threads);
}

Variant parse_variant(std::string_view text, const Variant& base) {
  Variant variant = base;
  size_t position = 0;
  while (position < text.size()) {
    const size_t end = std::min(text.find_first_of(" ,", position), text.size());
    const std::string_view part = text.substr(position, end - position);
    position = end + 1;
    if (part.empty()) continue;
    const size_t equals = part.find('=');
    const std::string_view name = part.substr(0, equals);
    int value = 0;
    const std::string_view digits = equals == std::string_view::npos ? std::string_view() : part.substr(equals + 1);
    const auto [rest, error] = std::from_chars(digits.data(), digits.data() + digits.size(), value);
    if (digits.empty() || error != std::errc() || rest != digits.data() + digits.size()) {
      throw Error(Status::invalid_argument,
                  fmt::format("variant part '{}' is not name=integer (e.g. \"warps=4 k_split=8\")", part));
    }
    if (name == "family") variant.family = value;
    else if (name == "wgmma") variant.wgmma = value;
    else if (name == "warps") variant.warps = value;
    else if (name == "k_warps") variant.k_warps = value;
    else if (name == "k_split") variant.k_split = value;
    else if (name == "table_copies") variant.table_copies = value;
    else if (name == "batch_tiles") variant.batch_tiles = value;
    else if (name == "prefetch") variant.prefetch = value;
    else if (name == "ctas_per_sm") variant.ctas_per_sm = value;
    else if (name == "transform_threads") variant.transform_threads = value;
    else {
      throw Error(Status::invalid_argument,
                  fmt::format("unknown variant knob '{}'; the knobs are family, wgmma, warps, k_warps, k_split, batch_tiles, "
                              "prefetch, ctas_per_sm, table_copies, transform_threads",
                              name));
    }
  }
  return variant;
}

int bucket_for(int batch) {
  if (batch < 1 || batch > kMaxBatch) {
    throw Error(Status::invalid_argument, fmt::format("batch {} is outside 1..{}", batch, kMaxBatch));
  }
  int bucket = 1;
  while (bucket < batch) bucket *= 2;
  return bucket;
}

}  // namespace glqjit
