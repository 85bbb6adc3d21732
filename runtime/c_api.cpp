// The C ABI (include/glqjit/glqjit.h) over the runtime's C++ objects. No exception crosses it:
// each entry point returns a status and leaves a message in glqjit_last_error().
#include "glqjit/glqjit.h"

#include <fmt/format.h>

#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

#include "glqjit/error.hpp"
#include "runtime/graph.hpp"
#include "runtime/linear.hpp"
#include "runtime/linear_group.hpp"

struct glqjit_context {
  std::shared_ptr<glqjit::Context> context;
};

struct glqjit_linear {
  std::shared_ptr<glqjit::Context> context;  // keeps the context alive while the linear lives
  std::unique_ptr<glqjit::Linear> linear;
};

struct glqjit_linear_group {
  std::shared_ptr<glqjit::Context> context;
  std::unique_ptr<glqjit::LinearGroup> group;
};

struct glqjit_graph {
  std::shared_ptr<glqjit::Context> context;
  std::unique_ptr<glqjit::ForwardGraph> graph;
};

namespace {

using glqjit::Error;
using glqjit::Status;

thread_local std::string last_error;

// Handles this library made and has not destroyed, so a stale or foreign pointer is an error
// message rather than a crash.
class LiveHandles {
 public:
  void add(const void* handle) {
    std::lock_guard lock(mutex_);
    handles_.insert(handle);
  }
  void remove(const void* handle) {
    std::lock_guard lock(mutex_);
    handles_.erase(handle);
  }
  bool contains(const void* handle) {
    std::lock_guard lock(mutex_);
    return handles_.count(handle) != 0;
  }

 private:
  std::mutex mutex_;
  std::unordered_set<const void*> handles_;
};

LiveHandles& live() {
  static LiveHandles handles;
  return handles;
}

template <class Handle>
Handle* require_live(Handle* handle, const char* what) {
  if (handle == nullptr) throw Error(Status::invalid_argument, fmt::format("{} is a null pointer", what));
  if (!live().contains(handle)) {
    throw Error(Status::invalid_argument,
                fmt::format("{} ({}) is not a live glqjit object: it was destroyed or never created",
                            what, static_cast<const void*>(handle)));
  }
  return handle;
}

void require_out(const void* out, const char* what) {
  if (out == nullptr) throw Error(Status::invalid_argument, fmt::format("{} (the result pointer) is null", what));
}

template <class F>
glqjit_status guarded(F&& body) {
  try {
    body();
    last_error.clear();
    return GLQJIT_OK;
  } catch (const Error& error) {
    last_error = error.what();
    return static_cast<glqjit_status>(error.status());
  } catch (const std::bad_alloc&) {
    last_error = "out of host memory";
    return GLQJIT_INTERNAL;
  } catch (const std::exception& error) {
    last_error = fmt::format("internal error: {}", error.what());
    return GLQJIT_INTERNAL;
  }
}

glqjit::LinearSpec spec_from(const glqjit_linear_desc& desc, const glqjit_linear_weights& w) {
  if (desc.dtype != GLQJIT_FLOAT16 && desc.dtype != GLQJIT_BFLOAT16) {
    throw Error(Status::invalid_argument,
                fmt::format("dtype {} is not GLQJIT_FLOAT16 (0) or GLQJIT_BFLOAT16 (1)", int(desc.dtype)));
  }
  const uint32_t known = GLQJIT_LINEAR_LEGACY_SINGLE_BLOCK_RHT | GLQJIT_LINEAR_ALLOW_NONDETERMINISTIC |
                         GLQJIT_LINEAR_LAZY_BUCKETS;
  if (desc.flags & ~known) {
    throw Error(Status::invalid_argument, fmt::format("unknown flags 0x{:x} in glqjit_linear_desc", desc.flags & ~known));
  }
  glqjit::LinearSpec spec;
  spec.in_features = desc.in_features;
  spec.out_features = desc.out_features;
  spec.bpw = desc.bpw;
  spec.dtype = desc.dtype == GLQJIT_BFLOAT16 ? glqjit::DType::bf16 : glqjit::DType::f16;
  spec.has_bias = w.bias != nullptr;
  spec.legacy_single_block = desc.flags & GLQJIT_LINEAR_LEGACY_SINGLE_BLOCK_RHT;
  spec.geometry();
  spec.recipe();
  return spec;
}

glqjit::DeviceWeights weights_from(const glqjit_linear_weights& w) {
  glqjit::DeviceWeights weights;
  for (int s = 0; s < 4; ++s) weights.stages[s] = reinterpret_cast<CUdeviceptr>(w.stages[s]);
  weights.su = reinterpret_cast<CUdeviceptr>(w.su);
  weights.sv = reinterpret_cast<CUdeviceptr>(w.sv);
  weights.bias = reinterpret_cast<CUdeviceptr>(w.bias);
  weights.wscale = w.wscale;
  for (int s = 0; s < 3; ++s) weights.inv_resid_scale[s] = w.inv_resid_scale[s];
  return weights;
}

glqjit::LinearOptions options_from(const glqjit_linear_desc& desc) {
  glqjit::LinearOptions options;
  options.max_batch = desc.max_batch;
  options.lazy_buckets = desc.flags & GLQJIT_LINEAR_LAZY_BUCKETS;
  options.allow_nondeterministic = desc.flags & GLQJIT_LINEAR_ALLOW_NONDETERMINISTIC;
  return options;
}

// What the linears of a group must share with linear 0: the input they read (in_features,
// dtype) and what their forwards and plans take (max_batch, flags).
void require_same_group_fields(const glqjit_linear_desc& first, const glqjit_linear_desc& desc, int index) {
  const auto differs = [&](const char* field, auto value, auto first_value) {
    throw Error(Status::invalid_argument,
                fmt::format("descs[{}] differs from descs[0] in {} ({}, not {}): the linears of a group share "
                            "in_features, dtype, max_batch and flags; give them the same {}, or create the one that "
                            "differs with glqjit_linear_create or in another group",
                            index, field, value, first_value, field));
  };
  if (desc.in_features != first.in_features) differs("in_features", desc.in_features, first.in_features);
  if (desc.dtype != first.dtype) differs("dtype", int(desc.dtype), int(first.dtype));
  if (desc.max_batch != first.max_batch) differs("max_batch", desc.max_batch, first.max_batch);
  if (desc.flags != first.flags) {
    differs("flags", fmt::format("0x{:x}", desc.flags), fmt::format("0x{:x}", first.flags));
  }
}

}  // namespace

