// libFuzzer target: EventId text parsing and RFC 3339 / nanosecond time
// parsing. A parse either succeeds and round-trips, or raises
// Error(invalid_argument).
#include <cstddef>
#include <cstdint>
#include <string>

#include "lighthouse/error.h"
#include "lighthouse/event_id.h"
#include "lighthouse/time.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  try {
    const lighthouse::EventId id = lighthouse::EventId::parse(text);
    // A parsed ID prints back as the same text, and its key reads back.
    if (id.to_string() != text) __builtin_trap();
    if (!(lighthouse::EventId::from_key(
              std::string_view(reinterpret_cast<const char*>(id.to_key().data()), id.to_key().size())) == id)) {
      __builtin_trap();
    }
  } catch (const lighthouse::Error& error) {
    if (error.code() != lighthouse::ErrorCode::invalid_argument) __builtin_trap();
  }
  try {
    const std::uint64_t ns = lighthouse::parse_time(text);
    // What is formatted parses back to the same instant.
    if (lighthouse::parse_time(lighthouse::format_time(ns)) != ns) __builtin_trap();
  } catch (const lighthouse::Error& error) {
    if (error.code() != lighthouse::ErrorCode::invalid_argument) __builtin_trap();
  }
  return 0;
}
