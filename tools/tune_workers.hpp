// glq-tune --devices: one worker process per listed GPU, each this same program with the same
// command line plus --device N --worker, sharing the run's keys through the store
// (tuner/shared_run.hpp).
#pragma once

#include <optional>
#include <string>
#include <vector>

namespace glqjit {

// "0,1,3" (a device may repeat: two workers then share that GPU); nullopt and `why` otherwise.
std::optional<std::vector<int>> parse_device_list(const std::string& text, std::string& why);

// The command line a worker gets: `arguments` (argv[1..]) without --devices and --json (and their
// values), then --device N --worker.
std::vector<std::string> worker_arguments(const std::vector<std::string>& arguments, int device);

struct WorkerEnd {
  int device = 0;
  bool finished = false;  // exited with status 0
  std::string how;        // "finished", "exited with status 1", "was killed by signal 9 (Killed)"
};

// Starts a worker per device (this executable, worker_arguments of each), waits for all, and
// says how each ended. Throws Error(internal) when a worker cannot be started.
std::vector<WorkerEnd> run_workers(const std::vector<std::string>& arguments, const std::vector<int>& devices);

}  // namespace glqjit
