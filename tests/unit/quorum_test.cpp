// Quorum replication's rules in the core (store/replication_gate.h), driven
// through replication_access as lib/replication drives them — without NATS:
// the test plays the replicator. The real cluster's side is in
// tests/tool/test_replication.py.
#include <catch2/catch.hpp>

#include <atomic>
#include <chrono>
#include <future>
#include <mutex>
#include <thread>
#include <vector>

#include "lighthouse/lighthouse.h"
#include "store/replication_access.h"
#include "support/events.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using namespace lighthouse::testing;
using namespace std::chrono_literals;
namespace rep = lighthouse::replication_access;

namespace {

Options quorum_options(double timeout_seconds) {
  Options o = quiet_options();
  o.quorum_timeout_seconds = timeout_seconds;
  return o;
}

std::vector<std::uint64_t> sequences(EventCursor cursor) {
  std::vector<std::uint64_t> out;
  for (const RecordedEvent& e : cursor) out.push_back(e.id.sequence);
  return out;
}

std::vector<std::uint64_t> all(const Store& store) { return sequences(store.query(Query{})); }

struct Collector {
  std::mutex mutex;
  std::vector<std::uint64_t> seen;
  EventHandler handler() {
    return [this](const RecordedEvent& e) {
      std::lock_guard lock(mutex);
      seen.push_back(e.id.sequence);
    };
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return seen.size();
  }
  bool wait_for(std::size_t n, std::chrono::milliseconds within) {
    const auto deadline = std::chrono::steady_clock::now() + within;
    while (size() < n) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      std::this_thread::sleep_for(5ms);
    }
    return true;
  }
};

}  // namespace

TEST_CASE("quorum mode: an append completes once the stream acknowledged it, and readers stop at the mark") {
  TempDir dir;
  Store store = Store::open(dir / "s", quorum_options(30));
  for (int i = 0; i < 3; ++i) store.append(event("order.placed", "order-1"));
  std::atomic<int> pokes{0};
  rep::enter_quorum(store, 3, [&] { ++pokes; });

  std::future<AppendResult> pending = store.append_async(event("order.placed", "order-1"));
  CHECK(pending.wait_for(200ms) == std::future_status::timeout);
  CHECK(pokes.load() >= 1);                      // the replicator was told
  CHECK(store.stats().last_sequence == 4);       // durable here ...
  CHECK(all(store) == std::vector<std::uint64_t>{1, 2, 3});  // ... but no reader sees it
  CHECK(sequences(store.read_aggregate("order-1")) == std::vector<std::uint64_t>{1, 2, 3});
  Query backward;
  backward.direction = Direction::reverse;
  CHECK(sequences(store.query(backward)) == std::vector<std::uint64_t>{3, 2, 1});
  Query by_type;
  by_type.types = {"order.placed"};
  CHECK(sequences(store.query(by_type)) == std::vector<std::uint64_t>{1, 2, 3});
  Collector got;
  SubscribeOptions so;
  Subscription sub = store.subscribe({}, SubscriptionStart::beginning(), got.handler(), so);
  REQUIRE(got.wait_for(3, 5s));
  std::this_thread::sleep_for(200ms);
  CHECK(got.size() == 3);
  CHECK(rep::appends_waiting(store) == 1);

  rep::advance_high_water(store, 4);  // the stream acknowledged event 4
  REQUIRE(pending.wait_for(5s) == std::future_status::ready);
  const AppendResult result = pending.get();
  CHECK(result.events.front().id.sequence == 4);
  CHECK(all(store) == std::vector<std::uint64_t>{1, 2, 3, 4});
  CHECK(store.get(result.events.front().id).id.sequence == 4);
  REQUIRE(got.wait_for(4, 5s));
  CHECK(rep::appends_waiting(store) == 0);
  sub.cancel();

  // A batch of several waits for its last event.
  Batch three;
  three.events = {event("a"), event("b"), event("c")};
  auto batch = store.append_batch_async(std::move(three));
  rep::advance_high_water(store, 6);
  CHECK(batch.wait_for(200ms) == std::future_status::timeout);
  CHECK(all(store).back() == 6);
  rep::advance_high_water(store, 7);
  REQUIRE(batch.wait_for(5s) == std::future_status::ready);
  CHECK(batch.get().events.back().id.sequence == 7);
  rep::detach_quorum(store);
}

