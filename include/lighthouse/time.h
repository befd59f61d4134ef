// Timestamps as Lighthouse reads and writes them: nanoseconds since the Unix
// epoch, UTC.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lighthouse/export.h"

namespace lighthouse {

// Parses an RFC 3339 date-time ("2026-11-26T15:04:05Z",
// "2026-11-26T15:04:05.123456789+01:00"; 'T' or ' ' between date and time,
// 'Z' or 'z' or a numeric offset; at most 9 fraction digits) or a plain
// unsigned decimal count of nanoseconds since the epoch. Times before 1970 or
// past what 64 bits of nanoseconds hold (2554) are refused.
// Errors: invalid_argument naming the text.
LIGHTHOUSE_API std::uint64_t parse_time(std::string_view text);

// RFC 3339 in UTC with nanoseconds: "2026-11-26T15:04:05.123456789Z".
LIGHTHOUSE_API std::string format_time(std::uint64_t ns_since_epoch);

}  // namespace lighthouse
