// A kernel set's cubin: looked up in the store by its key, or generated, compiled and stored.
// Needs no GPU, so glq-dump and ahead-of-time tuning use it as the runtime does.
#pragma once

#include <string>
#include <vector>

#include "cache/key.hpp"
#include "cache/store.hpp"
#include "codegen/nvrtc.hpp"
#include "codegen/source.hpp"

namespace glqjit {

struct KernelBinary {
  GeneratedKernel generated;
  KernelKey key;
  CompiledKernel compiled;
  std::vector<KernelResources> resources;  // per kernel of the module, from ptxas' report
  bool from_store = false;
  double lookup_ms = 0;  // time to build the key and look it up in the store (found or not)
};

struct ObtainOptions {
  bool no_jit = false;    // a store miss is Error(no_jit) instead of a compile
  bool want_ptx = false;  // the store keeps no PTX, so this compiles
};

KernelKey make_kernel_key(const GeneratedKernel& generated);

// Compiles the misses in parallel and stores them (unless the store is read-only or null).
// Logs one line before compiling. Throws Error(compile_error / no_jit / cache_error).
std::vector<KernelBinary> obtain_kernels(Store* store, std::vector<GeneratedKernel> generated,
                                         const ObtainOptions& options);

}  // namespace glqjit
