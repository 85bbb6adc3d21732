// Child processes of the multi-process cache tests (stress writers, fleets of glq-dump, other
// users): started by posix_spawn or fork, and killed and reaped by pid, never by name.
#pragma once

#include <fcntl.h>
#include <grp.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

extern char** environ;

namespace glqjit::test {

// Starts args[0] with args, stdin from stdin_fd (-1: /dev/null), stdout to stdout_fd (-1:
// /dev/null), stderr to stderr_fd (-1: this process's), and this process's environment plus env
// ("NAME=value", overriding). Throws std::runtime_error when it cannot start.
inline pid_t spawn_child(const std::vector<std::string>& args, int stdin_fd, int stdout_fd, int stderr_fd = -1,
                         const std::vector<std::string>& env = {}) {
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  if (stdin_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0);
  } else {
    posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  }
  if (stdout_fd >= 0) {
    posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1);
  } else {
    posix_spawn_file_actions_addopen(&actions, 1, "/dev/null", O_WRONLY, 0);
  }
  if (stderr_fd >= 0) posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2);
  std::vector<std::string> environment;
  for (char** entry = environ; *entry != nullptr; ++entry) {
    const std::string text = *entry;
    const std::string name = text.substr(0, text.find('='));
    bool overridden = false;
    for (const std::string& extra : env) overridden |= extra.substr(0, extra.find('=')) == name;
    if (!overridden) environment.push_back(text);
  }
  environment.insert(environment.end(), env.begin(), env.end());
  const auto pointers = [](const std::vector<std::string>& texts) {
    std::vector<char*> list;
    for (const std::string& text : texts) list.push_back(const_cast<char*>(text.c_str()));
    list.push_back(nullptr);
    return list;
  };
  std::vector<char*> argv = pointers(args);
  std::vector<char*> envp = pointers(environment);
  pid_t pid = 0;
  const int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  if (rc != 0) throw std::runtime_error("posix_spawn " + args[0] + " failed: " + std::strerror(rc));
  return pid;
}

// Kills (by pid) and reaps every child still running; each becomes 0.
inline void kill_all(std::vector<pid_t>& children) {
  for (pid_t pid : children) {
    if (pid != 0) ::kill(pid, SIGKILL);
  }
  for (pid_t& pid : children) {
    if (pid != 0) ::waitpid(pid, nullptr, 0);
    pid = 0;
  }
}

// Another user, as a test running as root plays one: ids need no passwd entry.
struct TestUser {
  uid_t uid;
  gid_t gid;
  std::vector<gid_t> groups;  // supplementary
};

// Starts body in a forked child as user; its exit status is what body returned: 0 for success,
// else a failure it has described on stderr (126 when the child could not become user). Only root
// can do this.
inline pid_t fork_as_user(const TestUser& user, const std::function<int()>& body) {
  std::fflush(nullptr);
  const pid_t pid = ::fork();
  if (pid < 0) throw std::runtime_error(std::string("fork failed: ") + std::strerror(errno));
  if (pid > 0) return pid;
  if (::setgroups(user.groups.size(), user.groups.data()) != 0 || ::setgid(user.gid) != 0 ||
      ::setuid(user.uid) != 0) {
    std::fprintf(stderr, "cannot become uid %u: %s\n", static_cast<unsigned>(user.uid), std::strerror(errno));
    ::_exit(126);
  }
  int code = 1;
  try {
    code = body();
  } catch (const std::exception& error) {
    std::fprintf(stderr, "uid %u: %s\n", static_cast<unsigned>(user.uid), error.what());
  }
  std::fflush(nullptr);
  ::_exit(code);
}

// The exit status of child once it ends (128 + the signal that killed it).
inline int exit_code(pid_t child) {
  int status = 0;
  if (::waitpid(child, &status, 0) != child) return -1;
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

inline int as_user(const TestUser& user, const std::function<int()>& body) {
  return exit_code(fork_as_user(user, body));
}

}  // namespace glqjit::test
