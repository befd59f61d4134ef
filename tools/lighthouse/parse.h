// The small textual inputs the tool's commands and its server share: an
// unsigned decimal (an option's or a query parameter's value), a
// hexadecimal digit (percent-encoding, SHA-256 digests in token files), and
// how a value is quoted in a message.
#pragma once

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>

#include "lighthouse/error.h"

namespace lighthouse::tool {

// A value quoted in a message: cut at a character boundary (bytes that are
// not UTF-8 are escaped by lighthouse::Error itself).
inline std::string shown(std::string_view value, std::size_t limit = 64) {
  std::size_t end = std::min(value.size(), limit);
  // Back up over continuation bytes so as not to split a character.
  while (end < value.size() && end > 0 && (static_cast<unsigned char>(value[end]) & 0xc0) == 0x80) --end;
  std::string out(value.substr(0, end));
  if (end < value.size()) out += "...";
  return out;
}

// `text` as an unsigned decimal: digits only, no sign, no leading zero.
// Errors: invalid_argument "<label> '<text>' is not an unsigned decimal number".
inline std::uint64_t parse_decimal(const std::string& label, std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() || (text.size() > 1 && text[0] == '0')) {
    throw Error(ErrorCode::invalid_argument,
                label + " '" + shown(text) + "' is not an unsigned decimal number");
  }
  return value;
}

// 0..15, or -1 for a character that is not a hexadecimal digit.
inline int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace lighthouse::tool
