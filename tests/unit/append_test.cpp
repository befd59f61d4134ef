#include <catch2/catch.hpp>

#include <atomic>

#include "lighthouse/lighthouse.h"
#include "support/contents.h"
#include "support/events.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using lighthouse::testing::error_code_of;
using lighthouse::testing::event;
using lighthouse::testing::store_contents;
using lighthouse::testing::TempDir;

TEST_CASE("append assigns gap-free sequences and contiguous aggregate versions", "[append]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  std::uint64_t expected_sequence = 1;
  for (int round = 0; round < 3; ++round) {
    for (const char* aggregate : {"order-1", "order-2", ""}) {
      auto r = store.append(event("OrderPlaced", aggregate));
      REQUIRE(r.events.size() == 1);
      CHECK(r.events[0].id.sequence == expected_sequence++);
      CHECK(r.events[0].aggregate_version ==
            (std::string(aggregate).empty() ? 0u : static_cast<unsigned>(round + 1)));
      CHECK(r.events[0].id.node_id == store.stats().node_id);
      CHECK_FALSE(r.replayed);
    }
  }
  CHECK(store.stats().event_count == 9);
  CHECK(store.stats().last_sequence == 9);
  CHECK(store.stats().aggregate_count == 2);
}

TEST_CASE("timestamps strictly increase when the clock steps back or stands still",
          "[append][clock]") {
  TempDir dir;
  std::atomic<std::uint64_t> now{1'000'000};
  Options options;
  options.clock = [&] { return now.load(); };
  Store store = Store::open(dir / "store", options);

  auto first = store.append(event("Tick")).events[0].id;
  CHECK(first.timestamp_ns == 1'000'000);
  auto still = store.append(event("Tick")).events[0].id;  // clock stands still
  CHECK(still.timestamp_ns == 1'000'001);
  now = 500;  // clock steps back
  auto back = store.append(event("Tick")).events[0].id;
  CHECK(back.timestamp_ns == 1'000'002);
  auto batch = store.append_batch({event("Tick"), event("Tick"), event("Tick")});
  CHECK(batch.events[0].id.timestamp_ns == 1'000'003);
  CHECK(batch.events[2].id.timestamp_ns == 1'000'005);
  now = 2'000'000;  // clock jumps forward
  auto forward = store.append(event("Tick")).events[0].id;
  CHECK(forward.timestamp_ns == 2'000'000);
  CHECK(first < still);
  CHECK(still < back);
  CHECK(back < forward);
  CHECK(forward.sequence == 7);
}

