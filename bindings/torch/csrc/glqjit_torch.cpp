// The PyTorch operators over libglqjit: torch.ops.glqjit.linear (one planned linear) and
// torch.ops.glqjit.linear_group (linears that read the same input, outputs side by side), plus
// the Python functions that make and drop plans (glqjit._C).
//
// A plan is made once, at model load, from the checkpoint tensors already on the GPU; the
// operators only look it up and launch on the current stream, so they never compile, allocate
// device memory of glqjit's or synchronize, and are legal inside CUDA graph capture. The output
// comes from PyTorch's allocator (inside capture: the graph's pool), as for any operator.
#include <ATen/cuda/CUDAContext.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/extension.h>

#include <cstdint>
#include <limits>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <variant>
#include <vector>

#include "glqjit/glqjit.hpp"

namespace {

// One quantized linear as its checkpoint holds it (FORMAT.md section 7), tensors on the GPU.
struct ShardArgs {
  int64_t in_features;
  int64_t out_features;
  int64_t bpw;
  std::vector<at::Tensor> stages;
  at::Tensor su;
  at::Tensor sv;
  std::optional<at::Tensor> bias;
  double wscale;
  std::vector<double> inv_resid_scales;
};

enum class PlanKind { linear, group };

using Runner = std::variant<glqjit::QuantizedLinear, glqjit::QuantizedLinearGroup>;

struct Plan {
  Runner runner;
  c10::Device device;
  at::ScalarType dtype;
  int64_t in_features;
  int64_t out_features;  // of a group: the sum over its linears
  int64_t max_batch;
  // Held so that the memory the kernels read in place outlives the plan whatever Python does;
  // the operators compare their `weights` argument with these to catch a plan gone stale.
  std::vector<at::Tensor> weights;
};

// One glqjit context per device, opened at the first plan with the options of configure().
// Contexts and plans are never destroyed at exit: by then the CUDA driver may be shut down, and
// a serving process keeps them for its whole life anyway.
class Registry {
 public:
  static Registry& instance() {
    static Registry* registry = new Registry();
    return *registry;
  }

  void configure(std::optional<std::string> cache_path, bool no_jit, bool read_only_cache) {
    std::lock_guard lock(mutex_);
    TORCH_CHECK(runtimes_.empty(),
                "glqjit.configure() must come before the first plan: the contexts are already open with the "
                "earlier options; call it at start-up, before loading a model");
    cache_path_ = std::move(cache_path);
    no_jit_ = no_jit;
    read_only_cache_ = read_only_cache;
  }

  int64_t add(std::unique_ptr<Plan> plan) {
    std::lock_guard lock(mutex_);
    const int64_t id = next_id_++;
    plans_.emplace(id, std::move(plan));
    return id;
  }

  void remove(int64_t id) {
    std::unique_ptr<Plan> dropped;  // destroyed outside the lock: glqjit frees device memory
    {
      std::lock_guard lock(mutex_);
      const auto found = plans_.find(id);
      if (found == plans_.end()) return;
      dropped = std::move(found->second);
      plans_.erase(found);
    }
  }

  // Plans are never erased while an operator runs them: GLQLinear drops its plan only when the
  // module itself is gone or replans, so the pointer stays valid after the lock is released.
  const Plan& find(int64_t id) {
    std::lock_guard lock(mutex_);
    const auto found = plans_.find(id);
    TORCH_CHECK(found != plans_.end(), "glqjit: plan ", id,
                " does not exist (it was released, or the id does not come from glqjit._C.plan); plan the "
                "GLQLinear again with .plan()");
    return *found->second;
  }

  const glqjit::Runtime& runtime(int device) {
    std::lock_guard lock(mutex_);
    auto found = runtimes_.find(device);
    if (found == runtimes_.end()) {
      glqjit_context_options options{};
      options.cache_path = cache_path_ ? cache_path_->c_str() : nullptr;
      options.no_jit = no_jit_;
      options.read_only_cache = read_only_cache_;
      try {
        found = runtimes_.emplace(device, glqjit::Runtime(device, &options)).first;
      } catch (const glqjit::Error& error) {
        TORCH_CHECK(false, "glqjit: opening a context on GPU ", device, ": ", error.what());
      }
    }
    return found->second;
  }

