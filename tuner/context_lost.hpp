// Thrown by the GPU gate and timer when a candidate's failure left the CUDA context unusable
// (a fault in a kernel is sticky): nothing after it in this process can be trusted, so the
// tuning loop records that candidate as launch_failed and stops the run, which a new process
// resumes.
#pragma once

#include "glqjit/error.hpp"

namespace glqjit {

class ContextLost : public Error {
 public:
  explicit ContextLost(const std::string& message) : Error(Status::cuda_error, message) {}
};

}  // namespace glqjit