TEST_CASE("quorum mode: an append not acknowledged in time fails with replication_pending, stays, and its retry returns it") {
  TempDir dir;
  Store store = Store::open(dir / "s", quorum_options(0.2));
  rep::enter_quorum(store, 0, {});
  const auto t = std::chrono::steady_clock::now();
  try {
    store.append(keyed("payment.taken", "pay-1", "k-1"));
    FAIL("the append completed without the stream's acknowledgement");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::replication_pending);
    const std::string m = e.what();
    CHECK(m.find("event 1") != std::string::npos);
    CHECK(m.find("durable") != std::string::npos);
    CHECK(m.find("within 0.2 s") != std::string::npos);
    CHECK(m.find("same idempotency key") != std::string::npos);
  }
  CHECK(std::chrono::steady_clock::now() - t >= 200ms);
  CHECK(store.stats().last_sequence == 1);  // it stays
  CHECK(all(store).empty());
  CHECK(error_code_of([&] { store.append(keyed("payment.taken", "pay-1", "k-1")); }) ==
        ErrorCode::replication_pending);
  CHECK(store.stats().last_sequence == 1);  // the retry wrote nothing

  rep::advance_high_water(store, 1);
  const AppendResult retry = store.append(keyed("payment.taken", "pay-1", "k-1"));
  CHECK(retry.replayed);
  CHECK(retry.events.front().id.sequence == 1);
  CHECK(all(store) == std::vector<std::uint64_t>{1});
  rep::detach_quorum(store);
}

TEST_CASE("quorum mode without a replicator in this process: appends wait on the mark stored in meta") {
  TempDir dir;
  Store store = Store::open(dir / "s", quorum_options(30));
  rep::enter_quorum(store, 0, {});
  rep::detach_quorum(store);  // as if the replicator ran in another process
  std::future<AppendResult> pending = store.append_async(event("a"));
  CHECK(pending.wait_for(100ms) == std::future_status::timeout);
  // The other process's replicator stores the mark (what it does every 10 ms).
  rep::write(store, {{"high_water", "1"}});
  REQUIRE(pending.wait_for(5s) == std::future_status::ready);
  CHECK(pending.get().events.front().id.sequence == 1);
  CHECK(all(store) == std::vector<std::uint64_t>{1});

  // A damaged mark is corruption, named.
  rep::write(store, {{"high_water", "x1"}});
  CHECK(error_code_of([&] { all(store); }) == ErrorCode::corruption);

  // Out of quorum mode (a replicator started in async mode): no cap, no wait.
  rep::leave_quorum(store);
  store.append(event("b"));
  CHECK(all(store) == std::vector<std::uint64_t>{1, 2});
}

TEST_CASE("quorum mode: closing the store fails the appends still waiting, which stay durable") {
  TempDir dir;
  std::future<AppendResult> pending;
  {
    Store store = Store::open(dir / "s", quorum_options(30));
    rep::enter_quorum(store, 0, {});
    pending = store.append_async(event("a"));
    CHECK(pending.wait_for(100ms) == std::future_status::timeout);
    rep::detach_quorum(store);
    store.close();
  }
  REQUIRE(pending.wait_for(5s) == std::future_status::ready);
  try {
    pending.get();
    FAIL("completed");
  } catch (const Error& e) {
    CHECK(e.code() == ErrorCode::replication_pending);
    CHECK(std::string(e.what()).find("closed") != std::string::npos);
  }
  CHECK(Store::open(dir / "s").stats().last_sequence == 1);
}

TEST_CASE("the replicator's lag is a health trigger: warning, then degraded, and healthy once it stopped") {
  TempDir dir;
  Options o;
  o.health.window_seconds = 0;  // evaluated when asked
  o.health.enter_after = 1;
  o.health.leave_after = 1;
  o.health.replication_lag_warning_seconds = 10;
  o.health.replication_lag_degraded_seconds = 60;
  o.monitor = false;
  Store store = Store::open(dir / "s", o);
  store.append(event("a"));
  rep::note_lag(store, "orders", 3, 2.0);
  CHECK(store.evaluate_health().state == HealthState::healthy);
  rep::note_lag(store, "orders", 40, 12.5);
  HealthStatus s = store.evaluate_health();
  CHECK(s.state == HealthState::warning);
  CHECK(s.reason.find("replication to stream 'orders' lags 40 events, the oldest unacknowledged 12.5") !=
        std::string::npos);
  rep::note_lag(store, "orders", 900, 75);
  CHECK(store.evaluate_health().state == HealthState::degraded);
  // The transition is recorded as a `$health.degraded` event with the figures.
  Query q;
  q.types = {"$health.degraded"};
  CHECK(sequences(store.query(q)).size() == 1);
  rep::clear_lag(store);
  CHECK(store.evaluate_health().state == HealthState::healthy);
}
