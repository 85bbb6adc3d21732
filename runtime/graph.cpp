#include "runtime/graph.hpp"

#include <fmt/format.h>

#include "glqjit/error.hpp"
#include "runtime/driver.hpp"

namespace glqjit {
namespace {

CUDA_KERNEL_NODE_PARAMS node_params(KernelCall& call, KernelCall::Params& params) {
  params = call.params();
  CUDA_KERNEL_NODE_PARAMS p{};
  p.func = call.function;
  call.describe_shape(p);
  p.kernelParams = params.data();
  return p;
}

}  // namespace

ForwardGraph::ForwardGraph(Context& context) : context_(context) {
  ScopedContext scope(context.cu());
  check_cuda(driver().cuGraphCreate(&graph_, 0), "cuGraphCreate");
}

ForwardGraph::~ForwardGraph() {
  try {
    ScopedContext scope(context_.cu());
    if (exec_ != nullptr) driver().cuGraphExecDestroy(exec_);
    driver().cuGraphDestroy(graph_);
  } catch (const Error&) {
    // The context is gone (driver shutdown), and its graphs with it.
  }
}

int ForwardGraph::add_forward(Linear& linear, CUdeviceptr x, CUdeviceptr y, int batch) {
  if (exec_ != nullptr) {
    throw Error(Status::invalid_argument, "add_forward after instantiate: build a new graph to add forwards");
  }
  if (&linear.context() != &context_) {
    throw Error(Status::invalid_argument, "the linear belongs to another context than the graph");
  }
  ScopedContext scope(context_.cu());
  Entry entry{&linear, batch, linear.forward_calls(x, y, batch, nullptr), {}};
  CUgraphNode previous = entries_.empty() ? nullptr : entries_.back().nodes[entries_.back().forward.count - 1];
  for (int k = 0; k < entry.forward.count; ++k) {
    KernelCall::Params params;
    CUDA_KERNEL_NODE_PARAMS p = node_params(entry.forward.calls[k], params);
    check_cuda(driver().cuGraphAddKernelNode(&entry.nodes[k], graph_, previous ? &previous : nullptr, previous ? 1 : 0, &p),
               "cuGraphAddKernelNode");
    previous = entry.nodes[k];
  }
  entries_.push_back(entry);
  return int(entries_.size()) - 1;
}

void ForwardGraph::instantiate() {
  ScopedContext scope(context_.cu());
  if (exec_ != nullptr) driver().cuGraphExecDestroy(exec_);
  exec_ = nullptr;
  check_cuda(driver().cuGraphInstantiateWithFlags(&exec_, graph_, 0), "cuGraphInstantiateWithFlags");
}

void ForwardGraph::set_io(int index, CUdeviceptr x, CUdeviceptr y) {
  if (index < 0 || index >= int(entries_.size())) {
    throw Error(Status::invalid_argument, fmt::format("forward index {} is not in this graph ({} forwards)", index,
                                                      entries_.size()));
  }
  if (exec_ == nullptr) throw Error(Status::invalid_argument, "set_io before instantiate");
  ScopedContext scope(context_.cu());
  Entry& entry = entries_[index];
  entry.forward = entry.linear->forward_calls(x, y, entry.batch, nullptr);
  for (int k = 0; k < entry.forward.count; ++k) {
    KernelCall& call = entry.forward.calls[k];
    if (!call.reads_x && !call.writes_y) continue;  // the others keep their workspace pointers
    KernelCall::Params params;
    CUDA_KERNEL_NODE_PARAMS p = node_params(call, params);
    check_cuda(driver().cuGraphExecKernelNodeSetParams(exec_, entry.nodes[k], &p), "cuGraphExecKernelNodeSetParams");
  }
}

void ForwardGraph::launch(CUstream stream) {
  if (exec_ == nullptr) throw Error(Status::invalid_argument, "launch before instantiate");
  ScopedContext scope(context_.cu());
  check_cuda(driver().cuGraphLaunch(exec_, stream), "cuGraphLaunch");
}

}  // namespace glqjit
