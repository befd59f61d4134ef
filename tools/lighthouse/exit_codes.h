// The tool's exit codes: one table, used for the mapping from ErrorCode and
// for the `--help` footer, so the two cannot drift apart.
#pragma once

#include <string>

#include "lighthouse/error.h"

namespace lighthouse::tool {

enum ExitCode : int {
  kExitSuccess = 0,
  kExitOther = 1,
  kExitUsage = 2,
  kExitConflict = 3,
  kExitInvalidInput = 4,
  kExitCorruption = 5,
  kExitRefused = 6,
  kExitNotFound = 7,
  kExitPending = 8,
};

// The exit code for a failure with `code`.
ExitCode exit_code_for(ErrorCode code) noexcept;

// The table of exit codes, one per line, for the `--help` footer.
std::string exit_code_table();

}  // namespace lighthouse::tool
