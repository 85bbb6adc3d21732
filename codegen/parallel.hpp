// Runs independent jobs (NVRTC compiles) on several threads.
#pragma once

#include <cstddef>
#include <functional>

namespace glqjit {

// Calls job(i) for every i in [0, count) on up to `threads` threads (0: one per core) and
// rethrows the first exception once all jobs have stopped.
void parallel_for(size_t count, unsigned threads, const std::function<void(size_t)>& job);

}  // namespace glqjit
