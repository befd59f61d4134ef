// Text in the store's messages: every Error message is valid UTF-8. A value
// quoted in a message is cut at a character boundary and its bytes that are
// not UTF-8 are shown as \xNN, so a message never splits a character or
// echoes raw input bytes.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace lighthouse::text {

// Returns true iff `text` is valid UTF-8 (no overlong forms, surrogates or
// values past U+10FFFF).
bool is_valid_utf8(std::string_view text) noexcept;

// `text` with every byte that is not part of a valid UTF-8 character
// written as \xNN (a backslash is kept as it is).
std::string escaped(std::string_view text);

// `text` escaped and cut to at most `max_bytes` bytes of the original at a
// character boundary, with "..." when cut.
std::string shown(std::string_view text, std::size_t max_bytes = 64);

// shown() between single quotes.
std::string quoted(std::string_view text, std::size_t max_bytes = 64);

// `bytes` as lower-case hex digits, two per byte (digests, trace and span IDs).
std::string lower_hex(std::string_view bytes);
// The same digits written at `out` (room for 2 × bytes.size()); returns the
// end of what was written.
char* write_lower_hex(char* out, std::string_view bytes) noexcept;

// Whether every byte of `text` is printable ASCII (0x20..0x7e): a W3C tracestate.
bool printable_ascii(std::string_view text) noexcept;

}  // namespace lighthouse::text
