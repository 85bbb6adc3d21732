#include "codegen/variant.hpp"

#include <algorithm>
#include <charconv>
#include <fmt/format.h>
#include <iterator>

#include "glqjit/error.hpp"

namespace glqjit {

namespace {

constexpr VariantKnob kKnobs[] = {
    {"family", &Variant::family,
     "kernel family: 1 the whole forward in one kernel, 2 mma.sync from the compressed weights, 3 activations "
     "staged in shared memory"},
    {"wgmma", &Variant::wgmma, "family 3's multiply: 1 warpgroup MMAs (sm_90a only), 0 mma.sync"},
    {"warps", &Variant::warps, "16-row tiles per matmul CTA (family 3: 4 or 8, whole warpgroups)"},
    {"k_warps", &Variant::k_warps, "warps per row tile, splitting the CTA's K slice; added in shared memory"},
    {"k_split", &Variant::k_split, "CTAs along K; their partial sums are added in a fixed order"},
    {"batch_tiles", &Variant::batch_tiles, "8-column tiles per warp (batch columns per CTA = 8 * batch_tiles)"},
    {"prefetch", &Variant::prefetch, "k-tiles of weights and activations in flight (family 2: per warp)"},
    {"ctas_per_sm", &Variant::ctas_per_sm,
     "matmul CTAs an SM must hold at once, ptxas fitting registers to it (0: its choice)"},
    {"table_copies", &Variant::table_copies, "copies of each codebook in shared memory (8: conflict-free lookups)"},
    {"transform_threads", &Variant::transform_threads, "threads per Hadamard-transform CTA"},
};
// A knob missing here would be missing from canonical(), and so from every cache key.
static_assert(sizeof(Variant) == std::size(kKnobs) * sizeof(int), "a member of Variant has no row in kKnobs");

// "family, wgmma, ...": a loop, since clang 14 cannot compile libstdc++'s views::transform.
std::string knob_names() {
  std::string names;
  for (const VariantKnob& knob : kKnobs) names += fmt::format("{}{}", names.empty() ? "" : ", ", knob.name);
  return names;
}

}  // namespace

std::span<const VariantKnob> variant_knobs() { return kKnobs; }

std::string Variant::canonical() const {
  std::string text;
  for (const VariantKnob& knob : kKnobs) {
    fmt::format_to(std::back_inserter(text), "{}{}={}", text.empty() ? "" : " ", knob.name, this->*knob.member);
  }
  return text;
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
    const auto knob = std::ranges::find(kKnobs, name, &VariantKnob::name);
    if (knob == std::ranges::end(kKnobs)) {
      throw Error(Status::invalid_argument,
                  fmt::format("unknown variant knob '{}'; the knobs are {}", name, knob_names()));
    }
    variant.*knob->member = value;
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
