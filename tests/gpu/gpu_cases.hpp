// The layers the GPU suite checks (the coverage list), so that the store can be
// filled for all of them in one parallel compile before the tests run.
#pragma once

#include <vector>

#include "codegen/spec.hpp"

namespace glqjit::test {

struct LayerCase {
  LinearSpec spec;
  std::vector<int> batches;
};

// BENCHMARK.md's shapes at 2, 3, 4 bpw, the odd shapes (with bias) at 2..8 bpw, one large
// shape at 5..8 bpw and two legacy single-block layers; each in fp16 and bf16.
std::vector<LayerCase> correctness_cases();

// Compiles (or finds) every kernel set the cases need, in parallel, into the context's store.
void prewarm_store(const std::vector<LayerCase>& cases);

}  // namespace glqjit::test
