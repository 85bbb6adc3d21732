#include "tools/tune_workers.hpp"

#include <fmt/format.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstring>
#include <string_view>

#include "glqjit/error.hpp"

extern char** environ;

namespace glqjit {
namespace {

constexpr int kMaxDeviceOrdinal = 1023;

// Options whose value a worker must not inherit: the device list (each worker has one device)
// and the report (the parent writes it once all workers are done).
bool is_parent_only(std::string_view argument, bool& takes_next) {
  for (std::string_view option : {"--devices", "--json"}) {
    if (argument == option) {
      takes_next = true;
      return true;
    }
    if (argument.size() > option.size() && argument.substr(0, option.size()) == option &&
        argument[option.size()] == '=') {
      return true;
    }
  }
  return false;
}

std::string describe_status(int status) {
  if (WIFEXITED(status)) {
    return WEXITSTATUS(status) == 0 ? "finished" : fmt::format("exited with status {}", WEXITSTATUS(status));
  }
  if (WIFSIGNALED(status)) {
    return fmt::format("was killed by signal {} ({})", WTERMSIG(status), strsignal(WTERMSIG(status)));
  }
  return fmt::format("ended with wait status {}", status);
}

}  // namespace

std::optional<std::vector<int>> parse_device_list(const std::string& text, std::string& why) {
  std::vector<int> devices;
  size_t start = 0;
  for (;;) {
    const size_t comma = text.find(',', start);
    const std::string_view part = std::string_view(text).substr(start, comma == std::string::npos ? comma : comma - start);
    int device = -1;
    const auto [end, error] = std::from_chars(part.data(), part.data() + part.size(), device);
    // Digits only: from_chars takes a leading '-', which no ordinal has.
    if (part.empty() || part.front() == '-' || error != std::errc() || end != part.data() + part.size() ||
        device > kMaxDeviceOrdinal) {
      why = fmt::format("'{}' is not a CUDA device ordinal (0..{}); write e.g. --devices 0,1,2,3", part,
                        kMaxDeviceOrdinal);
      return std::nullopt;
    }
    devices.push_back(device);
    if (comma == std::string::npos) return devices;
    start = comma + 1;
  }
}

std::vector<std::string> worker_arguments(const std::vector<std::string>& arguments, int device) {
  std::vector<std::string> kept;
  for (size_t i = 0; i < arguments.size(); ++i) {
    bool takes_next = false;
    if (is_parent_only(arguments[i], takes_next)) {
      if (takes_next) ++i;
      continue;
    }
    kept.push_back(arguments[i]);
  }
  kept.insert(kept.end(), {"--device", std::to_string(device), "--worker"});
  return kept;
}

std::vector<WorkerEnd> run_workers(const std::vector<std::string>& arguments, const std::vector<int>& devices) {
  std::vector<pid_t> workers;
  for (int device : devices) {
    std::vector<std::string> argv_text = worker_arguments(arguments, device);
    argv_text.insert(argv_text.begin(), "glq-tune");
    std::vector<char*> argv;
    for (std::string& argument : argv_text) argv.push_back(argument.data());
    argv.push_back(nullptr);
    pid_t pid = 0;
    const int failed = posix_spawn(&pid, "/proc/self/exe", nullptr, nullptr, argv.data(), environ);
    if (failed != 0) {
      for (pid_t started : workers) ::kill(started, SIGTERM);
      for (pid_t started : workers) ::waitpid(started, nullptr, 0);
      throw Error(Status::internal,
                  fmt::format("cannot start the worker for device {}: {}", device, std::strerror(failed)));
    }
    workers.push_back(pid);
  }
  std::vector<WorkerEnd> ends;
  for (size_t k = 0; k < workers.size(); ++k) {
    int status = 0;
    while (::waitpid(workers[k], &status, 0) < 0 && errno == EINTR) {
    }
    ends.push_back({devices[k], WIFEXITED(status) && WEXITSTATUS(status) == 0, describe_status(status)});
  }
  return ends;
}

}  // namespace glqjit
