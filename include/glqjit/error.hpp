// The one error type of glqjit's C++ layers. Every failure names what was wrong and what to do;
// the C ABI turns it into a glqjit_status and a thread-local message.
#pragma once

#include <stdexcept>
#include <string>

#include "glqjit/glqjit.h"

namespace glqjit {

enum class Status : int {
  ok = GLQJIT_OK,
  invalid_argument = GLQJIT_INVALID_ARGUMENT,
  unsupported_shape = GLQJIT_UNSUPPORTED_SHAPE,
  unsupported_arch = GLQJIT_UNSUPPORTED_ARCH,
  no_driver = GLQJIT_NO_DRIVER,
  cuda_error = GLQJIT_CUDA_ERROR,
  compile_error = GLQJIT_COMPILE_ERROR,
  cache_error = GLQJIT_CACHE_ERROR,
  capture_in_progress = GLQJIT_CAPTURE_IN_PROGRESS,
  no_jit = GLQJIT_NO_JIT,
  internal = GLQJIT_INTERNAL,
};

class Error : public std::runtime_error {
 public:
  Error(Status status, const std::string& message) : std::runtime_error(message), status_(status) {}
  Status status() const noexcept { return status_; }

 private:
  Status status_;
};

}  // namespace glqjit
