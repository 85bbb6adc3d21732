// What glqjit reads from the environment besides GLQJIT_LOG (support/log.cpp).
#pragma once

namespace glqjit {

// Whether the variable is set to anything but empty or "0" (GLQJIT_NO_JIT=1 and the like).
bool environment_flag(const char* name);

}  // namespace glqjit
