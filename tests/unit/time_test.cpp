#include <catch2/catch.hpp>

#include "lighthouse/lighthouse.h"
#include "lighthouse/time.h"
#include "support/events.h"

using namespace lighthouse;
using lighthouse::testing::error_code_of;

TEST_CASE("RFC 3339 times and nanosecond counts parse", "[time]") {
  CHECK(parse_time("0") == 0);
  CHECK(parse_time("1795708838921091529") == 1795708838921091529ull);
  CHECK(parse_time("1970-01-01T00:00:00Z") == 0);
  CHECK(parse_time("2026-11-26T15:04:05Z") == 1795705445ull * 1'000'000'000ull);
  CHECK(parse_time("2026-11-26t15:04:05z") == parse_time("2026-11-26T15:04:05Z"));
  CHECK(parse_time("2026-11-26 15:04:05Z") == parse_time("2026-11-26T15:04:05Z"));
  CHECK(parse_time("2026-11-26T15:04:05.5Z") == parse_time("2026-11-26T15:04:05Z") + 500'000'000);
  CHECK(parse_time("2026-11-26T15:04:05.000000001Z") == parse_time("2026-11-26T15:04:05Z") + 1);
  CHECK(parse_time("2026-11-26T16:04:05+01:00") == parse_time("2026-11-26T15:04:05Z"));
  CHECK(parse_time("2026-11-26T14:34:05-00:30") == parse_time("2026-11-26T15:04:05Z"));
  CHECK(parse_time("2024-02-29T00:00:00Z") == 1709164800ull * 1'000'000'000ull);
  CHECK(parse_time("2554-07-21T23:34:33.709551615Z") == ~std::uint64_t{0});
}

TEST_CASE("times round-trip through format_time", "[time]") {
  for (std::uint64_t ns : {0ull, 1ull, 1795708838921091529ull, ~0ull}) {
    CHECK(parse_time(format_time(ns)) == ns);
  }
  CHECK(format_time(1795705445ull * 1'000'000'000ull + 7) == "2026-11-26T15:04:05.000000007Z");
}

TEST_CASE("malformed times are refused", "[time]") {
  for (const char* bad : {"", "yesterday", "2026-11-26", "2026-11-26T15:04:05", "2026-11-26T15:04Z",
                          "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z", "2025-02-29T00:00:00Z",
                          "2026-11-26T24:00:00Z", "2026-11-26T15:60:00Z", "2026-11-26T15:04:05.Z",
                          "2026-11-26T15:04:05.1234567891Z", "2026-11-26T15:04:05+1:00",
                          "2026-11-26T15:04:05+01:60", "2026-11-26T15:04:05Z ", " 0", "-1", "+1",
                          "00", "18446744073709551616", "1969-12-31T23:59:59Z",
                          "2554-07-21T23:34:34Z", "2026-11-26T15:04:05.5+", "１970-01-01T00:00:00Z"}) {
    INFO(bad);
    CHECK(error_code_of([&] { parse_time(bad); }) == ErrorCode::invalid_argument);
  }
}
