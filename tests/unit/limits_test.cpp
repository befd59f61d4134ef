#include <catch2/catch.hpp>

#include <cstdint>
#include <functional>
#include <limits>

#include "lighthouse/lighthouse.h"
#include "support/contents.h"
#include "support/events.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using lighthouse::testing::error_code_of;
using lighthouse::testing::event;
using lighthouse::testing::keyed;
using lighthouse::testing::store_contents;
using lighthouse::testing::TempDir;

namespace {

// Appends `e` expecting `code`, and checks the store is unchanged: every
// database, byte for byte, and the counters.
void refused(Store& store, const EventData& e, ErrorCode code) {
  auto before = store.stats();
  const std::string contents = store_contents(store.path());
  CHECK(error_code_of([&] { store.append(e); }) == code);
  CHECK(error_code_of([&] { store.append_batch({event("Fine"), e}); }) == code);
  CHECK(store_contents(store.path()) == contents);
  auto after = store.stats();
  CHECK(after.event_count == before.event_count);
  CHECK(after.last_sequence == before.last_sequence);
  CHECK(after.aggregate_count == before.aggregate_count);
}

}  // namespace

TEST_CASE("names outside their limits are refused and write nothing", "[limits]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  store.append(event("Seed", "seed"));
  refused(store, event(""), ErrorCode::invalid_argument);
  refused(store, event(std::string(256, 't')), ErrorCode::limit_exceeded);
  refused(store, event("T", std::string(256, 'a')), ErrorCode::limit_exceeded);
  refused(store, event("$health.degraded"), ErrorCode::invalid_argument);
  refused(store, event("T", "$system"), ErrorCode::invalid_argument);
  refused(store, event("\xff\xfe"), ErrorCode::invalid_argument);  // not UTF-8
  refused(store, keyed("T", "a", ""), ErrorCode::invalid_argument);
  refused(store, keyed("T", "a", std::string(129, 'k')), ErrorCode::limit_exceeded);
  EventData empty_key = event("T");
  empty_key.metadata[""] = "v";
  refused(store, empty_key, ErrorCode::invalid_argument);
  EventData bad_value = event("T");
  bad_value.metadata["k"] = "\xc3";
  refused(store, bad_value, ErrorCode::invalid_argument);
  // The limits themselves are allowed.
  store.append(event(std::string(255, 't'), std::string(255, 'a')));
  store.append(keyed("T", "a", std::string(128, 'k')));
  CHECK(store.stats().event_count == 3);
}

TEST_CASE("the event size limit covers type, aggregate, metadata and data", "[limits]") {
  TempDir dir;
  Options options;
  options.limits.max_event_bytes = 1000;
  Store store = Store::open(dir / "store", options);
  store.append(event("T", "agg", std::string(1000 - 4, 'd')));  // exactly at the limit
  refused(store, event("T", "agg", std::string(1000 - 3, 'd')), ErrorCode::limit_exceeded);
  EventData with_metadata = event("T", "", std::string(900, 'd'));
  with_metadata.metadata["k"] = std::string(99, 'v');
  refused(store, with_metadata, ErrorCode::limit_exceeded);
  // The message names the size and the limit.
  CHECK_THROWS_WITH(store.append(event("T", "agg", std::string(5000, 'd'))),
                    Catch::Contains("5004") && Catch::Contains("1000"));
}

TEST_CASE("the default event size limit is 1 MiB", "[limits]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  store.append(event("T", "", std::string((1 << 20) - 1, 'd')));
  refused(store, event("T", "", std::string(1 << 20, 'd')), ErrorCode::limit_exceeded);
}

TEST_CASE("batch limits count events and bytes", "[limits]") {
  TempDir dir;
  Options options;
  options.limits.max_batch_events = 3;
  options.limits.max_batch_bytes = 100;
  Store store = Store::open(dir / "store", options);
  store.append_batch({event("T"), event("T"), event("T")});
  CHECK(error_code_of([&] {
          store.append_batch({event("T"), event("T"), event("T"), event("T")});
        }) == ErrorCode::limit_exceeded);
  CHECK(error_code_of([&] {
          store.append_batch({event("T", "", std::string(60, 'd')), event("T", "", std::string(60, 'd'))});
        }) == ErrorCode::limit_exceeded);
  // append_batches applies the limits to the total.
  std::vector<Batch> batches(2);
  batches[0].events = {event("T"), event("T")};
  batches[1].events = {event("T"), event("T")};
  CHECK(error_code_of([&] { store.append_batches(batches); }) == ErrorCode::limit_exceeded);
  CHECK(store.stats().event_count == 3);
}