 private:
  std::mutex mutex_;
  std::optional<std::string> cache_path_;
  bool no_jit_ = false;
  bool read_only_cache_ = false;
  std::map<int, glqjit::Runtime> runtimes_;
  std::unordered_map<int64_t, std::unique_ptr<Plan>> plans_;
  int64_t next_id_ = 1;
};

glqjit_dtype activation_dtype(at::ScalarType dtype) {
  if (dtype == at::kHalf) return GLQJIT_FLOAT16;
  if (dtype == at::kBFloat16) return GLQJIT_BFLOAT16;
  TORCH_CHECK(false, "glqjit: activations must be torch.float16 or torch.bfloat16, not ", dtype,
              "; build the GLQLinear with dtype=torch.float16 or torch.bfloat16");
}

// The checks glqjit_linear_create cannot make: it sees raw pointers, not tensors.
void check_tensor(const at::Tensor& tensor, const std::string& what, at::ScalarType dtype, c10::Device device) {
  TORCH_CHECK(tensor.device() == device, "glqjit: ", what, " is on ", tensor.device(), " but the linear is planned on ",
              device, "; move every tensor of the linear to one GPU first");
  TORCH_CHECK(tensor.scalar_type() == dtype, "glqjit: ", what, " is ", tensor.scalar_type(), " but must be ", dtype,
              " (FORMAT.md section 7)");
  TORCH_CHECK(tensor.is_contiguous(), "glqjit: ", what, " is not contiguous; pass tensor.contiguous()");
}

int checked_int(int64_t value, const char* what) {
  TORCH_CHECK(value >= 0 && value <= std::numeric_limits<int>::max(), "glqjit: ", what, " ", value,
              " is out of range");
  return static_cast<int>(value);
}

Runner make_runner(const glqjit::Runtime& runtime, const std::vector<glqjit_linear_desc>& descs,
                   const std::vector<glqjit_linear_weights>& weights) {
  try {
    if (descs.size() == 1) return Runner(std::in_place_type<glqjit::QuantizedLinear>, runtime, descs[0], weights[0]);
    return Runner(std::in_place_type<glqjit::QuantizedLinearGroup>, runtime, static_cast<int>(descs.size()),
                  descs.data(), weights.data());
  } catch (const glqjit::Error& error) {
    TORCH_CHECK(false, "glqjit.plan: ", error.what());
  }
}

// Plans one linear (one shard) or a group (several), on the device of the first stage tensor.
int64_t plan(const std::vector<ShardArgs>& shards, at::ScalarType dtype, int64_t max_batch, int64_t flags) {
  TORCH_CHECK(!shards.empty(), "glqjit.plan: no linear given");
  const c10::Device device = shards.front().stages.empty() ? c10::Device(c10::kCPU) : shards.front().stages[0].device();
  TORCH_CHECK(device.is_cuda(), "glqjit.plan: the checkpoint tensors are on ", device,
              "; move the module to a CUDA device (module.cuda()) before planning");
  const int64_t in_features = shards.front().in_features;
  int64_t out_features = 0;
  std::vector<at::Tensor> held;
  std::vector<glqjit_linear_desc> descs;
  std::vector<glqjit_linear_weights> weights;
  for (size_t i = 0; i < shards.size(); ++i) {
    const ShardArgs& shard = shards[i];
    const std::string name = shards.size() == 1 ? "the linear" : "linear " + std::to_string(i) + " of the group";
    TORCH_CHECK(shard.in_features == in_features, "glqjit.plan: ", name, " has ", shard.in_features,
                " in_features but linear 0 has ", in_features, "; a group's linears read the same input");
    TORCH_CHECK(shard.stages.size() >= 1 && shard.stages.size() <= 4, "glqjit.plan: ", name, " has ",
                shard.stages.size(), " stage tensors; a GLQ linear has 1 to 4 (FORMAT.md section 4)");
    TORCH_CHECK(shard.inv_resid_scales.size() + 1 == shard.stages.size(), "glqjit.plan: ", name, " has ",
                shard.stages.size(), " stages but ", shard.inv_resid_scales.size(),
                " inverse residual scales; pass one per stage after the first");
    glqjit_linear_desc desc{};
    desc.in_features = shard.in_features;
    desc.out_features = shard.out_features;
    desc.bpw = checked_int(shard.bpw, "bpw");
    desc.dtype = activation_dtype(dtype);
    desc.max_batch = checked_int(max_batch, "max_batch");
    desc.flags = static_cast<uint32_t>(flags);
    glqjit_linear_weights w{};
    for (size_t s = 0; s < shard.stages.size(); ++s) {
      check_tensor(shard.stages[s], name + " stage " + std::to_string(s), at::kLong, device);
      w.stages[s] = shard.stages[s].data_ptr();
      held.push_back(shard.stages[s]);
    }
    check_tensor(shard.su, name + " SU", at::kHalf, device);
    check_tensor(shard.sv, name + " SV", at::kHalf, device);
    w.su = shard.su.data_ptr();
    w.sv = shard.sv.data_ptr();
    held.push_back(shard.su);
    held.push_back(shard.sv);
    if (shard.bias) {
      check_tensor(*shard.bias, name + " bias", dtype, device);
      w.bias = shard.bias->data_ptr();
      held.push_back(*shard.bias);
    }
    w.wscale = static_cast<float>(shard.wscale);
    for (size_t s = 0; s < shard.inv_resid_scales.size(); ++s) {
      w.inv_resid_scale[s] = static_cast<float>(shard.inv_resid_scales[s]);
    }
    out_features += shard.out_features;
    descs.push_back(desc);
    weights.push_back(w);
  }
  const glqjit::Runtime& runtime = Registry::instance().runtime(device.index());
  return Registry::instance().add(std::make_unique<Plan>(
      Plan{make_runner(runtime, descs, weights), device, dtype, in_features, out_features, max_batch, std::move(held)}));
}

at::Tensor forward(PlanKind kind, const at::Tensor& x, const std::vector<at::Tensor>& weights, int64_t plan_id,
                   int64_t out_features) {
  const Plan& plan = Registry::instance().find(plan_id);
  const bool is_group = std::holds_alternative<glqjit::QuantizedLinearGroup>(plan.runner);
  TORCH_CHECK(is_group == (kind == PlanKind::group), "glqjit: plan ", plan_id, " is ",
              is_group ? "a group; call torch.ops.glqjit.linear_group" : "one linear; call torch.ops.glqjit.linear");
  TORCH_CHECK(out_features == plan.out_features, "glqjit: out_features ", out_features, " but plan ", plan_id,
              " has ", plan.out_features);
  TORCH_CHECK(weights.size() == plan.weights.size(), "glqjit: ", weights.size(), " weight tensors but plan ", plan_id,
              " was made from ", plan.weights.size());
  for (size_t i = 0; i < weights.size(); ++i) {
    TORCH_CHECK(weights[i].data_ptr() == plan.weights[i].data_ptr(), "glqjit: weight tensor ", i, " of plan ", plan_id,
                " is not the one it was planned with (the module was moved or its buffers replaced after planning); "
                "call .plan() on the GLQLinear again");
  }
  TORCH_CHECK(x.device() == plan.device, "glqjit: x is on ", x.device(), " but the linear is planned on ", plan.device);
  TORCH_CHECK(x.scalar_type() == plan.dtype, "glqjit: x is ", x.scalar_type(), " but the linear is planned for ",
              plan.dtype, "; cast the input, or build the GLQLinear with dtype=", x.scalar_type());
  TORCH_CHECK(x.dim() >= 1 && x.size(-1) == plan.in_features, "glqjit: x has shape ", x.sizes(),
              " but the linear reads ", plan.in_features, " features in its last dimension");
  const int64_t batch = x.numel() / plan.in_features;
  TORCH_CHECK(batch <= plan.max_batch, "glqjit: x holds ", batch, " rows but the linear is planned for at most ",
              plan.max_batch, "; plan it with a larger max_batch (GLQLinear(max_batch=...) or load_glq_checkpoint(..., "
              "max_batch=...))");
  std::vector<int64_t> out_shape(x.sizes().begin(), x.sizes().end());
  out_shape.back() = out_features;
  at::Tensor y = at::empty(out_shape, x.options());
  if (batch == 0) return y;
  // glqjit reads rows 16-byte aligned and packed; a sliced input gets a packed copy.
  const bool aligned = reinterpret_cast<uintptr_t>(x.data_ptr()) % 16 == 0;
  const at::Tensor packed = x.is_contiguous() && aligned ? x : x.clone(at::MemoryFormat::Contiguous);
  const c10::cuda::CUDAGuard guard(x.device());
  void* stream = at::cuda::getCurrentCUDAStream(x.device().index()).stream();
  try {
    std::visit([&](const auto& runner) { runner.forward(packed.data_ptr(), y.data_ptr(), static_cast<int>(batch), stream); },
               plan.runner);
  } catch (const glqjit::Error& error) {
    TORCH_CHECK(false, "glqjit: ", error.what());
  }
  return y;
}

at::Tensor linear_cuda(const at::Tensor& x, const std::vector<at::Tensor>& weights, int64_t plan,
                       int64_t out_features) {
  return forward(PlanKind::linear, x, weights, plan, out_features);
}

at::Tensor linear_group_cuda(const at::Tensor& x, const std::vector<at::Tensor>& weights, int64_t plan,
                             int64_t out_features) {
  return forward(PlanKind::group, x, weights, plan, out_features);
}

}  // namespace

