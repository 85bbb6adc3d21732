#include <fmt/format.h>

#include "glqjit/error.hpp"
#include "tuner/timer.hpp"

namespace glqjit {

SimulatedTimer::SimulatedTimer(std::map<std::string, double> times, double noise, uint64_t seed, int samples)
    : times_(std::move(times)), noise_(noise), rng_(seed), samples_(samples) {}

std::vector<double> SimulatedTimer::time_us(const Variant& variant, int batch) {
  ++calls_;
  const auto found = times_.find(variant.canonical());
  if (found == times_.end()) {
    throw Error(Status::cuda_error,
                fmt::format("simulated launch failure of \"{}\" at batch {}", variant.canonical(), batch));
  }
  std::uniform_real_distribution<double> jitter(1.0 - noise_, 1.0 + noise_);
  std::vector<double> samples;
  for (int s = 0; s < samples_; ++s) samples.push_back(found->second * jitter(rng_));
  return samples;
}

}  // namespace glqjit
