// The median by which glq-bench reports every time it takes more than once.
#pragma once

#include <algorithm>
#include <limits>
#include <vector>

namespace glqjit::bench {

// NaN when there are no values.
inline double median(std::vector<double> values) {
  if (values.empty()) return std::numeric_limits<double>::quiet_NaN();
  std::sort(values.begin(), values.end());
  const size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : 0.5 * (values[n / 2 - 1] + values[n / 2]);
}

}  // namespace glqjit::bench
