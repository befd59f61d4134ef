#include "lighthouse/time.h"

#include <chrono>
#include <cstdio>
#include <limits>

#include "lighthouse/error.h"
#include "text.h"

namespace lighthouse {
namespace {

[[noreturn]] void malformed(std::string_view text, const char* why) {
  throw Error(ErrorCode::invalid_argument,
              "malformed time " + text::quoted(text) + ": " + why +
                  " (expected RFC 3339 such as 2026-11-26T15:04:05Z, or nanoseconds since the epoch)");
}

class Reader {
 public:
  explicit Reader(std::string_view text) : text_(text) {}
  bool done() const { return pos_ == text_.size(); }
  char peek() const { return done() ? '\0' : text_[pos_]; }
  bool take(char c) {
    if (peek() != c) return false;
    ++pos_;
    return true;
  }
  // Exactly `digits` decimal digits.
  bool number(int digits, int& out) {
    out = 0;
    for (int i = 0; i < digits; ++i) {
      char c = peek();
      if (c < '0' || c > '9') return false;
      out = out * 10 + (c - '0');
      ++pos_;
    }
    return true;
  }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
};

std::uint64_t parse_nanoseconds(std::string_view text) {
  if (text.size() > 1 && text[0] == '0') malformed(text, "leading zero");
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') malformed(text, "not a number");
    if (value > (std::numeric_limits<std::uint64_t>::max() - static_cast<unsigned>(c - '0')) / 10) {
      malformed(text, "too large for 64-bit nanoseconds");
    }
    value = value * 10 + static_cast<unsigned>(c - '0');
  }
  return value;
}

}  // namespace

std::uint64_t parse_time(std::string_view text) {
  if (text.empty()) malformed(text, "empty");
  if (text.find_first_not_of("0123456789") == std::string_view::npos) {
    return parse_nanoseconds(text);
  }
  Reader r(text);
  int year, month, day, hour, minute, second;
  if (!r.number(4, year) || !r.take('-') || !r.number(2, month) || !r.take('-') ||
      !r.number(2, day)) {
    malformed(text, "bad date");
  }
  if (!r.take('T') && !r.take('t') && !r.take(' ')) malformed(text, "missing 'T' after the date");
  if (!r.number(2, hour) || !r.take(':') || !r.number(2, minute) || !r.take(':') ||
      !r.number(2, second)) {
    malformed(text, "bad time of day");
  }
  std::int64_t fraction_ns = 0;
  if (r.take('.')) {
    int digits = 0;
    while (r.peek() >= '0' && r.peek() <= '9') {
      if (++digits > 9) malformed(text, "more than 9 fraction digits");
      int d;
      r.number(1, d);
      fraction_ns = fraction_ns * 10 + d;
    }
    if (digits == 0) malformed(text, "no digits after '.'");
    for (int i = digits; i < 9; ++i) fraction_ns *= 10;
  }
  std::int64_t offset_s = 0;
  if (!r.take('Z') && !r.take('z')) {
    int sign = r.take('+') ? 1 : (r.take('-') ? -1 : 0);
    int oh, om;
    if (sign == 0 || !r.number(2, oh) || !r.take(':') || !r.number(2, om) || oh > 23 || om > 59) {
      malformed(text, "missing or bad UTC offset (Z or +HH:MM)");
    }
    offset_s = sign * (oh * 3600 + om * 60);
  }
  if (!r.done()) malformed(text, "trailing characters");
  using namespace std::chrono;
  year_month_day date{std::chrono::year{year}, std::chrono::month{static_cast<unsigned>(month)},
                      std::chrono::day{static_cast<unsigned>(day)}};
  // RFC 3339 allows a leap second (60); it is read as the next second.
  if (!date.ok() || hour > 23 || minute > 59 || second > 60) malformed(text, "no such date or time");
  std::int64_t seconds = sys_days(date).time_since_epoch().count() * 86400LL + hour * 3600LL +
                         minute * 60LL + second - offset_s;
  constexpr std::uint64_t kMax = std::numeric_limits<std::uint64_t>::max();
  constexpr std::uint64_t kBillion = 1'000'000'000u;
  if (seconds < 0) malformed(text, "before 1970");
  const auto s = static_cast<std::uint64_t>(seconds);
  const auto f = static_cast<std::uint64_t>(fraction_ns);
  if (s > kMax / kBillion || (s == kMax / kBillion && f > kMax % kBillion)) {
    malformed(text, "past what 64-bit nanoseconds hold (2554)");
  }
  return s * kBillion + f;
}

std::string format_time(std::uint64_t ns) {
  using namespace std::chrono;
  const std::uint64_t seconds = ns / 1'000'000'000u;
  const auto days = static_cast<std::int64_t>(seconds / 86400);
  const auto in_day = seconds % 86400;
  year_month_day date{sys_days{std::chrono::days{days}}};
  char buf[48];
  std::snprintf(buf, sizeof buf, "%04d-%02u-%02uT%02u:%02u:%02u.%09uZ", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()),
                static_cast<unsigned>(in_day / 3600), static_cast<unsigned>(in_day / 60 % 60),
                static_cast<unsigned>(in_day % 60), static_cast<unsigned>(ns % 1'000'000'000u));
  return buf;
}

}  // namespace lighthouse
