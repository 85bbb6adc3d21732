// How the tuner walks a key's candidates: an ask/tell interface (after KTT's searchers), so
// that the loop that builds, checks and times candidates is the same for every strategy.
#pragma once

#include <memory>
#include <string_view>
#include <vector>

#include "codegen/variant.hpp"
#include "tuner/measurement.hpp"

namespace glqjit {

class Strategy {
 public:
  virtual ~Strategy() = default;
  // The next candidates to measure, each asked at most once; none: the search is over.
  virtual std::vector<Variant> ask() = 0;
  // What became of the candidates of the last ask (also those measured by an earlier run).
  virtual void tell(const std::vector<Measurement>& measured) = 0;
};

// Every candidate, in one ask.
std::unique_ptr<Strategy> exhaustive_strategy(std::vector<Variant> candidates);

// From the default (candidates[0]) and the `seeds` (other starting points, such as the other
// kernel families' defaults): measure them and every candidate one knob away from the default,
// then move to the fastest beyond noise and measure its unmeasured one-knob neighbours, until
// no move pays. Measures a small part of a large space; ties go the same way every time.
std::unique_ptr<Strategy> neighbourhood_walk(std::vector<Variant> candidates, std::vector<Variant> seeds);

enum class StrategyKind { exhaustive, walk };
// "exhaustive" or "walk"; throws Error(invalid_argument) otherwise.
StrategyKind parse_strategy(std::string_view name);

}  // namespace glqjit