extern "C" {

const char* glqjit_last_error(void) { return last_error.c_str(); }

const char* glqjit_version(void) { return GLQJIT_VERSION; }

glqjit_status glqjit_context_create(int device, const glqjit_context_options* opt, glqjit_context** out) {
  return guarded([&] {
    require_out(out, "out");
    *out = nullptr;
    glqjit::ContextOptions options;
    if (opt != nullptr) {
      options.cache_path = opt->cache_path ? opt->cache_path : "";
      options.no_jit = opt->no_jit != 0;
      options.read_only_cache = opt->read_only_cache != 0;
    }
    auto handle = std::make_unique<glqjit_context>();
    handle->context = std::make_shared<glqjit::Context>(device, options);
    live().add(handle.get());
    *out = handle.release();
  });
}

void glqjit_context_destroy(glqjit_context* ctx) {
  if (ctx == nullptr || !live().contains(ctx)) return;
  live().remove(ctx);
  delete ctx;
}

glqjit_status glqjit_linear_create(glqjit_context* ctx, const glqjit_linear_desc* desc, const glqjit_linear_weights* w,
                                   glqjit_linear** out) {
  return guarded([&] {
    require_out(out, "out");
    *out = nullptr;
    require_live(ctx, "ctx");
    if (desc == nullptr) throw Error(Status::invalid_argument, "desc is a null pointer");
    if (w == nullptr) throw Error(Status::invalid_argument, "w (the weights) is a null pointer");
    const glqjit::LinearSpec spec = spec_from(*desc, *w);
    auto handle = std::make_unique<glqjit_linear>();
    handle->context = ctx->context;
    handle->linear = std::make_unique<glqjit::Linear>(*ctx->context, spec, weights_from(*w), options_from(*desc));
    live().add(handle.get());
    *out = handle.release();
  });
}

glqjit_status glqjit_linear_forward(glqjit_linear* lin, const void* x, void* y, int batch, void* stream) {
  return guarded([&] {
    require_live(lin, "lin");
    lin->linear->forward(reinterpret_cast<CUdeviceptr>(x), reinterpret_cast<CUdeviceptr>(y), batch,
                         static_cast<CUstream>(stream));
  });
}

void glqjit_linear_destroy(glqjit_linear* lin) {
  if (lin == nullptr || !live().contains(lin)) return;
  live().remove(lin);
  delete lin;
}

glqjit_status glqjit_linear_group_create(glqjit_context* ctx, int count, const glqjit_linear_desc* descs,
                                         const glqjit_linear_weights* weights, glqjit_linear_group** out) {
  return guarded([&] {
    require_out(out, "out");
    *out = nullptr;
    require_live(ctx, "ctx");
    if (count < 1 || count > glqjit::kMaxGroupShards) {
      throw Error(Status::invalid_argument,
                  fmt::format("count {} is outside 1..{} (the linears one group holds): pass at least one linear, and "
                              "split more than {} into several groups",
                              count, glqjit::kMaxGroupShards, glqjit::kMaxGroupShards));
    }
    if (descs == nullptr) throw Error(Status::invalid_argument, "descs is a null pointer");
    if (weights == nullptr) throw Error(Status::invalid_argument, "weights is a null pointer");
    std::vector<glqjit::LinearSpec> specs;
    std::vector<glqjit::DeviceWeights> device_weights;
    for (int k = 0; k < count; ++k) {
      if (k > 0) require_same_group_fields(descs[0], descs[k], k);
      try {
        specs.push_back(spec_from(descs[k], weights[k]));
      } catch (const Error& error) {
        throw Error(error.status(), fmt::format("descs[{}]: {}", k, error.what()));
      }
      device_weights.push_back(weights_from(weights[k]));
    }
    auto handle = std::make_unique<glqjit_linear_group>();
    handle->context = ctx->context;
    handle->group = std::make_unique<glqjit::LinearGroup>(*ctx->context, specs, device_weights, options_from(descs[0]));
    live().add(handle.get());
    *out = handle.release();
  });
}

glqjit_status glqjit_linear_group_forward(glqjit_linear_group* group, const void* x, void* y, int batch,
                                          void* stream) {
  return guarded([&] {
    require_live(group, "group");
    group->group->forward(reinterpret_cast<CUdeviceptr>(x), reinterpret_cast<CUdeviceptr>(y), batch,
                          static_cast<CUstream>(stream));
  });
}

void glqjit_linear_group_destroy(glqjit_linear_group* group) {
  if (group == nullptr || !live().contains(group)) return;
  live().remove(group);
  delete group;
}

glqjit_status glqjit_graph_create(glqjit_context* ctx, glqjit_graph** out) {
  return guarded([&] {
    require_out(out, "out");
    *out = nullptr;
    require_live(ctx, "ctx");
    auto handle = std::make_unique<glqjit_graph>();
    handle->context = ctx->context;
    handle->graph = std::make_unique<glqjit::ForwardGraph>(*ctx->context);
    live().add(handle.get());
    *out = handle.release();
  });
}

glqjit_status glqjit_graph_add_forward(glqjit_graph* graph, glqjit_linear* lin, const void* x, void* y, int batch,
                                       int* index_out) {
  return guarded([&] {
    require_live(graph, "graph");
    require_live(lin, "lin");
    const int index = graph->graph->add_forward(*lin->linear, reinterpret_cast<CUdeviceptr>(x),
                                                reinterpret_cast<CUdeviceptr>(y), batch);
    if (index_out != nullptr) *index_out = index;
  });
}

glqjit_status glqjit_graph_instantiate(glqjit_graph* graph) {
  return guarded([&] { require_live(graph, "graph")->graph->instantiate(); });
}

glqjit_status glqjit_graph_set_io(glqjit_graph* graph, int index, const void* x, void* y) {
  return guarded([&] {
    require_live(graph, "graph")->graph->set_io(index, reinterpret_cast<CUdeviceptr>(x), reinterpret_cast<CUdeviceptr>(y));
  });
}

glqjit_status glqjit_graph_launch(glqjit_graph* graph, void* stream) {
  return guarded([&] { require_live(graph, "graph")->graph->launch(static_cast<CUstream>(stream)); });
}

void glqjit_graph_destroy(glqjit_graph* graph) {
  if (graph == nullptr || !live().contains(graph)) return;
  live().remove(graph);
  delete graph;
}

}  // extern "C"
