// The soak (issue 13): a million forwards or more across kernel families, batch buckets, both
// Hadamard transforms and a group, eager and graph-replayed, with linears destroyed and made
// again as a serving process reloads them. Every check, each linear is compared with its fp64
// reference (FORMAT.md section 8), every (linear, batch) output with its first one bit for bit,
// and the free device memory with what it was after the first check. Any difference fails.
//
// Usage: soak_gpu [--forwards N] [--check-every N] [--seed S]
// Without a usable driver it prints why and exits 77 (ctest: skipped).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "glqjit/error.hpp"
#include "gpu_support.hpp"
#include "tuner/reference_gate.hpp"

namespace glqjit::test {
namespace {

struct SoakOptions {
  int64_t forwards = 1'000'000;
  int64_t check_every = 50'000;
  uint64_t seed = 0;  // 0: fresh
};

// One linear under soak: its layer and reference, the linear made from it, the inputs and
// outputs the forwards between checks use, and the bits each batch gave first.
struct SoakLinear {
  LinearSpec spec;
  std::vector<int> batches;
  std::unique_ptr<ReferenceCase> reference;
  std::unique_ptr<Linear> linear;
  DeviceBuffer x, y;
  std::vector<std::vector<uint16_t>> first_outputs;  // per batch

  LinearOptions options() const {
    LinearOptions options;
    options.max_batch = *std::max_element(batches.begin(), batches.end());
    return options;
  }
  size_t output_values(int batch) const { return size_t(batch) * size_t(spec.out_features); }
};

std::vector<SoakLinear> soak_linears(uint64_t seed) {
  const LinearSpec q_k_v = group_of({{4096, 4096, 2, DType::f16, false, false},
                                     {4096, 1024, 2, DType::f16, false, false},
                                     {4096, 1024, 2, DType::f16, false, false}});
  std::vector<SoakLinear> linears;
  auto add = [&](const LinearSpec& spec, std::vector<int> batches) {
    SoakLinear s;
    s.spec = spec;
    s.batches = std::move(batches);
    linears.push_back(std::move(s));
  };
  add({4096, 4096, 2, DType::f16, false, false}, {1, 2, 8, 33, 64});     // families 1 and 2
  add({1000, 2080, 3, DType::bf16, true, false}, {1, 17, 130, 256});     // and 3, E81B, bias
  add({1000, 2080, 2, DType::f16, true, true}, {1, 5, 64});              // a legacy single block
  add({4096, 14336, 4, DType::bf16, false, false}, {1, 16});
  add({1536, 576, 8, DType::f16, true, false}, {1, 3});
  add(q_k_v, {1});  // a group as one kernel
  std::mt19937_64 rng(seed);
  Context& ctx = context();
  std::mt19937_64 activations(rng());
  for (SoakLinear& s : linears) {
    s.reference = std::make_unique<ReferenceCase>(ctx, s.spec, s.batches, rng());
    const int max_batch = s.options().max_batch;
    s.x = device_copy(random_activations(max_batch, s.spec.in_features, s.spec.dtype, activations).bits);
    s.y = device_buffer(s.output_values(max_batch) * 2);
  }
  return linears;
}

size_t free_device_bytes() {
  size_t free_bytes = 0, total_bytes = 0;
  ScopedContext scope(context().cu());
  check_cuda(driver().cuMemGetInfo(&free_bytes, &total_bytes), "cuMemGetInfo");
  return free_bytes;
}

class Soak {
 public:
  Soak(const SoakOptions& options, uint64_t seed)
      : options_(options), linears_(soak_linears(seed)), stream_(context().cu(), CU_STREAM_DEFAULT) {
    for (SoakLinear& s : linears_) s.linear = std::make_unique<Linear>(context(), s.spec, s.reference->weights(), s.options());
    capture();
  }

  // Returns the number of failed checks.
  int run() {
    const auto start = std::chrono::steady_clock::now();
    int failures = check("start");
    const size_t baseline = free_device_bytes();
    std::printf("device memory free after the first check: %zu bytes\n", baseline);
    int64_t next_check = options_.check_every;
    for (int64_t step = 0; forwards_ < options_.forwards; ++step) {
      if (step % 64 == 63) {
        graph_->launch(stream_.get());
        forwards_ += int64_t(linears_.size());
      } else {
        SoakLinear& s = linears_[size_t(step) % linears_.size()];
        const int batch = s.batches[size_t(step / int64_t(linears_.size())) % s.batches.size()];
        s.linear->forward(s.x.get(), s.y.get(), batch, stream_.get());
        ++forwards_;
      }
      if (forwards_ < next_check && forwards_ < options_.forwards) continue;
      next_check += options_.check_every;
      stream_.synchronize("the soak's forwards");
      remake(linears_[size_t(checks_) % linears_.size()]);
      failures += check("check");
      const size_t free_now = free_device_bytes();
      if (free_now != baseline) {
        ++failures;
        std::printf("FAIL device memory: %zu bytes free, %+lld against the first check\n", free_now,
                    static_cast<long long>(free_now) - static_cast<long long>(baseline));
      }
      const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      std::printf("%lld forwards, %d checks, %d failures, device memory %s, %.0f s (%.0f forwards/s)\n",
                  static_cast<long long>(forwards_), checks_, failures, free_now == baseline ? "flat" : "CHANGED",
                  seconds, double(forwards_) / seconds);
      std::fflush(stdout);
    }
    return failures;
  }

