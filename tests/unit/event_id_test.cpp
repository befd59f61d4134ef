#include <catch2/catch.hpp>

#include <algorithm>
#include <random>
#include <string>
#include <vector>

#include "lighthouse/lighthouse.h"
#include "support/events.h"

using namespace lighthouse;
using lighthouse::testing::error_code_of;

TEST_CASE("EventId text form round-trips", "[event_id]") {
  EventId id{1732600000123456789ull, 42, 7};
  CHECK(id.to_string() == "1732600000123456789_42_7");
  CHECK(EventId::parse(id.to_string()) == id);
  EventId max{~0ull, ~0ull, ~0u};
  CHECK(EventId::parse(max.to_string()) == max);
  CHECK(EventId::parse("0_0_0") == EventId{0, 0, 0});
}

TEST_CASE("EventId key round-trips and sorts numerically", "[event_id]") {
  std::mt19937_64 rng(1);
  std::vector<EventId> ids;
  for (int i = 0; i < 2000; ++i) {
    ids.push_back({rng() >> (rng() % 64), rng() >> (rng() % 64),
                   static_cast<std::uint32_t>(rng() >> (rng() % 64))});
  }
  for (const auto& id : ids) {
    auto key = id.to_key();
    CHECK(EventId::from_key(std::string_view(reinterpret_cast<const char*>(key.data()), 20)) == id);
  }
  auto by_key = ids;
  std::sort(by_key.begin(), by_key.end(),
            [](const EventId& a, const EventId& b) { return a.to_key() < b.to_key(); });
  auto by_value = ids;
  std::sort(by_value.begin(), by_value.end());
  CHECK(by_key == by_value);
}

TEST_CASE("EventId parsing rejects malformed text", "[event_id]") {
  const char* bad[] = {
      "",
      "1_2",
      "1_2_3_4",
      "01_2_3",
      "1_02_3",
      "1_2_03",
      "+1_2_3",
      "-1_2_3",
      " 1_2_3",
      "1_2_3 ",
      "1__3",
      "_1_2",
      "1_2_",
      "a_2_3",
      "1_2_4294967296",          // node id over u32
      "18446744073709551616_1_1",  // timestamp over u64
      "1_18446744073709551616_1",
      "1.5_2_3",
      "0x10_2_3",
      "１_2_3",  // full-width digit
  };
  for (const char* text : bad) {
    INFO(text);
    CHECK_FALSE(EventId::try_parse(text).has_value());
    CHECK(error_code_of([&] { EventId::parse(text); }) == ErrorCode::invalid_argument);
  }
  CHECK(error_code_of([] { EventId::from_key("short"); }) == ErrorCode::invalid_argument);
}

TEST_CASE("EventId text sorts as text while timestamps have 19 digits", "[event_id]") {
  EventId a{1'000'000'000'000'000'000ull, 9, 1};
  EventId b{1'000'000'000'000'000'001ull, 10, 1};
  CHECK(a < b);
  CHECK(a.to_string() < b.to_string());
}
