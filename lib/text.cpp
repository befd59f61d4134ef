#include "text.h"

#include <cstdint>

namespace lighthouse::text {
namespace {

// The length of the valid UTF-8 character at p (1 to 4), or 0.
std::size_t character_at(const unsigned char* p, const unsigned char* end) noexcept {
  const unsigned char c = *p;
  if (c < 0x80) return 1;
  std::size_t extra;
  std::uint32_t cp;
  if ((c & 0xe0) == 0xc0) {
    extra = 1;
    cp = c & 0x1f;
  } else if ((c & 0xf0) == 0xe0) {
    extra = 2;
    cp = c & 0x0f;
  } else if ((c & 0xf8) == 0xf0) {
    extra = 3;
    cp = c & 0x07;
  } else {
    return 0;
  }
  if (static_cast<std::size_t>(end - p) <= extra) return 0;
  for (std::size_t i = 1; i <= extra; ++i) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    cp = (cp << 6) | (p[i] & 0x3f);
  }
  // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
  static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  if (cp < kMin[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return 0;
  return extra + 1;
}

void append_escaped_byte(std::string& out, unsigned char byte) {
  static const char* digits = "0123456789abcdef";
  out += "\\x";
  out += digits[byte >> 4];
  out += digits[byte & 15];
}

}  // namespace

bool is_valid_utf8(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const std::size_t n = character_at(p, end);
    if (n == 0) return false;
    p += n;
  }
  return true;
}

std::string shown(std::string_view text, std::size_t max_bytes) {
  const auto* begin = reinterpret_cast<const unsigned char*>(text.data());
  const auto* p = begin;
  const auto* end = p + text.size();
  std::string out;
  out.reserve(std::min(text.size(), max_bytes) + 8);
  while (p < end) {
    const std::size_t n = character_at(p, end);
    if (static_cast<std::size_t>(p - begin) + std::max<std::size_t>(n, 1) > max_bytes) {
      out += "...";
      return out;
    }
    if (n == 0) {
      append_escaped_byte(out, *p);
      ++p;
      continue;
    }
    out.append(reinterpret_cast<const char*>(p), n);
    p += n;
  }
  return out;
}

std::string escaped(std::string_view text) { return shown(text, text.size()); }

std::string quoted(std::string_view text, std::size_t max_bytes) { return "'" + shown(text, max_bytes) + "'"; }

char* write_lower_hex(char* out, std::string_view bytes) noexcept {
  static constexpr char kDigits[] = "0123456789abcdef";
  for (unsigned char b : bytes) {
    *out++ = kDigits[b >> 4];
    *out++ = kDigits[b & 0xf];
  }
  return out;
}

std::string lower_hex(std::string_view bytes) {
  std::string out(bytes.size() * 2, '\0');
  write_lower_hex(out.data(), bytes);
  return out;
}

bool printable_ascii(std::string_view text) noexcept {
  for (char c : text) {
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace lighthouse::text
