// NVRTC compiles every generated kernel set for every target architecture and bpw, with clean
// resource reports; compile failures and ptxas reports are handled as documented.
#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <stdexcept>

#include "codegen/nvrtc.hpp"
#include "codegen/parallel.hpp"
#include "codegen/source.hpp"
#include "codegen/variant_space.hpp"
#include "test_helpers.hpp"

using namespace glqjit;

namespace {

// Every module holds these six kernels, the strided passes included whether or not they are
// launched; kernel family 1's also glq_fused.
const char* const kKernelNames[] = {"glq_input_chunks",  "glq_input_strided",  "glq_matmul",
                                    "glq_output_chunks", "glq_output_strided", "glq_repack_e81b"};

std::vector<std::string> kernel_names(const std::string& variant) {
  std::vector<std::string> names(std::begin(kKernelNames), std::end(kKernelNames));
  if (variant.find("family=1 ") == 0) names.push_back("glq_fused");
  return names;
}

struct CompileJob {
  LinearSpec spec;
  int bucket = 1;
  Arch arch;
  std::string override_knobs;  // over the default variant; empty: the default itself
  // Filled by the worker thread (Catch2 assertions are not thread-safe, so nothing is checked there).
  std::string variant;
  size_t cubin_bytes = 0;
  bool elf = false;
  std::vector<KernelResources> resources;
  std::string error;
  double ms = 0;

  std::string name() const {
    return spec.canonical() + " bucket " + std::to_string(bucket) + " " + arch.name() + " [" + variant + "]";
  }
};

// Every (arch, bpw) at buckets 1 (the default: family 1 for 4096x4096 and the padded 1000x5000
// layer, whose Hadamard blocks are at most 4096, family 2 for the others), 1 again with family=1 where its shared memory fits, 16 (family 2) and 256
// (family 3); both dtypes, bias and the legacy single-block RHT on rotating subsets;
// four shapes (out x in: 4096x4096, 11008x4096, 4096x11008, padded 1000x5000).
std::vector<CompileJob> compile_matrix() {
  const LinearSpec shapes[] = {{4096, 4096, 2}, {4096, 11008, 2}, {11008, 4096, 2}, {5000, 1000, 2}};
  std::vector<CompileJob> jobs;
  int i = 0;
  for (const char* arch_name : {"sm_80", "sm_86", "sm_89", "sm_90a", "sm_100a", "sm_120"}) {
    for (int bpw = 2; bpw <= 8; ++bpw, ++i) {
      LinearSpec spec = shapes[i % 4];
      spec.bpw = bpw;
      spec.dtype = i % 2 == 1 ? DType::bf16 : DType::f16;
      spec.has_bias = i % 3 == 0;
      spec.legacy_single_block = i % 5 == 4;
      for (int bucket : {1, 16, 256}) {
        CompileJob job;
        job.spec = spec;
        job.bucket = bucket;
        job.arch = parse_arch(arch_name);
        jobs.push_back(job);
        const Variant fused =
            variant_over_default("family=1", spec, bucket, job.arch, job.arch.typical_sm_count());
        if (bucket == 1 && !variant_violation(spec, bucket, job.arch, fused)) {  // shared memory allowing
          job.override_knobs = "family=1";
          jobs.push_back(job);
        }
      }
    }
  }
  return jobs;
}

// Compiles every job on two threads (the test machines have two cores).
void compile_all(std::vector<CompileJob>& jobs) {
  parallel_for(jobs.size(), 2, [&](size_t index) {
    CompileJob& job = jobs[index];
    try {
      const Variant variant =
          variant_over_default(job.override_knobs, job.spec, job.bucket, job.arch, job.arch.typical_sm_count());
      job.variant = variant.canonical();
      const GeneratedKernel generated = generate_kernel(job.spec, variant, job.bucket, job.arch);
      const CompileOutput out = compile_kernel(generated.source, generated.options, false);
      job.cubin_bytes = out.cubin.size();
      job.elf = out.cubin.size() > 4 && out.cubin[0] == 0x7f && out.cubin[1] == 'E' && out.cubin[2] == 'L' &&
                out.cubin[3] == 'F';
      job.resources = out.resources;
      job.ms = out.compile_ms;
    } catch (const std::exception& e) {
      job.error = e.what();
    }
  });
}

// Every job compiled to an ELF cubin with one resource report per kernel; glq_matmul and
// glq_fused touch no local memory; spills elsewhere are reported, not failed.
void check_compiled(const std::vector<CompileJob>& jobs) {
  double slowest = 0;
  std::string spills;
  for (const CompileJob& job : jobs) {
    INFO(job.name());
    INFO(job.error);
    REQUIRE(job.error.empty());
    CHECK(job.cubin_bytes > 1000);
    CHECK(job.elf);
    slowest = std::max(slowest, job.ms);
    const std::vector<std::string> names = kernel_names(job.variant);
    for (const std::string& kernel : names) {
      INFO(kernel);
      const auto found = std::find_if(job.resources.begin(), job.resources.end(),
                                      [&](const KernelResources& r) { return r.name == kernel; });
      REQUIRE(found != job.resources.end());
      CHECK(std::count_if(job.resources.begin(), job.resources.end(),
                          [&](const KernelResources& r) { return r.name == kernel; }) == 1);
      CHECK(found->registers > 0);
      CHECK(found->registers <= 255);
      CHECK(found->shared_bytes <= 48 * 1024);  // static shared memory limit
      if (kernel == "glq_matmul" || kernel == "glq_fused") {
        // The hot loop must not touch local memory.
        CHECK(found->spill_store_bytes == 0);
        CHECK(found->spill_load_bytes == 0);
        CHECK(found->stack_bytes == 0);
      } else if (found->spill_store_bytes + found->spill_load_bytes > 0) {
        // Reported, not failed: the transforms run once per forward over a few KiB.
        spills += "\n  " + job.name() + " " + kernel + ": " + std::to_string(found->spill_store_bytes) + "/" +
                  std::to_string(found->spill_load_bytes) + " bytes spilled (store/load)";
      }
    }
    CHECK(job.resources.size() == names.size());
  }
  WARN("slowest compile: " << slowest << " ms");
  if (!spills.empty()) WARN("spills reported, not failed:" << spills);
}

}  // namespace