TEST_CASE("timestamps and sequences continue after reopen with a clock behind", "[append][clock]") {
  TempDir dir;
  Options options;
  options.clock = [] { return std::uint64_t{5'000}; };
  EventId last;
  {
    Store store = Store::open(dir / "store", options);
    store.append(event("A"));
    last = store.append(event("A")).events[0].id;
  }
  options.clock = [] { return std::uint64_t{10}; };
  Store store = Store::open(dir / "store", options);
  auto next = store.append(event("A")).events[0].id;
  CHECK(next.sequence == last.sequence + 1);
  CHECK(next.timestamp_ns == last.timestamp_ns + 1);
}

TEST_CASE("every expectation kind is checked against the aggregate", "[append][expected]") {
  TempDir dir;
  Store store = Store::open(dir / "store");

  SECTION("no_stream") {
    CHECK(store.append(event("Opened", "acct"), ExpectedVersion::no_stream())
              .events[0].aggregate_version == 1);
    try {
      store.append(event("Opened", "acct"), ExpectedVersion::no_stream());
      FAIL("no_stream on an existing stream succeeded");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::wrong_expected_version);
      CHECK(e.aggregate() == "acct");
      CHECK(e.actual_version() == 1u);
      CHECK(std::string(e.what()).find("acct") != std::string::npos);
    }
  }
  SECTION("stream_exists") {
    CHECK(error_code_of([&] {
            store.append(event("Deposited", "acct"), ExpectedVersion::stream_exists());
          }) == ErrorCode::wrong_expected_version);
    store.append(event("Opened", "acct"));
    CHECK(store.append(event("Deposited", "acct"), ExpectedVersion::stream_exists())
              .events[0].aggregate_version == 2);
  }
  SECTION("exact") {
    store.append(event("Opened", "acct"));
    store.append(event("Deposited", "acct"), ExpectedVersion::exact(1));
    try {
      store.append(event("Deposited", "acct"), ExpectedVersion::exact(1));
      FAIL("a stale exact version succeeded");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::wrong_expected_version);
      CHECK(e.actual_version() == 2u);
    }
    CHECK(store.append(event("Deposited", "acct"), ExpectedVersion::exact(2))
              .events[0].aggregate_version == 3);
    CHECK(error_code_of([&] {
            store.append(event("Deposited", "acct"), ExpectedVersion::exact(7));
          }) == ErrorCode::wrong_expected_version);
  }
  SECTION("exact(0) is no_stream") {
    CHECK(store.append(event("Opened", "new"), ExpectedVersion::exact(0))
              .events[0].aggregate_version == 1);
    CHECK(error_code_of([&] {
            store.append(event("Opened", "new"), ExpectedVersion::exact(0));
          }) == ErrorCode::wrong_expected_version);
  }
  SECTION("any") {
    store.append(event("Opened", "acct"), ExpectedVersion::any());
    store.append(event("Opened", "acct"), ExpectedVersion::any());
    CHECK(store.stats().event_count == 2);
  }
  SECTION("an expectation on an event without aggregate is invalid") {
    CHECK(error_code_of([&] { store.append(event("Tick"), ExpectedVersion::exact(0)); }) ==
          ErrorCode::invalid_argument);
    CHECK(store.stats().event_count == 0);
  }
}

TEST_CASE("a failed expectation writes nothing", "[append][expected]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  store.append(event("Opened", "a"));
  auto before = store.stats();
  const std::string contents = store_contents(dir / "store");
  CHECK(error_code_of([&] {
          store.append(event("Opened", "a"), ExpectedVersion::no_stream());
        }) == ErrorCode::wrong_expected_version);
  CHECK(error_code_of([&] {
          store.append_batch({event("Other", "b"), event("Opened", "a")}, {{"a", ExpectedVersion::exact(7)}});
        }) == ErrorCode::wrong_expected_version);
  // Not one byte of any database changed.
  CHECK(store_contents(dir / "store") == contents);
  auto after = store.stats();
  CHECK(after.event_count == before.event_count);
  CHECK(after.last_sequence == before.last_sequence);
  // The next append takes the next sequence: nothing was consumed.
  CHECK(store.append(event("Closed", "a")).events[0].id.sequence == before.last_sequence + 1);
}

