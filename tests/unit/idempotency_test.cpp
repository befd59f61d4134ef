#include <catch2/catch.hpp>

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

TEST_CASE("an idempotent retry returns the original result and writes nothing",
          "[idempotency]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  auto original = store.append(keyed("Paid", "inv-1", "pay-1"), ExpectedVersion::no_stream());
  CHECK_FALSE(original.replayed);
  const std::string contents = store_contents(dir / "store");
  // The retry carries the original expectation, which no longer holds:
  // idempotency is checked first, so it still succeeds.
  auto retry = store.append(keyed("Paid", "inv-1", "pay-1"), ExpectedVersion::no_stream());
  CHECK(store_contents(dir / "store") == contents);
  CHECK(retry.replayed);
  REQUIRE(retry.events.size() == 1);
  CHECK(retry.events[0].id == original.events[0].id);
  CHECK(retry.events[0].aggregate_version == 1);
  CHECK(store.stats().event_count == 1);
}

TEST_CASE("idempotency survives reopening the store", "[idempotency]") {
  TempDir dir;
  EventId id;
  {
    Store store = Store::open(dir / "store");
    id = store.append_batch({keyed("A", "x", "k1"), keyed("B", "x", "k2")}).events[1].id;
  }
  Store store = Store::open(dir / "store");
  auto retry = store.append_batch({keyed("A", "x", "k1"), keyed("B", "x", "k2")});
  CHECK(retry.replayed);
  CHECK(retry.events[1].id == id);
  CHECK(retry.events[1].aggregate_version == 2);
  CHECK(store.stats().event_count == 2);
}

TEST_CASE("a key stored with different content is a conflict", "[idempotency]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  store.append(keyed("Paid", "inv-1", "pay-1", "\x01"));
  auto changed = [&](auto&& mutate) {
    EventData e = keyed("Paid", "inv-1", "pay-1", "\x01");
    mutate(e);
    return error_code_of([&] { store.append(e); });
  };
  CHECK(changed([](EventData& e) { e.data = "\x02"; }) == ErrorCode::idempotency_conflict);
  CHECK(changed([](EventData& e) { e.type = "Refunded"; }) == ErrorCode::idempotency_conflict);
  CHECK(changed([](EventData& e) { e.aggregate = "inv-2"; }) == ErrorCode::idempotency_conflict);
  CHECK(changed([](EventData& e) { e.metadata["m"] = "v"; }) == ErrorCode::idempotency_conflict);
  CHECK(changed([](EventData& e) { e.content_type = ContentType::bytes; }) ==
        ErrorCode::idempotency_conflict);
  CHECK(store.stats().event_count == 1);
}

TEST_CASE("a batch whose keys are only partly stored is a conflict", "[idempotency]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  store.append_batch({keyed("A", "x", "k1"), keyed("B", "x", "k2")});
  try {
    store.append_batch({keyed("A", "x", "k1"), keyed("B", "x", "k2"), keyed("C", "x", "k3")});
    FAIL("partly stored batch accepted");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::idempotency_conflict);
    CHECK(e.index() == 2u);
  }
  // A stored key mixed with an unkeyed event is partly stored too.
  CHECK(error_code_of([&] { store.append_batch({keyed("A", "x", "k1"), event("B", "x")}); }) ==
        ErrorCode::idempotency_conflict);
  CHECK(store.stats().event_count == 2);
  // New keys alone are appended normally.
  CHECK_FALSE(store.append_batch({keyed("C", "x", "k3")}).replayed);
  CHECK(store.stats().event_count == 3);
}

TEST_CASE("a key repeated inside one batch is invalid", "[idempotency]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  CHECK(error_code_of([&] { store.append_batch({keyed("A", "x", "k"), keyed("B", "x", "k")}); }) ==
        ErrorCode::invalid_argument);
  CHECK(store.stats().event_count == 0);
}