TEST_CASE("NVRTC compiles every kernel family for every architecture and bpw", "[nvrtc][slow]") {
  std::vector<CompileJob> jobs = compile_matrix();
  REQUIRE(jobs.size() > 6 * 7 * 3 + 30);
  compile_all(jobs);
  check_compiled(jobs);
  // The buckets ran the families they stand for: family 1 where named and by default at bucket 1
  // for the layer of small Hadamard blocks, family 3 from bucket 64, family 2 otherwise.
  for (const CompileJob& job : jobs) {
    INFO(job.name());
    const Geometry g = job.spec.geometry();
    const bool small_blocks = std::ranges::max(g.out_blocks) <= 4096 && std::ranges::max(g.in_blocks) <= 4096;
    const bool fused = job.bucket == 1 && (!job.override_knobs.empty() || small_blocks);
    CHECK(job.variant.find(job.bucket >= 64 ? "family=3 " : fused ? "family=1 " : "family=2 ") == 0);
    if (job.bucket == 1) CHECK(job.variant.find(" batch_tiles=1 ") != std::string::npos);
  }
}

// The edges of every knob the default variant leaves alone, and the largest Hadamard blocks:
// 32 warps in a CTA either way, one and eight table copies, 32 and 1024 transform threads,
// prefetch 8, and blocks of 32768 (R = 16) and 65536 (R = 32) for the strided passes.
TEST_CASE("NVRTC compiles the knobs' extremes and the largest blocks", "[nvrtc][slow]") {
  struct Case {
    LinearSpec spec;
    int bucket;
    const char* arch;
    const char* knobs;
  };
  // The widest CTAs the register-file rule allows (16 warps at batch 1, 8 at a large batch).
  const Case cases[] = {
      {{4096, 11008, 3}, 1, "sm_86", "warps=1 k_warps=16 k_split=1 table_copies=1 transform_threads=1024"},
      {{4096, 4096, 8}, 32, "sm_80", "warps=8 k_warps=1 batch_tiles=4 prefetch=1 table_copies=2 transform_threads=32"},
      {{8192, 57344, 5}, 16, "sm_90a", "warps=2 k_warps=4 batch_tiles=2 prefetch=2 table_copies=8"},
      {{65536, 4096, 2}, 1, "sm_90a", ""},
      {{4096, 4096, 5, DType::bf16, true, true}, 8, "sm_89", "warps=2 k_warps=4 table_copies=4 transform_threads=64"},
      {{4096, 4096, 2}, 1, "sm_100a", "warps=2 k_warps=2 prefetch=8"},
      // The default variant here (k_split=3, 128 k-tiles) once spilled in glq_matmul on sm_120.
      {{8192, 4096, 2}, 1, "sm_120", ""},
      // Kernel family 3: four stages with the deepest ring, one warpgroup per CTA, two CTAs per SM
      // (128 registers, no spills); the mma.sync multiply at sm_86's shared-memory limit and
      // with one warpgroup on sm_120.
      {{4096, 4096, 8}, 128, "sm_90a", "family=3 wgmma=1 warps=8 batch_tiles=16 prefetch=4 ctas_per_sm=1"},
      {{4096, 11008, 7, DType::bf16, true, false}, 1024, "sm_90a", "family=3 wgmma=1 warps=4 batch_tiles=16 prefetch=1"},
      {{4096, 4096, 4}, 256, "sm_90a", "family=3 wgmma=1 warps=8 batch_tiles=16 prefetch=2 ctas_per_sm=2"},
      {{4096, 4096, 8}, 128, "sm_86", "family=3 warps=8 batch_tiles=16 prefetch=2 table_copies=4"},
      {{4096, 11008, 7, DType::bf16, true, false}, 1024, "sm_120", "family=3 warps=4 batch_tiles=16 prefetch=1"},
  };
  std::vector<CompileJob> jobs;
  for (const Case& c : cases) {
    CompileJob job;
    job.spec = c.spec;
    job.bucket = c.bucket;
    job.arch = parse_arch(c.arch);
    job.override_knobs = c.knobs;
    jobs.push_back(job);
  }
  compile_all(jobs);
  check_compiled(jobs);
  // The overrides took effect.
  CHECK(jobs[0].variant.find("family=2 wgmma=0 warps=1 k_warps=16 ") == 0);
  CHECK(jobs[1].variant.find("transform_threads=32") != std::string::npos);
  CHECK(jobs[5].variant.find("prefetch=8") != std::string::npos);
  CHECK(jobs[7].variant.find("family=3 wgmma=1 warps=8 ") == 0);
  CHECK(jobs[8].variant.find("family=3 wgmma=1 warps=4 ") == 0);
  CHECK(jobs[9].variant.find("ctas_per_sm=2") != std::string::npos);
  CHECK(jobs[10].variant.find("family=3 wgmma=0 warps=8 ") == 0);
  CHECK(jobs[11].variant.find("family=3 wgmma=0 warps=4 ") == 0);
}

