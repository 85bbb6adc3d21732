#include "tuner/builder.hpp"

#include <fmt/format.h>

#include "codegen/launch.hpp"
#include "runtime/kernel_binary.hpp"

namespace glqjit {
namespace {

// The first lines of a compile error: enough to say what broke without a whole NVRTC log in
// every record.
std::string first_lines(const std::string& text, int lines) {
  size_t end = 0;
  for (int l = 0; l < lines && end != std::string::npos; ++l) end = text.find('\n', end + (l > 0));
  return end == std::string::npos ? text : text.substr(0, end);
}

// The kernels a forward of this plan launches (the module also holds others it never runs).
std::vector<std::string> launched_kernels(const LaunchPlan& plan) {
  std::vector<std::string> names;
  for (const KernelLaunch* launch :
       {&plan.input_chunks, &plan.input_strided, &plan.matmul, &plan.output_chunks, &plan.output_strided}) {
    if (!launch->name.empty()) names.push_back(launch->name);
  }
  return names;
}

}  // namespace

std::string KernelBuilder::kernel_digest(const Variant& variant) {
  return make_kernel_key(generate_kernel(spec_, variant, batch_bucket_, arch_)).digest();
}

std::vector<BuildResult> KernelBuilder::build(const std::vector<Variant>& variants) {
  std::vector<GeneratedKernel> generated;
  for (const Variant& variant : variants) generated.push_back(generate_kernel(spec_, variant, batch_bucket_, arch_));
  std::vector<ObtainedKernel> obtained = obtain_each_kernel(store_, std::move(generated), ObtainOptions{});
  std::vector<BuildResult> results(variants.size());
  for (size_t i = 0; i < variants.size(); ++i) {
    BuildResult& result = results[i];
    if (obtained[i].error) {
      result.status = MeasurementStatus::compile_failed;
      result.reason = first_lines(obtained[i].error->what(), 12);
      continue;
    }
    const KernelBinary& binary = *obtained[i].binary;
    result.kernel_digest = binary.key.digest();
    result.resources = binary.resources;
    const LaunchPlan plan = make_launch_plan(spec_, variants[i], batch_bucket_);
    for (const std::string& name : launched_kernels(plan)) {
      for (const KernelResources& kernel : binary.resources) {
        if (kernel.name != name || kernel.spill_store_bytes + kernel.spill_load_bytes == 0) continue;
        result.status = MeasurementStatus::over_resources;
        result.reason = fmt::format("{} spills ({} bytes stored, {} loaded at {} registers)", name,
                                    kernel.spill_store_bytes, kernel.spill_load_bytes, kernel.registers);
      }
    }
  }
  return results;
}

}  // namespace glqjit
