// A CUDA graph of forwards built node by node, so that each forward's input and output
// pointers can be changed in the instantiated graph without capturing it again.
#pragma once

#include <cuda.h>

#include <array>
#include <vector>

#include "runtime/linear.hpp"

namespace glqjit {

class ForwardGraph {
 public:
  explicit ForwardGraph(Context& context);
  ~ForwardGraph();
  ForwardGraph(const ForwardGraph&) = delete;
  ForwardGraph& operator=(const ForwardGraph&) = delete;

  // Appends linear(x) -> y after every forward added before; returns its index.
  int add_forward(Linear& linear, CUdeviceptr x, CUdeviceptr y, int batch);
  void instantiate();  // after the last add_forward
  // Points forward `index` at new activations; legal between launches of the instantiated graph.
  void set_io(int index, CUdeviceptr x, CUdeviceptr y);
  void launch(CUstream stream);

 private:
  struct Entry {
    Linear* linear;
    int batch;
    ForwardCalls forward;
    std::array<CUgraphNode, 5> nodes;
  };
  Context& context_;
  CUgraph graph_ = nullptr;
  CUgraphExec exec_ = nullptr;
  std::vector<Entry> entries_;
};

}  // namespace glqjit
