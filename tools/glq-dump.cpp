// glq-dump: what the generator makes, and the tables it makes it from. Needs no GPU.
#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "codegen/variant_space.hpp"
#include "format/codebook.hpp"
#include "runtime/kernel_binary.hpp"
#include "support/environment.hpp"
#include "tools/tool_main.hpp"

namespace glqjit {
namespace {

struct KernelArguments {
  int64_t in_features = 0, out_features = 0;
  int bpw = 2, batch = 1, sm_count = 0;
  std::string arch = "sm_90a", emit = "info", output, cache, variant, dtype = "fp16";
  bool bias = false, legacy = false, no_cache = false, json = false;
};

void write_output(const std::string& path, const std::string& bytes, bool binary) {
  if (path.empty() || path == "-") {
    if (binary && isatty(STDOUT_FILENO)) {
      throw Error(Status::invalid_argument, "a cubin is binary: write it to a file with -o FILE");
    }
    return write_stdout(bytes);
  }
  write_output_file(path, bytes, "-o");
}

nlohmann::ordered_json kernel_info(const KernelBinary& binary, const Store* store) {
  const GeneratedKernel& g = binary.generated;
  const LaunchPlan& plan = g.launch;
  nlohmann::ordered_json info;
  info["key_digest"] = binary.key.digest();
  info["key"] = {{"schema_version", binary.key.schema_version}, {"library_version", binary.key.library_version},
                 {"source_hash", binary.key.source_hash},       {"spec", binary.key.spec},
                 {"variant", binary.key.variant},               {"batch_bucket", binary.key.batch_bucket},
                 {"arch", binary.key.arch},                     {"nvrtc_version", binary.key.nvrtc_version},
                 {"options", binary.key.options}};
  info["from_store"] = binary.from_store;
  info["store"] = store ? store->path() : "";
  info["compile_ms"] = binary.compiled.compile_ms;
  info["store_lookup_ms"] = binary.lookup_ms;
  info["cubin_bytes"] = binary.compiled.cubin.size();
  auto& kernels = info["kernels"] = nlohmann::ordered_json::array();
  for (const KernelResources& r : binary.resources) {
    kernels.push_back({{"name", r.name},
                       {"registers", r.registers},
                       {"spill_store_bytes", r.spill_store_bytes},
                       {"spill_load_bytes", r.spill_load_bytes},
                       {"stack_bytes", r.stack_bytes},
                       {"static_shared_bytes", r.shared_bytes}});
  }
  const int batch = g.batch_bucket;
  auto& launches = info["launches_at_bucket"] = nlohmann::ordered_json::array();
  auto add = [&](const KernelLaunch& launch, Dim3 grid) {
    if (launch.name.empty()) return;
    launches.push_back({{"kernel", launch.name},
                        {"grid", {grid.x, grid.y, grid.z}},
                        {"threads", launch.threads},
                        {"dynamic_shared_bytes", launch.dynamic_shared_bytes}});
  };
  add(plan.input_chunks, plan.input_chunks_grid(batch));
  add(plan.input_strided, plan.input_strided_grid(batch));
  add(plan.matmul, plan.matmul_grid(batch));
  add(plan.output_chunks, plan.output_chunks_grid(batch));
  add(plan.output_strided, plan.output_strided_grid(batch));
  info["workspace_bytes_at_bucket"] = plan.workspace_bytes(batch);
  return info;
}

std::string info_text(const nlohmann::ordered_json& info) {
  std::string text = fmt::format("key digest   {}\n", info["key_digest"].get<std::string>());
  for (const auto& [name, value] : info["key"].items()) {
    text += fmt::format("  {:<16} {}\n", name, value.is_string() ? value.get<std::string>() : value.dump());
  }
  text += fmt::format("from store   {}{}\n", info["from_store"].get<bool>() ? "yes" : "no (compiled now)",
                      info["store"].get<std::string>().empty() ? "" : "  (" + info["store"].get<std::string>() + ")");
  text += fmt::format("compile      {:.1f} ms (when it was compiled), cubin {} bytes\n", info["compile_ms"].get<double>(),
                      info["cubin_bytes"].get<size_t>());
  text += fmt::format("key+lookup   {:.3f} ms in this run\n", info["store_lookup_ms"].get<double>());
  text += "kernel                 regs  spill st/ld  stack  static smem\n";
  for (const auto& k : info["kernels"]) {
    text += fmt::format("  {:<20} {:>4}  {:>5}/{:<5} {:>5}  {:>6}\n", k["name"].get<std::string>(),
                        k["registers"].get<int>(), k["spill_store_bytes"].get<int>(), k["spill_load_bytes"].get<int>(),
                        k["stack_bytes"].get<int>(), k["static_shared_bytes"].get<int>());
  }
  text += "launches at the bucket's batch, in order\n";
  for (const auto& l : info["launches_at_bucket"]) {
    text += fmt::format("  {:<20} grid {} x {} threads, {} bytes dynamic smem\n", l["kernel"].get<std::string>(),
                        l["grid"].dump(), l["threads"].get<unsigned>(), l["dynamic_shared_bytes"].get<unsigned>());
  }
  text += fmt::format("  workspace            {} bytes\n", info["workspace_bytes_at_bucket"].get<size_t>());
  return text;
}

void dump_kernel(const KernelArguments& a) {
  LinearSpec spec{a.in_features, a.out_features, a.bpw, parse_dtype(a.dtype), a.bias, a.legacy};
  const Arch arch = parse_arch(a.arch);
  if (a.batch < 1) throw Error(Status::invalid_argument, fmt::format("--batch {} must be at least 1", a.batch));
  const int bucket = bucket_for(a.batch);
  const int sm_count = a.sm_count > 0 ? a.sm_count : arch.typical_sm_count();
  const Variant variant = variant_over_default(a.variant, spec, bucket, arch, sm_count);
  if (a.json && a.emit != "info") {
    throw Error(Status::invalid_argument, fmt::format("--json applies to --emit info only, not to --emit {}", a.emit));
  }
  GeneratedKernel generated = generate_kernel(spec, variant, bucket, arch);
  if (a.emit == "source") return write_output(a.output, generated.source, false);

  std::unique_ptr<Store> store = a.no_cache ? nullptr : open_tool_store(a.cache, false);
  ObtainOptions options;
  options.want_ptx = a.emit == "ptx";
  options.no_jit = environment_flag("GLQJIT_NO_JIT");
  std::vector<GeneratedKernel> one;
  one.push_back(std::move(generated));
  const KernelBinary binary = std::move(obtain_kernels(store.get(), std::move(one), options).front());
  if (a.emit == "ptx") return write_output(a.output, binary.compiled.ptx, false);
  if (a.emit == "cubin") {
    return write_output(a.output, std::string(binary.compiled.cubin.begin(), binary.compiled.cubin.end()), true);
  }
  const nlohmann::ordered_json info = kernel_info(binary, store.get());
  write_output(a.output, a.json ? info.dump(2) + "\n" : info_text(info), false);
}

// The tuning records of a store: what glq-tune chose per device, spec and batch bucket, with
// the details it kept on why the winner won, and every measurement of the key, fastest first.
void dump_tuning(const std::string& cache_path, bool json) {
  const std::string path = cache_path.empty() ? default_store_path() : cache_path;
  if (!std::filesystem::exists(path)) {
    throw Error(Status::cache_error, fmt::format("no kernel store at {}: nothing has been compiled or tuned into it "
                                                 "(pass --cache PATH for another store)",
                                                 path));
  }
  Store store(StoreOptions{path, /*read_only=*/true});
  const std::vector<TuningRecord> records = store.all_tuning();
  // Timed candidates by time, then the others by status.
  auto measurements_of = [&](const TuningRecord& r) {
    std::vector<MeasurementRecord> measured = store.find_measurements(r.device_signature, r.spec, r.batch_bucket);
    std::stable_sort(measured.begin(), measured.end(), [](const MeasurementRecord& a, const MeasurementRecord& b) {
      const bool a_ok = a.status == "ok", b_ok = b.status == "ok";
      if (a_ok != b_ok) return a_ok;
      return a_ok ? a.median_us < b.median_us : a.status < b.status;
    });
    return measured;
  };
  // Details that are not JSON (a damaged or foreign row) are shown as the string they are.
  auto parsed = [](const std::string& text) {
    nlohmann::ordered_json value =
        nlohmann::ordered_json::parse(text.empty() ? "null" : text, nullptr, /*allow_exceptions=*/false);
    return value.is_discarded() ? nlohmann::ordered_json(text) : value;
  };
  // A failed measurement's "reason", as text even where a damaged row holds something else there.
  auto reason_of = [](const nlohmann::ordered_json& details) -> std::string {
    if (!details.is_object() || !details.contains("reason")) return "";
    const nlohmann::ordered_json& reason = details["reason"];
    return reason.is_string() ? reason.get<std::string>() : reason.dump();
  };
  if (json) {
    nlohmann::ordered_json out = nlohmann::ordered_json::array();
    for (const TuningRecord& r : records) {
      nlohmann::ordered_json measured = nlohmann::ordered_json::array();
      for (const MeasurementRecord& m : measurements_of(r)) measured.push_back(parsed(m.details));
      out.push_back({{"device_signature", r.device_signature},
                     {"spec", r.spec},
                     {"batch_bucket", r.batch_bucket},
                     {"variant", r.variant},
                     {"time_us", r.time_us},
                     {"details", parsed(r.details)},
                     {"measurements", measured}});
    }
    write_stdout(out.dump(2) + "\n");
    return;
  }
  if (records.empty()) {
    std::printf("no tuning records in %s\n", path.c_str());
    return;
  }
  for (const TuningRecord& r : records) {
    std::printf("%s | %s | bucket %d\n  winner  %s  (%.2f us)\n  details %s\n", r.device_signature.c_str(),
                r.spec.c_str(), r.batch_bucket, r.variant.c_str(), r.time_us, r.details.c_str());
    for (const MeasurementRecord& m : measurements_of(r)) {
      const std::string reason = m.status != "ok" ? reason_of(parsed(m.details)) : "";
      std::printf("  %-14s %9s  %s%s\n", m.status.c_str(), m.status == "ok" ? fmt::format("{:.2f} us", m.median_us).c_str() : "",
                  m.variant.c_str(), reason.empty() ? "" : ("  (" + reason.substr(0, reason.find('\n')) + ")").c_str());
    }
  }
}

}  // namespace
}  // namespace glqjit

