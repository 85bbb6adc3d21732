// A test hook that makes chosen NVRTC compiles, module loads or device allocations fail the way
// the real ones can, so that tests prove each failure gives its documented status and message
// and leaves the library usable (docs/reliability.md, "Injected failures").
//
// GLQJIT_INJECT_FAULT holds comma-separated points, each `POINT` (every call there fails) or
// `POINT@N` (calls N, 2N, 3N, ... fail, counted from when the hook first saw the variable's
// present value, so that a test repeating an operation of N calls fails each at its last):
// nvrtc_compile, module_load, device_alloc. Unset or empty, nothing fails.
#pragma once

namespace glqjit {

enum class FaultPoint { nvrtc_compile, module_load, device_alloc };

// Whether this call at `point` is to fail; says so in a warning when it is.
bool fault_injected(FaultPoint point);

}  // namespace glqjit
