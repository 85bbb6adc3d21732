// Which measured candidate wins a tuning key. The same measurements always give the same
// winner, and a candidate within noise of the default does not displace it: a tuned record
// should only exist where it pays.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "tuner/measurement.hpp"

namespace glqjit {

// Two times differ beyond noise when the faster is at least this much faster, and more than
// the two measurements' spreads together.
inline constexpr double kMinTuningGain = 0.02;

// Whether `challenger` is faster than `incumbent` beyond noise (both must be ok).
bool beats(const Measurement& challenger, const Measurement& incumbent);

// The faster of two ok measurements; equal times go to the smaller canonical variant text.
bool faster(const Measurement& a, const Measurement& b);

struct WinnerChoice {
  std::optional<Measurement> winner;  // none when no candidate is ok
  std::string why;                    // in words, for the record and glq-dump
};

WinnerChoice choose_winner(const std::vector<Measurement>& measured, const Variant& default_variant);

}  // namespace glqjit
