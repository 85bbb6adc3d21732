// A kernel set's cubin: looked up in the store by its key, or generated, compiled and stored.
// Needs no GPU, so glq-dump and ahead-of-time tuning use it as the runtime does.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "cache/key.hpp"
#include "cache/store.hpp"
#include "codegen/nvrtc.hpp"
#include "codegen/source.hpp"
#include "glqjit/error.hpp"

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

// One kernel set of obtain_each_kernel: its binary, or why there is none.
struct ObtainedKernel {
  std::optional<KernelBinary> binary;
  std::optional<Error> error;  // compile_error (with NVRTC's log) or no_jit
};

// Compiles the misses in parallel and stores each one that compiled (unless the store is
// read-only or null); a kernel set that fails is that entry's error, and the others go on (the
// tuner builds many candidates at once). Logs one line before compiling. Each miss compiles under
// its key's compile lock (cache/key_lock.hpp) and only when the store still lacks it once the
// lock is held, so processes that miss a kernel at once compile it once. A store write that fails
// (a full disk) logs one warning naming the store and why, and the kernels are returned all the
// same. Throws Error(cache_error) when a store lookup fails.
std::vector<ObtainedKernel> obtain_each_kernel(Store* store, std::vector<GeneratedKernel> generated,
                                               const ObtainOptions& options);

// obtain_each_kernel, throwing the first entry's error (in the order given).
std::vector<KernelBinary> obtain_kernels(Store* store, std::vector<GeneratedKernel> generated,
                                         const ObtainOptions& options);

}  // namespace glqjit
