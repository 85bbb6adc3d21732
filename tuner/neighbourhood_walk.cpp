#include <map>
#include <set>
#include <string>

#include "tuner/strategy.hpp"
#include "tuner/winner.hpp"

namespace glqjit {
namespace {

int knobs_apart(const Variant& a, const Variant& b) {
  int apart = 0;
  for (const VariantKnob& knob : variant_knobs()) apart += a.*knob.member != b.*knob.member;
  return apart;
}

class NeighbourhoodWalk final : public Strategy {
 public:
  NeighbourhoodWalk(std::vector<Variant> candidates, std::vector<Variant> seeds)
      : candidates_(std::move(candidates)), seeds_(std::move(seeds)) {}

  std::vector<Variant> ask() override {
    if (candidates_.empty()) return {};
    std::vector<Variant> next;
    auto add = [&](const Variant& v) {
      if (asked_.insert(v.canonical()).second) next.push_back(v);
    };
    if (asked_.empty()) {
      add(candidates_.front());
      for (const Variant& seed : seeds_) {
        for (const Variant& candidate : candidates_) {
          if (candidate == seed) add(candidate);
        }
      }
    } else if (!moved_) {
      return {};
    }
    moved_ = false;
    for (const Variant& candidate : candidates_) {
      if (knobs_apart(candidate, centre_) == 1) add(candidate);
    }
    return next;
  }

  void tell(const std::vector<Measurement>& measured) override {
    for (const Measurement& m : measured) {
      if (m.ok()) ok_.insert_or_assign(m.variant.canonical(), m);
    }
    const Measurement* best = nullptr;
    for (const auto& [text, m] : ok_) {
      if (best == nullptr || faster(m, *best)) best = &m;
    }
    if (best == nullptr) return;
    const auto centre = ok_.find(centre_.canonical());
    // A centre that did not measure ok (the default failed, say) gives way to the best there is.
    if (centre == ok_.end() ? !(best->variant == centre_) : beats(*best, centre->second)) {
      centre_ = best->variant;
      moved_ = true;
    }
  }

 private:
  std::vector<Variant> candidates_;
  std::vector<Variant> seeds_;
  Variant centre_ = candidates_.empty() ? Variant{} : candidates_.front();
  bool moved_ = false;
  std::set<std::string> asked_;
  std::map<std::string, Measurement> ok_;
};

}  // namespace

std::unique_ptr<Strategy> neighbourhood_walk(std::vector<Variant> candidates, std::vector<Variant> seeds) {
  return std::make_unique<NeighbourhoodWalk>(std::move(candidates), std::move(seeds));
}

}  // namespace glqjit
