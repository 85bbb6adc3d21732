#include "tuner/winner.hpp"

#include <fmt/format.h>

#include <algorithm>

namespace glqjit {

bool beats(const Measurement& challenger, const Measurement& incumbent) {
  const double noise = std::max(kMinTuningGain, challenger.spread + incumbent.spread);
  return challenger.median_us < incumbent.median_us * (1.0 - noise);
}

bool faster(const Measurement& a, const Measurement& b) {
  if (a.median_us != b.median_us) return a.median_us < b.median_us;
  return a.variant.canonical() < b.variant.canonical();
}

WinnerChoice choose_winner(const std::vector<Measurement>& measured, const Variant& default_variant) {
  const Measurement* best = nullptr;
  const Measurement* standard = nullptr;
  int ok = 0;
  for (const Measurement& m : measured) {
    if (!m.ok()) continue;
    ++ok;
    if (best == nullptr || faster(m, *best)) best = &m;
    if (m.variant == default_variant) standard = &m;
  }
  WinnerChoice choice;
  if (best == nullptr) {
    choice.why = fmt::format("none of the {} candidates measured ok", measured.size());
    return choice;
  }
  if (standard == nullptr) {
    choice.winner = *best;
    choice.why = fmt::format("fastest of {} ok candidates; the default variant did not measure ok", ok);
  } else if (best == standard || !beats(*best, *standard)) {
    choice.winner = *standard;
    choice.why = best == standard
                     ? fmt::format("the default variant is the fastest of {} ok candidates", ok)
                     : fmt::format("the fastest of {} ok candidates ({:.2f} us) is within noise of the default "
                                   "({:.2f} us), which stays",
                                   ok, best->median_us, standard->median_us);
  } else {
    choice.winner = *best;
    choice.why = fmt::format("fastest of {} ok candidates: {:.2f} us against the default's {:.2f} us ({:.2f}x)", ok,
                             best->median_us, standard->median_us, standard->median_us / best->median_us);
  }
  return choice;
}

}  // namespace glqjit