TEST_CASE("a batch spanning aggregates is atomic with one expectation per aggregate",
          "[append][batch]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  store.append(event("Opened", "from"));
  store.append(event("Opened", "to"));

  Batch transfer;
  transfer.events = {event("Withdrawn", "from"), event("Deposited", "to"),
                     event("TransferLogged"), event("Deposited", "to")};
  transfer.expectations = {{"from", ExpectedVersion::exact(1)},
                           {"to", ExpectedVersion::exact(1)}};
  auto r = store.append_batch(transfer);
  REQUIRE(r.events.size() == 4);
  CHECK(r.events[0].aggregate_version == 2);
  CHECK(r.events[1].aggregate_version == 2);
  CHECK(r.events[2].aggregate_version == 0);
  CHECK(r.events[3].aggregate_version == 3);
  for (std::size_t i = 1; i < 4; ++i) CHECK(r.events[i].id.sequence == r.events[i - 1].id.sequence + 1);

  // The same batch again: "from" still matches nothing stale, "to" is stale.
  transfer.expectations = {{"from", ExpectedVersion::exact(2)},
                           {"to", ExpectedVersion::exact(1)}};
  auto before = store.stats();
  try {
    store.append_batch(transfer);
    FAIL("stale expectation accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::wrong_expected_version);
    CHECK(e.aggregate() == "to");
    CHECK(e.actual_version() == 3u);
  }
  CHECK(store.stats().event_count == before.event_count);

  // A guard on an aggregate the batch does not write.
  Batch guarded;
  guarded.events = {event("Noted", "other")};
  guarded.expectations = {{"from", ExpectedVersion::exact(99)}};
  CHECK(error_code_of([&] { store.append_batch(guarded); }) ==
        ErrorCode::wrong_expected_version);
  CHECK(store.stats().event_count == before.event_count);

  Batch twice;
  twice.events = {event("A", "from")};
  twice.expectations = {{"from", ExpectedVersion::any()}, {"from", ExpectedVersion::exact(2)}};
  CHECK(error_code_of([&] { store.append_batch(twice); }) == ErrorCode::invalid_argument);
}

TEST_CASE("an invalid event inside a batch writes nothing", "[append][batch]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  store.append(event("Opened", "a"));
  std::vector<EventData> batch = {event("Ok", "a"), event("Ok", "b"), event("", "c"),
                                  event("Ok", "d")};
  const std::string contents = store_contents(dir / "store");
  try {
    store.append_batch(batch);
    FAIL("batch with an empty type accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::invalid_argument);
    CHECK(e.index() == 2u);
  }
  CHECK(error_code_of([&] { store.append_batch(std::vector<EventData>{}); }) ==
        ErrorCode::invalid_argument);
  CHECK(store_contents(dir / "store") == contents);
  CHECK(store.stats().event_count == 1);
  CHECK(store.stats().aggregate_count == 1);
}

TEST_CASE("a schema version of 0, a malformed trace context or an unknown read check is refused, writing nothing",
          "[append][format2]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  store.append(event("Opened", "a"));
  const std::string contents = store_contents(dir / "store");
  const std::string good = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
  const std::vector<std::pair<std::string, TraceContext>> bad_contexts = {
      {"empty", {"", ""}},
      {"upper case", {"00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01", ""}},
      {"version ff", {"ff" + good.substr(2), ""}},
      {"zero parent", {good.substr(0, 36) + "0000000000000000-01", ""}},
      {"one character short", {good.substr(0, 54), ""}},
      {"tracestate of 513 bytes", {good, std::string(513, 'a')}},
      {"tracestate with a newline", {good, "a=b\n"}},
  };
  for (const auto& [what, context] : bad_contexts) {
    INFO(what);
    EventData e = event("Traced", "a");
    e.trace_context = context;
    std::vector<EventData> batch = {event("Ok", "a"), e};
    try {
      store.append_batch(batch);
      FAIL("accepted");
    } catch (const Error& error) {
      CHECK(error.code() == ErrorCode::invalid_argument);
      CHECK(error.index() == 1u);
      CHECK(std::string(error.what()).find("trace context") != std::string::npos);
    }
  }
  EventData unversioned = event("Versioned", "a");
  unversioned.schema_version = 0;
  CHECK_THROWS_WITH(store.append(unversioned), Catch::Contains("schema version 0"));
  Query q;
  q.verify_on_read = static_cast<ReadCheck>(7);
  CHECK(error_code_of([&] { store.query(q); }) == ErrorCode::invalid_argument);
  CHECK(store_contents(dir / "store") == contents);
  store.close();
  Options options;
  options.verify_on_read = static_cast<ReadCheck>(7);
  CHECK_THROWS_WITH(Store::open(dir / "store", options), Catch::Contains("verify_on_read"));
  // A valid one is stored and read back as it was given.
  Store again = Store::open(dir / "store");
  EventData traced = event("Traced", "a");
  traced.schema_version = 3;
  traced.trace_context = TraceContext{good, "congo=t61rcWkgMzE"};
  const EventId id = again.append(traced).events.front().id;
  const RecordedEvent back = again.get(id);
  CHECK(back.schema_version == 3);
  CHECK(back.trace_context == traced.trace_context);
}

TEST_CASE("append_batches is all or nothing and names the failing batch", "[append][batch]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  std::vector<Batch> batches(3);
  batches[0].events = {event("Opened", "x")};
  batches[0].expectations = {{"x", ExpectedVersion::no_stream()}};
  batches[1].events = {event("Renamed", "x")};
  batches[1].expectations = {{"x", ExpectedVersion::exact(1)}};  // sees batch 0
  batches[2].events = {event("Opened", "x")};
  batches[2].expectations = {{"x", ExpectedVersion::no_stream()}};  // fails
  try {
    store.append_batches(batches);
    FAIL("conflicting group accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::wrong_expected_version);
    CHECK(e.index() == 2u);
    CHECK(e.actual_version() == 2u);
  }
  CHECK(store.stats().event_count == 0);
  batches.pop_back();
  auto results = store.append_batches(batches);
  REQUIRE(results.size() == 2);
  CHECK(results[1].events[0].aggregate_version == 2);
}

TEST_CASE("get returns exactly what was appended", "[append][get]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  EventData e = event("OrderPlaced", "order-9", std::string("\x82\xa1q\x02\xa1p\xcb", 7) + std::string(8, '\x11'));
  e.content_type = ContentType::msgpack;
  e.metadata = {{"correlation", "c-1"}, {"user", "ada"}};
  e.idempotency_key = "req-1";
  auto id = store.append(e).events[0].id;
  EventData big = event("Blob", "", std::string(100'000, 'z'));  // compressed on disk
  big.content_type = ContentType::bytes;
  auto big_id = store.append(big).events[0].id;

  RecordedEvent got = store.get(id);
  CHECK(got.id == id);
  CHECK(got.type == e.type);
  CHECK(got.aggregate == e.aggregate);
  CHECK(got.aggregate_version == 1);
  CHECK(got.content_type == ContentType::msgpack);
  CHECK(got.metadata == e.metadata);
  CHECK(got.data == e.data);
  CHECK(got.idempotency_key == e.idempotency_key);
  RecordedEvent got_big = store.get(big_id);
  CHECK(got_big.data == big.data);
  CHECK(got_big.content_type == ContentType::bytes);
  CHECK(got_big.chain != got.chain);
  CHECK(error_code_of([&] { store.get(EventId{id.timestamp_ns, 99, id.node_id}); }) ==
        ErrorCode::not_found);
}

TEST_CASE("a large batch's content hashes, computed by the appending thread, are every event's own",
          "[append][checksum]") {
  // 1,000 events of 300 bytes, each different, with and without idempotency
  // keys: verify recomputes every checksum from the stored fields, and a
  // full read checks each again.
  TempDir dir;
  Store store = Store::open(dir / "store");
  Batch batch;
  for (int i = 0; i < 1000; ++i) {
    EventData e = event("T" + std::to_string(i % 7), "agg-" + std::to_string(i % 13));
    e.content_type = ContentType::bytes;
    e.data = std::string(300, static_cast<char>('a' + i % 26)) + std::to_string(i);
    if (i % 3 == 0) e.idempotency_key = "k" + std::to_string(i);
    batch.events.push_back(std::move(e));
  }
  const AppendResult appended = store.append_batch(batch);
  REQUIRE(appended.events.size() == 1000);
  const VerifyReport report = store.verify();
  CHECK(report.ok());
  CHECK(report.events_checked == 1000);
  Query q;
  q.verify_on_read = ReadCheck::full;
  std::size_t i = 0;
  for (const RecordedEvent& e : store.query(q)) {
    REQUIRE(i < 1000);
    CHECK(e.data == batch.events[i].data);
    ++i;
  }
  CHECK(i == 1000);
  // The same batch again is an idempotent retry only for the keyed events'
  // exact contents: the hashes the retry compares are the stored ones.
  Batch keyed;
  for (int k = 0; k < 1000; k += 3) keyed.events.push_back(batch.events[static_cast<std::size_t>(k)]);
  CHECK(store.append_batch(keyed).replayed);
}
