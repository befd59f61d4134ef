// lighthouse::Error — the one exception type the library throws.
//
// Every public function documents the ErrorCodes it can raise. A message
// names the offending value and, for limits, the limit.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "lighthouse/export.h"

namespace lighthouse {

enum class ErrorCode : int {
  invalid_argument = 1,      // malformed input: bad name, bad ID, wrong field
  limit_exceeded,            // an event, batch or name over its configured limit
  wrong_expected_version,    // optimistic concurrency check failed
  idempotency_conflict,      // a key reused with other content, or a batch partly stored
  not_found,                 // no such event, or no store at the path
  corruption,                // stored bytes fail their checksum or do not decode
  read_only,                 // a write on a store opened read-only
  unsupported_format,        // the store was written by a newer format version
  already_open,              // the store is open in this process in an incompatible mode
  store_failed,              // an earlier I/O error or MDB_PANIC: reopen the store
  closed,                    // the store was closed
  io_error,                  // the operating system refused an operation
  internal,                  // a bug in Lighthouse or an unexpected LMDB result
  degraded,                  // the store sheds load: this append's priority is too low
  emergency,                 // the store is in emergency: appends are refused
  replication_pending,       // quorum mode: durable here, not yet acknowledged by the stream in time
};

// Returns the stable, lower-case name of `code` ("wrong_expected_version").
LIGHTHOUSE_API std::string_view to_string(ErrorCode code) noexcept;

class LIGHTHOUSE_API Error : public std::runtime_error {
 public:
  Error(ErrorCode code, const std::string& message);

  ErrorCode code() const noexcept { return code_; }

  // For wrong_expected_version: the aggregate whose check failed and the
  // version it actually has (0 when it has no events).
  const std::string& aggregate() const noexcept { return aggregate_; }
  std::optional<std::uint64_t> actual_version() const noexcept { return actual_version_; }

  // For errors about one element of a request: its position (the event in a
  // batch, or the batch in append_batches).
  std::optional<std::size_t> index() const noexcept { return index_; }

  Error& with_aggregate(std::string aggregate, std::uint64_t actual_version);
  Error& with_index(std::size_t index);

 private:
  ErrorCode code_;
  std::string aggregate_;
  std::optional<std::uint64_t> actual_version_;
  std::optional<std::size_t> index_;
};

}  // namespace lighthouse