 private:
  // One forward of each linear at its smallest batch, replayed as a graph.
  void capture() {
    graph_.reset();
    graph_ = std::make_unique<CapturedGraph>(context().cu(), stream_.get(), [&] {
      for (SoakLinear& s : linears_) s.linear->forward(s.x.get(), s.y.get(), s.batches.front(), stream_.get());
    });
  }

  // Destroys a linear and makes it again from the same weights, as a process reloading a model.
  void remake(SoakLinear& s) {
    graph_.reset();
    s.linear.reset();
    s.linear = std::make_unique<Linear>(context(), s.spec, s.reference->weights(), s.options());
    capture();
  }

  // Every linear against its reference at each of its batches, and each batch's output bits
  // against its first.
  int check(const char* when) {
    ++checks_;
    int failures = 0;
    for (SoakLinear& s : linears_) {
      for (const BatchCheck& c : s.reference->check(*s.linear)) {
        if (c.passed()) continue;
        ++failures;
        std::printf("FAIL %s %d: %s batch %d: relative L2 error %.3g (bound %.3g), %zu outputs not finite\n", when,
                    checks_, s.spec.canonical().c_str(), c.batch, c.error, c.tolerance, c.not_finite);
      }
      for (size_t b = 0; b < s.batches.size(); ++b) {
        const int batch = s.batches[b];
        s.y.poison();
        s.linear->forward(s.x.get(), s.y.get(), batch, nullptr);
        std::vector<uint16_t> bits(s.output_values(batch));
        s.y.download(bits.data(), bits.size() * 2);
        if (s.first_outputs.size() <= b) {
          s.first_outputs.push_back(std::move(bits));
        } else if (bits != s.first_outputs[b]) {
          ++failures;
          std::printf("FAIL %s %d: %s batch %d: the output differs from its first bit for bit\n", when, checks_,
                      s.spec.canonical().c_str(), batch);
        }
      }
    }
    return failures;
  }

  SoakOptions options_;
  std::vector<SoakLinear> linears_;
  Stream stream_;
  std::unique_ptr<CapturedGraph> graph_;
  int64_t forwards_ = 0;
  int checks_ = 0;
};

// Reads --forwards, --check-every and --seed; exits 2 with a usage line on anything else.
SoakOptions read_options(int argc, char** argv) {
  SoakOptions options;
  auto usage = [&](const std::string& why) {
    std::fprintf(stderr, "soak_gpu: %s\nusage: soak_gpu [--forwards N] [--check-every N] [--seed S]\n", why.c_str());
    std::exit(2);
  };
  for (int i = 1; i < argc; ++i) {
    const std::string name = argv[i];
    if (i + 1 >= argc) usage(name + " needs a value");
    const std::string text = argv[++i];
    char* end = nullptr;
    const unsigned long long value = std::strtoull(text.c_str(), &end, 10);
    if (text.empty() || text[0] == '-' || *end != '\0' || value == 0 || value > (1ull << 62)) {
      usage(name + " takes a positive decimal number, not '" + text + "'");
    }
    if (name == "--forwards") options.forwards = int64_t(value);
    else if (name == "--check-every") options.check_every = int64_t(value);
    else if (name == "--seed") options.seed = value;
    else usage("unknown option " + name);
  }
  return options;
}

}  // namespace
}  // namespace glqjit::test

int main(int argc, char** argv) {
  using namespace glqjit::test;
  const SoakOptions options = read_options(argc, argv);
  setvbuf(stdout, nullptr, _IOLBF, 0);
  try {
    context();
  } catch (const glqjit::Error& error) {
    std::printf("SKIPPED: the soak needs a CUDA device: %s\n", error.what());
    return 77;
  }
  try {
    const uint64_t seed = options.seed != 0 ? options.seed : fresh_seed();
    std::printf("soak of %lld forwards, checked every %lld, seed %llu, on %s\n",
                static_cast<long long>(options.forwards), static_cast<long long>(options.check_every),
                static_cast<unsigned long long>(seed), context().device().name.c_str());
    Soak soak(options, seed);
    const int failures = soak.run();
    std::printf("%s: %d failed checks\n", failures == 0 ? "soak passed" : "soak FAILED", failures);
    return failures == 0 ? 0 : 1;
  } catch (const glqjit::Error& error) {
    std::printf("soak FAILED: %s\n", error.what());
    return 1;
  }
}