// ptxas left to itself held glq_matmul to ~80 registers here and spilled bpw 5 and 7; the default
// variant now asks for one CTA per SM there (codegen/variant_space.cpp).
TEST_CASE("glq_matmul does not spill at bpw 5 and 7 on sm_100a and sm_120", "[nvrtc][slow]") {
  std::vector<CompileJob> jobs;
  for (const char* arch : {"sm_100a", "sm_120"}) {
    for (auto [bpw, bucket] : {std::pair{5, 1}, {7, 16}, {5, 8}, {7, 1}}) {
      CompileJob job;
      job.spec = LinearSpec{11008, 4096, bpw};
      job.bucket = bucket;
      job.arch = parse_arch(arch);
      jobs.push_back(job);
    }
  }
  compile_all(jobs);
  check_compiled(jobs);
}

// Groups of linears that read one input (q, k, v of Llama-3-8B and SmolLM3-3B; gate and up) run
// as one glq_fused at batch buckets 1 and 8, E81B stages and biases included, without spills on
// any architecture. (From bucket 16 their slices of u may outgrow shared memory: LinearGroup,
// runtime/linear_group.hpp, runs such batches one linear at a time.)
TEST_CASE("NVRTC compiles groups of linears as one glq_fused", "[nvrtc][slow]") {
  auto group = [](int64_t in, std::vector<int64_t> outs, int bpw) {
    LinearSpec spec{in, 0, bpw};
    spec.shard_out_features = outs;
    for (int64_t out : outs) spec.out_features += out;
    return spec;
  };
  std::vector<CompileJob> jobs;
  int i = 0;
  for (const char* arch : {"sm_80", "sm_90a", "sm_100a", "sm_120"}) {
    for (const LinearSpec& base : {group(4096, {4096, 1024, 1024}, 2), group(4096, {14336, 14336}, 4),
                                   group(2048, {2048, 512, 512}, 3)}) {
      for (int bucket : {1, 8}) {
        CompileJob job;
        job.spec = base;
        job.spec.has_bias = i % 3 == 1;
        job.spec.dtype = i % 4 == 3 ? DType::bf16 : DType::f16;
        job.bucket = bucket;
        job.arch = parse_arch(arch);
        jobs.push_back(job);
        ++i;
      }
    }
  }
  compile_all(jobs);
  // At bucket 8 the slice of u of sm_120's and sm_80's smaller shared memory may not fit: that
  // group runs such batches one linear at a time, which it learns from this error.
  const size_t compiled = jobs.size();
  std::erase_if(jobs, [](const CompileJob& job) {
    return job.bucket > 1 && job.error.find("cannot run as one kernel at batch bucket") != std::string::npos &&
           job.error.find("shared memory") != std::string::npos;
  });
  CHECK(jobs.size() > compiled / 2 + 4);
  check_compiled(jobs);
  for (const CompileJob& job : jobs) {
    INFO(job.name());
    CHECK(job.variant.find("family=1 ") == 0);
  }
}

