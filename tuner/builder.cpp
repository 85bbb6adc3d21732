#include "tuner/builder.hpp"

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
    result.kernel_digest = obtained[i].binary->key.digest();
    result.resources = obtained[i].binary->resources;
  }
  return results;
}

}  // namespace glqjit
