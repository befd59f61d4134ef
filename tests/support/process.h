// Runs child processes for multi-process, crash and fault tests.
#pragma once

#include <string>
#include <vector>

namespace lighthouse::testing {

struct ChildResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;
  std::string out;
};

// Starts `argv` with extra environment entries ("NAME=value") and returns its
// pid and the read end of a pipe on its stdout.
struct Child {
  int pid = -1;
  int out_fd = -1;
  int in_fd = -1;  // the write end of a pipe on its stdin (with_stdin), else -1
};
Child spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
            bool with_stdin = false);

// Reads the child's stdout to the end and reaps it.
ChildResult wait(Child child);

// Runs to completion.
inline ChildResult run(const std::vector<std::string>& argv,
                       const std::vector<std::string>& env = {}) {
  return wait(spawn(argv, env));
}

// The path of a helper program built beside the tests (from the environment
// variable `name`, set by meson).
std::string helper_path(const char* name);

}  // namespace lighthouse::testing
