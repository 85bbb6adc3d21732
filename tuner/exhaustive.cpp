#include "tuner/strategy.hpp"

#include <fmt/format.h>

#include <utility>

#include "glqjit/error.hpp"

namespace glqjit {
namespace {

class Exhaustive final : public Strategy {
 public:
  explicit Exhaustive(std::vector<Variant> candidates) : candidates_(std::move(candidates)) {}
  std::vector<Variant> ask() override { return std::exchange(candidates_, {}); }
  void tell(const std::vector<Measurement>&) override {}

 private:
  std::vector<Variant> candidates_;
};

}  // namespace

std::unique_ptr<Strategy> exhaustive_strategy(std::vector<Variant> candidates) {
  return std::make_unique<Exhaustive>(std::move(candidates));
}

StrategyKind parse_strategy(std::string_view name) {
  if (name == "exhaustive") return StrategyKind::exhaustive;
  if (name == "walk") return StrategyKind::walk;
  throw Error(Status::invalid_argument,
              fmt::format("strategy '{}' is neither 'exhaustive' (every legal variant) nor 'walk' (a neighbourhood "
                          "walk from the default)",
                          name));
}

}  // namespace glqjit