TEST_CASE("PTX on request uses mma.sync m16n8k16 for the target", "[nvrtc]") {
  const Arch arch = parse_arch("sm_89");
  const LinearSpec spec{4096, 4096, 3, DType::bf16};
  const GeneratedKernel g = generate_kernel(spec, default_variant(spec, 16, arch, 128), 16, arch);
  const CompileOutput out = compile_kernel(g.source, g.options, true);
  CHECK_FALSE(out.cubin.empty());
  REQUIRE_FALSE(out.ptx.empty());
  CHECK(out.ptx.find(".target sm_89") != std::string::npos);
  CHECK(out.ptx.find("mma.sync.aligned.m16n8k16") != std::string::npos);
  for (const char* kernel : kKernelNames) {
    INFO(kernel);
    CHECK(out.ptx.find(std::string(".entry ") + kernel + "(") != std::string::npos);
  }
  CHECK(out.ptx.back() != '\0');
  CHECK(out.compile_ms > 0);
  // Without the request there is no PTX.
  CHECK(compile_kernel(g.source, g.options, false).ptx.empty());
}

TEST_CASE("a source NVRTC rejects is a compile_error carrying NVRTC's log", "[nvrtc][errors]") {
  const std::string bad = "extern \"C\" __global__ void broken(int* p) { *p = undeclared_name_xyz; }\n";
  GLQ_REQUIRE_ERROR(compile_kernel(bad, {"--gpu-architecture=sm_80"}, false, "broken_kernel.cu"),
                    Status::compile_error, "undeclared_name_xyz", "broken_kernel.cu", "NVRTC");
  // A bad option is reported the same way rather than crashing.
  GLQ_REQUIRE_ERROR(compile_kernel("extern \"C\" __global__ void k() {}\n", {"--gpu-architecture=sm_75x"}, false),
                    Status::compile_error);
}