int main(int argc, char** argv) {
  using namespace glqjit;
  CLI::App app{"glq-dump: show glqjit's codebooks and the kernels it generates (no GPU needed)"};
  app.require_subcommand(1);

  std::string codebook_name;
  auto* codebook = app.add_subcommand("codebook", "print a codebook table exactly as FORMAT.md sections 2.2 and 3 say");
  codebook->add_option("name", codebook_name, "e8p (65536 codes) or e81b (256 codes)")->required();

  KernelArguments k;
  auto* kernel = app.add_subcommand("kernel", "generate (and compile) the kernel set of one layer spec and batch bucket");
  kernel->add_option("--in-features", k.in_features, "input features of the layer")->required();
  kernel->add_option("--out-features", k.out_features, "output features of the layer")->required();
  kernel->add_option("--bpw", k.bpw, "bits per weight, 2..8")->required();
  kernel->add_option("--batch", k.batch, "batch size; the kernel of its bucket (next power of two) is shown")->required();
  kernel->add_option("--arch", k.arch, "target: sm_80, sm_86, sm_89, sm_90, sm_90a, sm_100, sm_100a, sm_120")
      ->capture_default_str();
  kernel->add_option("--emit", k.emit, "what to print: source, ptx, cubin or info")
      ->check(CLI::IsMember({"source", "ptx", "cubin", "info"}))
      ->capture_default_str();
  kernel->add_option("-o,--output", k.output, "write to FILE instead of standard output");
  kernel->add_option("--variant", k.variant, "override knobs of the default variant, e.g. \"warps=8 k_split=4\"; with family=1, 2 or 3 "
                     "among them, of that kernel family's default (family 3 on sm_90a: wgmma=0 for its mma.sync "
                     "multiply)");
  kernel->add_option("--dtype", k.dtype, "activation dtype: fp16 or bf16")->capture_default_str();
  kernel->add_flag("--bias", k.bias, "the layer has a bias");
  kernel->add_flag("--legacy-single-block", k.legacy, "legacy checkpoint: one power-of-two Hadamard block per side");
  kernel->add_option("--sm-count", k.sm_count, "size the default variant for this many SMs (default: typical for --arch)");
  kernel->add_option("--cache", k.cache, "kernel store to read and fill (default: $GLQJIT_CACHE or ~/.cache/glqjit/glqjit.db)");
  kernel->add_flag("--no-cache", k.no_cache, "compile without reading or writing any store");
  kernel->add_flag("--json", k.json, "with --emit info: print JSON");

  std::string tuning_cache;
  bool tuning_json = false;
  auto* tuning = app.add_subcommand("tuning", "list the tuning records of a kernel store (winners and why they won)");
  tuning->add_option("--cache", tuning_cache, "the store (default: $GLQJIT_CACHE or ~/.cache/glqjit/glqjit.db)");
  tuning->add_flag("--json", tuning_json, "print JSON");

  return run_tool("glq-dump", app, argc, argv, [&] {
    if (tuning->parsed()) {
      dump_tuning(tuning_cache, tuning_json);
    } else if (codebook->parsed()) {
      write_stdout(codebook_dump(parse_codebook(codebook_name)));
    } else {
      dump_kernel(k);
    }
  });
}
