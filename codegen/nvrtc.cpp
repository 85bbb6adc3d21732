#include "codegen/nvrtc.hpp"

#include <nvrtc.h>

#include <chrono>
#include <fmt/format.h>
#include <regex>
#include <sstream>

#include "glqjit/error.hpp"
#include "support/fault_injection.hpp"

namespace glqjit {
namespace {

// Owns one nvrtcProgram so that every exit path destroys it.
class Program {
 public:
  Program(const std::string& source, const std::string& name) {
    check(nvrtcCreateProgram(&program_, source.c_str(), name.c_str(), 0, nullptr, nullptr), "nvrtcCreateProgram");
  }
  ~Program() { nvrtcDestroyProgram(&program_); }
  Program(const Program&) = delete;
  Program& operator=(const Program&) = delete;
  nvrtcProgram get() const { return program_; }

  static void check(nvrtcResult result, const char* what) {
    if (result != NVRTC_SUCCESS) {
      throw Error(Status::compile_error, fmt::format("{} failed: {}", what, nvrtcGetErrorString(result)));
    }
  }

 private:
  nvrtcProgram program_ = nullptr;
};

std::string program_log(nvrtcProgram program) {
  size_t size = 0;
  Program::check(nvrtcGetProgramLogSize(program, &size), "nvrtcGetProgramLogSize");
  std::string log(size, '\0');
  Program::check(nvrtcGetProgramLog(program, log.data()), "nvrtcGetProgramLog");
  while (!log.empty() && log.back() == '\0') log.pop_back();
  return log;
}

}  // namespace

std::string nvrtc_version() {
  int major = 0, minor = 0;
  nvrtcVersion(&major, &minor);
  return fmt::format("{}.{}", major, minor);
}

std::vector<KernelResources> parse_resource_usage(const std::string& log) {
  static const std::regex entry(R"(Compiling entry function '([^']+)')");
  static const std::regex frame(R"((\d+) bytes stack frame, (\d+) bytes spill stores, (\d+) bytes spill loads)");
  static const std::regex used(R"(Used (\d+) registers)");
  static const std::regex smem(R"((\d+) bytes smem)");
  std::vector<KernelResources> kernels;
  std::istringstream lines(log);
  std::string line;
  std::smatch match;
  while (std::getline(lines, line)) {
    if (std::regex_search(line, match, entry)) {
      kernels.push_back({match[1].str()});
    } else if (kernels.empty()) {
      continue;
    } else if (std::regex_search(line, match, frame)) {
      kernels.back().stack_bytes = std::stoi(match[1].str());
      kernels.back().spill_store_bytes = std::stoi(match[2].str());
      kernels.back().spill_load_bytes = std::stoi(match[3].str());
    } else if (std::regex_search(line, match, used)) {
      kernels.back().registers = std::stoi(match[1].str());
      if (std::regex_search(line, match, smem)) kernels.back().shared_bytes = std::stoi(match[1].str());
    }
  }
  return kernels;
}

CompileOutput compile_kernel(const std::string& source, const std::vector<std::string>& options, bool want_ptx,
                             const std::string& program_name) {
  const auto start = std::chrono::steady_clock::now();
  Program program(source, program_name);
  std::vector<const char*> option_pointers;
  for (const std::string& option : options) option_pointers.push_back(option.c_str());
  const nvrtcResult result = fault_injected(FaultPoint::nvrtc_compile)
                                 ? NVRTC_ERROR_BUILTIN_OPERATION_FAILURE
                                 : nvrtcCompileProgram(program.get(), int(option_pointers.size()), option_pointers.data());
  CompileOutput output;
  output.log = program_log(program.get());
  if (result != NVRTC_SUCCESS) {
    throw Error(Status::compile_error,
                fmt::format("NVRTC {} could not compile {} ({}); this is a glqjit bug, please report it with this "
                            "log:\n{}",
                            nvrtc_version(), program_name, nvrtcGetErrorString(result), output.log));
  }
  size_t size = 0;
  Program::check(nvrtcGetCUBINSize(program.get(), &size), "nvrtcGetCUBINSize");
  output.cubin.resize(size);
  Program::check(nvrtcGetCUBIN(program.get(), reinterpret_cast<char*>(output.cubin.data())), "nvrtcGetCUBIN");
  if (want_ptx) {
    Program::check(nvrtcGetPTXSize(program.get(), &size), "nvrtcGetPTXSize");
    output.ptx.assign(size, '\0');
    Program::check(nvrtcGetPTX(program.get(), output.ptx.data()), "nvrtcGetPTX");
    while (!output.ptx.empty() && output.ptx.back() == '\0') output.ptx.pop_back();
  }
  output.resources = parse_resource_usage(output.log);
  output.compile_ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  return output;
}

}  // namespace glqjit