TORCH_LIBRARY(glqjit, m) {
  m.def("linear(Tensor x, Tensor[] weights, int plan, int out_features) -> Tensor");
  m.def("linear_group(Tensor x, Tensor[] weights, int plan, int out_features) -> Tensor");
}

TORCH_LIBRARY_IMPL(glqjit, CUDA, m) {
  m.impl("linear", &linear_cuda);
  m.impl("linear_group", &linear_group_cuda);
}

PYBIND11_MODULE(TORCH_EXTENSION_NAME, module) {
  module.doc() = "libglqjit's plans for torch.ops.glqjit.linear and linear_group";
  pybind11::class_<ShardArgs>(module, "Shard")
      .def(pybind11::init<int64_t, int64_t, int64_t, std::vector<at::Tensor>, at::Tensor, at::Tensor,
                          std::optional<at::Tensor>, double, std::vector<double>>(),
           pybind11::arg("in_features"), pybind11::arg("out_features"), pybind11::arg("bpw"), pybind11::arg("stages"),
           pybind11::arg("su"), pybind11::arg("sv"), pybind11::arg("bias"), pybind11::arg("wscale"),
           pybind11::arg("inv_resid_scales"));
  module.def("plan", &plan, pybind11::arg("shards"), pybind11::arg("dtype"), pybind11::arg("max_batch"),
             pybind11::arg("flags"),
             "Plans one linear (one shard) or a group (several) and returns the plan's id for the operators.");
  module.def(
      "release", [](int64_t id) { Registry::instance().remove(id); }, pybind11::arg("plan"),
      "Drops a plan and the device memory it owns.");
  module.def(
      "configure",
      [](std::optional<std::string> cache_path, bool no_jit, bool read_only_cache) {
        Registry::instance().configure(std::move(cache_path), no_jit, read_only_cache);
      },
      pybind11::arg("cache_path"), pybind11::arg("no_jit"), pybind11::arg("read_only_cache"));
  module.def("version", &glqjit_version, "libglqjit's version");
  module.attr("FLAG_LEGACY_SINGLE_BLOCK_RHT") = static_cast<int64_t>(GLQJIT_LINEAR_LEGACY_SINGLE_BLOCK_RHT);
  module.attr("FLAG_ALLOW_NONDETERMINISTIC") = static_cast<int64_t>(GLQJIT_LINEAR_ALLOW_NONDETERMINISTIC);
  module.attr("FLAG_LAZY_BUCKETS") = static_cast<int64_t>(GLQJIT_LINEAR_LAZY_BUCKETS);
}