TEST_CASE("a trivial kernel compiles and reports its resources", "[nvrtc]") {
  const std::string source =
      "extern \"C\" __global__ void tiny(float* p) { __shared__ float s[64]; s[threadIdx.x] = p[threadIdx.x];"
      " __syncthreads(); p[threadIdx.x] = s[63 - threadIdx.x]; }\n";
  const CompileOutput out = compile_kernel(source, {"--gpu-architecture=sm_80", "-Xptxas=-v"}, false);
  CHECK_FALSE(out.cubin.empty());
  REQUIRE(out.resources.size() == 1);
  CHECK(out.resources[0].name == "tiny");
  CHECK(out.resources[0].registers > 0);
  CHECK(out.resources[0].shared_bytes == 256);
  CHECK(out.resources[0].spill_store_bytes == 0);
}

TEST_CASE("parse_resource_usage reads ptxas' verbose report", "[nvrtc]") {
  const std::string log =
      "ptxas info    : 0 bytes gmem\n"
      "ptxas info    : Compiling entry function 'glq_matmul' for 'sm_90a'\n"
      "ptxas info    : Function properties for glq_matmul\n"
      "    16 bytes stack frame, 8 bytes spill stores, 12 bytes spill loads\n"
      "ptxas info    : Used 128 registers, used 1 barriers, 8192 bytes smem, 400 bytes cmem[0]\n"
      "ptxas info    : Compiling entry function 'glq_input_chunks' for 'sm_90a'\n"
      "ptxas info    : Function properties for glq_input_chunks\n"
      "    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads\n"
      "ptxas info    : Used 40 registers, used 1 barriers, 392 bytes cmem[0]\n";
  const std::vector<KernelResources> r = parse_resource_usage(log);
  REQUIRE(r.size() == 2);
  CHECK(r[0].name == "glq_matmul");
  CHECK(r[0].registers == 128);
  CHECK(r[0].stack_bytes == 16);
  CHECK(r[0].spill_store_bytes == 8);
  CHECK(r[0].spill_load_bytes == 12);
  CHECK(r[0].shared_bytes == 8192);
  CHECK(r[1].name == "glq_input_chunks");
  CHECK(r[1].registers == 40);
  CHECK(r[1].shared_bytes == 0);
  CHECK(r[1].spill_store_bytes == 0);
  CHECK(parse_resource_usage("").empty());
  CHECK(parse_resource_usage("ptxas info : Used 10 registers\n").empty());  // no entry function yet
}

TEST_CASE("parallel_for runs every job once and rethrows the first error after all stop", "[parallel]") {
  std::vector<std::atomic<int>> runs(100);
  parallel_for(runs.size(), 2, [&](size_t i) { runs[i]++; });
  for (size_t i = 0; i < runs.size(); ++i) CHECK(runs[i].load() == 1);

  std::atomic<int> finished{0};
  CHECK_THROWS_WITH(parallel_for(50, 2,
                                 [&](size_t i) {
                                   if (i == 7) throw std::runtime_error("job 7 failed");
                                   finished++;
                                 }),
                    "job 7 failed");
  CHECK(finished.load() == 49);  // the other jobs still ran

  int count = 0;
  parallel_for(0, 2, [&](size_t) { count++; });
  CHECK(count == 0);
  parallel_for(3, 0, [&](size_t) {});  // 0 threads: one per core
  parallel_for(5, 1, [&](size_t) { count++; });
  CHECK(count == 5);
}
