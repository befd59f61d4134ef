#include "lighthouse/error.h"

#include "text.h"

namespace lighthouse {

std::string_view to_string(ErrorCode code) noexcept {
  switch (code) {
    case ErrorCode::invalid_argument: return "invalid_argument";
    case ErrorCode::limit_exceeded: return "limit_exceeded";
    case ErrorCode::wrong_expected_version: return "wrong_expected_version";
    case ErrorCode::idempotency_conflict: return "idempotency_conflict";
    case ErrorCode::not_found: return "not_found";
    case ErrorCode::corruption: return "corruption";
    case ErrorCode::read_only: return "read_only";
    case ErrorCode::unsupported_format: return "unsupported_format";
    case ErrorCode::already_open: return "already_open";
    case ErrorCode::store_failed: return "store_failed";
    case ErrorCode::closed: return "closed";
    case ErrorCode::io_error: return "io_error";
    case ErrorCode::internal: return "internal";
    case ErrorCode::degraded: return "degraded";
    case ErrorCode::emergency: return "emergency";
    case ErrorCode::replication_pending: return "replication_pending";
  }
  return "unknown";
}

// Every message is valid UTF-8, whatever a value quoted in it held.
Error::Error(ErrorCode code, const std::string& message)
    : std::runtime_error(text::is_valid_utf8(message) ? message : text::escaped(message)), code_(code) {}

Error& Error::with_aggregate(std::string aggregate, std::uint64_t actual_version) {
  aggregate_ = std::move(aggregate);
  actual_version_ = actual_version;
  return *this;
}

Error& Error::with_index(std::size_t index) {
  index_ = index;
  return *this;
}

}  // namespace lighthouse
