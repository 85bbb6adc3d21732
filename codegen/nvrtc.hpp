// The NVRTC compile of one generated source to a cubin (and PTX on request).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace glqjit {

// What ptxas reported for one kernel of the module.
struct KernelResources {
  std::string name;
  int registers = 0;
  int stack_bytes = 0;
  int spill_store_bytes = 0;
  int spill_load_bytes = 0;
  int shared_bytes = 0;  // static shared memory
};

struct CompileOutput {
  std::vector<uint8_t> cubin;
  std::string ptx;  // empty unless asked for
  std::string log;
  std::vector<KernelResources> resources;
  double compile_ms = 0;
};

// Throws Error(compile_error) with NVRTC's whole log when the source does not compile.
CompileOutput compile_kernel(const std::string& source, const std::vector<std::string>& options, bool want_ptx,
                             const std::string& program_name = "glqjit_kernel.cu");

// Parses ptxas' verbose report (-Xptxas=-v) out of an NVRTC log.
std::vector<KernelResources> parse_resource_usage(const std::string& log);

std::string nvrtc_version();  // "13.0"

}  // namespace glqjit
