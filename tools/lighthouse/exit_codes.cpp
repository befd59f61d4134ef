#include "exit_codes.h"

namespace lighthouse::tool {
namespace {

struct Row {
  ExitCode code;
  const char* meaning;
};

constexpr Row kRows[] = {
    {kExitSuccess, "success"},
    {kExitOther, "other error (I/O, unsupported format, failed store, internal)"},
    {kExitUsage, "usage: unknown command or option, missing argument, options that exclude each other"},
    {kExitConflict, "conflict: wrong expected version or idempotency conflict"},
    {kExitInvalidInput, "invalid input: a malformed or empty value (ID, time, number, name, event line) or a limit exceeded"},
    {kExitCorruption, "corruption"},
    {kExitRefused, "refused: the store does not accept this write (read-only, degraded, emergency)"},
    {kExitNotFound, "not found: no such store or event"},
    {kExitPending, "replication pending: the append is durable here, but the stream did not acknowledge it in time (quorum mode); retry with the same idempotency key"},
};

}  // namespace

ExitCode exit_code_for(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::wrong_expected_version:
    case ErrorCode::idempotency_conflict:
      return kExitConflict;
    case ErrorCode::invalid_argument:
    case ErrorCode::limit_exceeded:
      return kExitInvalidInput;
    case ErrorCode::corruption:
      return kExitCorruption;
    case ErrorCode::read_only:
    case ErrorCode::degraded:
    case ErrorCode::emergency:
      return kExitRefused;
    case ErrorCode::not_found:
      return kExitNotFound;
    case ErrorCode::replication_pending:
      return kExitPending;
    case ErrorCode::unsupported_format:
    case ErrorCode::already_open:
    case ErrorCode::store_failed:
    case ErrorCode::closed:
    case ErrorCode::io_error:
    case ErrorCode::internal:
      return kExitOther;
  }
  return kExitOther;
}

std::string exit_code_table() {
  std::string out = "Exit codes:\n";
  for (const Row& row : kRows) {
    out += "  " + std::to_string(static_cast<int>(row.code)) + "  " + row.meaning + "\n";
  }
  return out;
}

}  // namespace lighthouse::tool
