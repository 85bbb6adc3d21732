// How long one candidate's forward takes: on the GPU (gpu_timer.hpp) or from a table of times
// (the CPU tests' simulated timer, after KTT's simulated tuning).
#pragma once

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "codegen/variant.hpp"

namespace glqjit {

class Timer {
 public:
  virtual ~Timer() = default;
  // Microseconds per forward of `variant` at `batch`, one sample per timed replay. Throws
  // Error when a forward fails.
  virtual std::vector<double> time_us(const Variant& variant, int batch) = 0;
};

class SimulatedTimer final : public Timer {
 public:
  // times: canonical variant text -> microseconds. Each sample is that time scaled by a
  // uniform factor in [1 - noise, 1 + noise] from a generator seeded with `seed`.
  SimulatedTimer(std::map<std::string, double> times, double noise, uint64_t seed, int samples = 5);
  // Throws Error(cuda_error) for a variant the table does not hold (a planted launch failure).
  std::vector<double> time_us(const Variant& variant, int batch) override;
  int calls() const { return calls_; }

 private:
  std::map<std::string, double> times_;
  double noise_;
  std::mt19937_64 rng_;
  int samples_;
  int calls_ = 0;
};

}  // namespace glqjit
