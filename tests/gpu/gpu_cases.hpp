// The layers the GPU suite checks (the coverage list), so that the store can be
// filled for all of them in one parallel compile before the tests run.
#pragma once

#include <map>
#include <vector>

#include "codegen/spec.hpp"
#include "codegen/variant.hpp"

namespace glqjit::test {

struct LayerCase {
  LinearSpec spec;
  std::vector<int> batches;
  std::map<int, Variant> variants = {};  // batch bucket -> variant; the default elsewhere
};

// BENCHMARK.md's shapes at 2, 3, 4 bpw, the odd shapes (with bias) at 2..8 bpw, one large
// shape at 5..8 bpw and two legacy single-block layers; each in fp16 and bf16.
std::vector<LayerCase> correctness_cases();

// Kernel family 3 with variants its defaults do not pick, and its defaults on two large shapes:
// with the mma.sync multiply, and again with wgmma where the GPU has it.
std::vector<LayerCase> family3_cases();
// Kernel family 1 with variants its defaults do not pick (K slices across input blocks,
// several batch chunks, wide row groups, a legacy single block, an empty last K part), bpw 2-8,
// both dtypes.
std::vector<LayerCase> family1_cases();
// A few minutes' subset of correctness_cases (every bpw on two odd shapes with bias, bpw 2-4 on
// two benchmark shapes; batches 1 to 64), for iterating on kernels.
std::vector<LayerCase> sample_cases();

// A small subset for compute-sanitizer (memcheck, racecheck, synccheck run the suite 10-100x
// slower): every kernel family (1 with a K split across CTAs, 2, 3 with mma.sync and with wgmma
// where the GPU has it), both Hadamard transforms (block-diagonal and a legacy single block),
// E8P and E81B stages, both dtypes, bias, a group of three linears as one kernel.
std::vector<LayerCase> sanitizer_cases();

// Compiles (or finds) every kernel set the cases need, in parallel, into the context's store, so
// that a test does not compile them one by one as it goes.
void prewarm_store(const std::vector<LayerCase>& cases);

}  // namespace glqjit::test