TEST_CASE("a name limit above what LMDB keys allow is refused at open", "[limits]") {
  TempDir dir;
  Options options;
  options.limits.max_name_bytes = 300;
  CHECK(error_code_of([&] { Store::open(dir / "store", options); }) ==
        ErrorCode::invalid_argument);
  CHECK_FALSE(std::filesystem::exists(dir / "store"));
}

TEST_CASE("options out of range are refused at open, naming the option, and create nothing", "[limits]") {
  TempDir dir;
  const double nan = std::numeric_limits<double>::quiet_NaN();
  std::vector<std::pair<std::string, std::function<void(Options&)>>> cases = {
      {"limits.max_event_bytes", [](Options& o) { o.limits.max_event_bytes = 0; }},
      {"limits.max_batch_events", [](Options& o) { o.limits.max_batch_events = 0; }},
      {"limits.max_name_bytes", [](Options& o) { o.limits.max_name_bytes = 0; }},
      {"limits.max_idempotency_key_bytes", [](Options& o) { o.limits.max_idempotency_key_bytes = 512; }},
      {"file_mode", [](Options& o) { o.file_mode = 04600; }},
      {"file_mode", [](Options& o) { o.file_mode = 0400; }},
      {"durability", [](Options& o) { o.durability = static_cast<Durability>(9); }},
      {"map_size", [](Options& o) { o.map_size = 1; }},
      {"map_size", [](Options& o) { o.map_size = SIZE_MAX; }},
      {"max_map_size", [](Options& o) { o.max_map_size = SIZE_MAX; }},
      {"max_group_events", [](Options& o) { o.max_group_events = 0; }},
      {"compression_level", [](Options& o) { o.compression_level = 99; }},
      {"sla.append_p99_seconds", [&](Options& o) { o.sla.append_p99_seconds = nan; }},
      {"sla.append_p99_seconds", [](Options& o) { o.sla.append_p99_seconds = -1; }},
      {"health.window_seconds", [&](Options& o) { o.health.window_seconds = nan; }},
      {"health.window_seconds", [](Options& o) { o.health.window_seconds = 1e30; }},
      {"health.window_seconds", [](Options& o) { o.health.window_seconds = -1; }},
      {"health.enter_after", [](Options& o) { o.health.enter_after = 0; }},
      {"health.degraded_latency_factor", [](Options& o) { o.health.degraded_latency_factor = 0.5; }},
      {"health.map_usage_warning", [](Options& o) { o.health.map_usage_warning = 5; }},
      {"health.map_usage_degraded", [](Options& o) { o.health.map_usage_degraded = 0.5; }},  // below warning
      {"health.disk_free_emergency", [](Options& o) { o.health.disk_free_emergency = -1; }},
      {"health.disk_free_warning", [](Options& o) { o.health.disk_free_warning = 0.01; }},  // below degraded
      {"health.degraded_min_priority",
       [](Options& o) { o.health.degraded_min_priority = static_cast<Priority>(9); }},
      {"health.degraded_max_group_events", [](Options& o) { o.health.degraded_max_group_events = 0; }},
  };
  for (const auto& [name, spoil] : cases) {
    INFO(name);
    Options options;
    spoil(options);
    try {
      Store::open(dir / "store", options);
      FAIL("opened with a bad " + name);
    } catch (const Error& error) {
      CHECK(error.code() == ErrorCode::invalid_argument);
      CHECK(std::string(error.what()).find("Options::" + name) != std::string::npos);
    }
    CHECK_FALSE(std::filesystem::exists(dir / "store"));
  }
  // The defaults and the documented edges open.
  Options edges;
  edges.limits.max_idempotency_key_bytes = 511;
  edges.health.window_seconds = 0;
  edges.file_mode = 0600;
  edges.max_map_size = edges.map_size / 16;  // below map_size: caps the map
  CHECK_NOTHROW(Store::open(dir / "store", edges));
}

TEST_CASE("enum values outside their enumerators are refused", "[limits]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  CHECK(error_code_of([&] { store.append(event("E"), ExpectedVersion::any(), static_cast<Priority>(7)); }) ==
        ErrorCode::invalid_argument);
  Query q;
  q.direction = static_cast<Direction>(5);
  CHECK(error_code_of([&] { store.query(q); }) == ErrorCode::invalid_argument);
  SubscriptionStart start;
  start.kind = static_cast<SubscriptionStart::Kind>(42);
  CHECK(error_code_of([&] { store.subscribe({}, start, [](const RecordedEvent&) {}); }) ==
        ErrorCode::invalid_argument);
  CHECK(store.stats().event_count == 0);
}
