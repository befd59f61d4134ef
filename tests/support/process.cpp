#include "support/process.h"

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>

extern char** environ;

namespace lighthouse::testing {

Child spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env, bool with_stdin) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  int in[2] = {-1, -1};
  if (with_stdin && pipe2(in, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  if (with_stdin) posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  // `env` overrides inherited entries of the same name.
  std::vector<std::string> env_strings = env;
  for (char** e = environ; *e != nullptr; ++e) {
    std::string entry = *e;
    std::string name = entry.substr(0, entry.find('=') + 1);
    bool overridden = false;
    for (const auto& mine : env) overridden = overridden || mine.rfind(name, 0) == 0;
    if (!overridden) env_strings.push_back(std::move(entry));
  }
  std::vector<char*> envp;
  for (auto& e : env_strings) envp.push_back(e.data());
  envp.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, args[0], &actions, nullptr, args.data(), envp.data());
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (with_stdin) close(in[0]);
  if (rc != 0) {
    close(fds[0]);
    if (with_stdin) close(in[1]);
    throw std::runtime_error("posix_spawn " + argv[0] + ": " + std::strerror(rc));
  }
  return {pid, fds[0], in[1]};
}

ChildResult wait(Child child) {
  ChildResult result;
  char buf[65536];
  ssize_t n;
  while ((n = read(child.out_fd, buf, sizeof buf)) > 0) result.out.append(buf, static_cast<std::size_t>(n));
  close(child.out_fd);
  if (child.in_fd >= 0) close(child.in_fd);
  int status = 0;
  waitpid(child.pid, &status, 0);
  if (WIFEXITED(status)) result.exit_code = WEXITSTATUS(status);
  if (WIFSIGNALED(status)) result.signal = WTERMSIG(status);
  return result;
}

std::string helper_path(const char* name) {
  const char* path = std::getenv(name);
  if (path == nullptr) throw std::runtime_error(std::string("environment variable ") + name + " is not set");
  return path;
}

}  // namespace lighthouse::testing
