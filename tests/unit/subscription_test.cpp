// Subscriptions: catch-up then live with no gap and no duplicate, slow
// consumers, other processes' appends, checkpoints, handler errors, cancel
// and close.
#include <catch2/catch.hpp>
#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <future>
#include <optional>
#include <chrono>
#include <mutex>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <thread>

#include "lighthouse/lighthouse.h"
#include "support/events.h"
#include "support/process.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using namespace lighthouse::testing;
using namespace std::chrono_literals;

namespace {

// Collects what a handler receives.
struct Collector {
  std::mutex mutex;
  std::vector<RecordedEvent> events;
  EventHandler handler() {
    return [this](const RecordedEvent& e) {
      std::lock_guard lock(mutex);
      events.push_back(e);
    };
  }
  std::size_t size() {
    std::lock_guard lock(mutex);
    return events.size();
  }
  // Waits (generously: a loaded machine) until `n` events arrived.
  bool wait_for(std::size_t n, std::chrono::seconds timeout = 60s) {
    const auto until = std::chrono::steady_clock::now() + timeout;
    while (size() < n) {
      if (std::chrono::steady_clock::now() > until) return false;
      std::this_thread::sleep_for(2ms);
    }
    return true;
  }
};

// Every sequence from `first` on, once, in order.
std::string check_contiguous(const std::vector<RecordedEvent>& events, std::uint64_t first) {
  for (std::size_t i = 0; i < events.size(); ++i) {
    if (events[i].id.sequence != first + i) {
      return "at " + std::to_string(i) + ": sequence " + std::to_string(events[i].id.sequence) + ", expected " +
             std::to_string(first + i);
    }
  }
  return "";
}

Options quiet() { return quiet_options(); }

}  // namespace

TEST_CASE("catch-up then live with appends racing the switch: no gap, no duplicate, in order",
          "[subscription]") {
  for (int repetition = 0; repetition < 20; ++repetition) {
    TempDir dir;
    Store store = Store::open(dir.path(), quiet());
    for (int i = 0; i < 300; ++i) store.append(event("Before"));
    std::atomic<bool> go{false};
    std::thread writer([&] {
      while (!go) std::this_thread::yield();
      for (int i = 0; i < 200; ++i) {
        if (i % 10 == 0) store.append_batch({event("Racing"), event("Racing")});
        else store.append(event("Racing"));
      }
    });
    Collector got;
    SubscribeOptions o;
    o.chunk_events = 64;  // several catch-up chunks, so the switch races the writer
    go = true;
    Subscription sub = store.subscribe({}, SubscriptionStart::beginning(), got.handler(), o);
    writer.join();
    const std::size_t total = 300 + 200 + 20;
    REQUIRE(got.wait_for(total));
    std::this_thread::sleep_for(5ms);
    sub.cancel();
    std::lock_guard lock(got.mutex);
    REQUIRE(got.events.size() == total);
    REQUIRE(check_contiguous(got.events, 1) == "");
  }
}

TEST_CASE("a filter selects by type, type prefix and aggregate; starts by ID, sequence, time and now",
          "[subscription]") {
  TempDir dir;
  Store store = Store::open(dir.path(), quiet());
  std::vector<EventId> ids;
  for (int i = 0; i < 30; ++i) {
    ids.push_back(store.append(event(i % 3 == 0 ? "order.placed" : "order.paid", "order-" + std::to_string(i % 2)))
                      .events[0]
                      .id);
  }
  auto collect = [&](const Query& q, SubscriptionStart start) {
    Collector got;
    SubscribeOptions o;
    o.stop_when_caught_up = true;
    auto sub = store.subscribe(q, start, got.handler(), o);
    sub.wait();
    std::vector<std::uint64_t> seqs;
    for (const auto& e : got.events) seqs.push_back(e.id.sequence);
    return seqs;
  };
  Query placed;
  placed.types = {"order.placed"};
  CHECK(collect(placed, SubscriptionStart::beginning()) ==
        std::vector<std::uint64_t>{1, 4, 7, 10, 13, 16, 19, 22, 25, 28});
  Query prefix;
  prefix.type_prefix = "order.";
  CHECK(collect(prefix, SubscriptionStart::after(ids[19])) ==
        std::vector<std::uint64_t>{21, 22, 23, 24, 25, 26, 27, 28, 29, 30});
  Query paid_prefix;
  paid_prefix.type_prefix = "order.pa";
  CHECK(collect(paid_prefix, SubscriptionStart::after(ids[22])) ==
        std::vector<std::uint64_t>{24, 26, 27, 29, 30});
  Query agg;
  agg.aggregate = "order-1";
  CHECK(collect(agg, SubscriptionStart::from_sequence(21)) == std::vector<std::uint64_t>{22, 24, 26, 28, 30});
  CHECK(collect({}, SubscriptionStart::since(ids[27].timestamp_ns)) == std::vector<std::uint64_t>{28, 29, 30});
  CHECK(collect({}, SubscriptionStart::now()).empty());
  // A bound in the filter is refused: the start gives the position.
  Query bounded;
  bounded.limit = 3;
  CHECK(error_code_of([&] { store.subscribe(bounded, SubscriptionStart::beginning(), [](const RecordedEvent&) {}); }) ==
        ErrorCode::invalid_argument);
  SubscribeOptions bad;
  bad.consumer = std::string(129, 'c');
  CHECK(error_code_of([&] {
          store.subscribe({}, SubscriptionStart::beginning(), [](const RecordedEvent&) {}, bad);
        }) == ErrorCode::invalid_argument);
}

TEST_CASE("a consumer slower than the writers for a long stretch falls behind, is never dropped, and catches up",
          "[subscription]") {
  TempDir dir;
  Store store = Store::open(dir.path(), quiet());
  Collector got;
  std::atomic<std::uint64_t> max_lag{0};
  Subscription* self = nullptr;
  SubscribeOptions o;
  o.chunk_events = 50;
  Subscription sub = store.subscribe(
      {}, SubscriptionStart::beginning(),
      [&](const RecordedEvent& e) {
        std::this_thread::sleep_for(200us);  // slow
        got.handler()(e);
      },
      o);
  self = &sub;
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < 40; ++i) {
    std::vector<EventData> batch(50, event("Fast"));
    store.append_batch(batch);
    max_lag = std::max<std::uint64_t>(max_lag, self->lag().events);
  }
  const auto writers_took = std::chrono::steady_clock::now() - start;
  // The lag is in the metrics while the consumer is behind.
  const std::string metrics = store.metrics_text();
  CHECK(metrics.find("lighthouse_subscriptions 1\n") != std::string::npos);
  CHECK(metrics.find("lighthouse_subscription_lag_events{subscription=\"anonymous-1\"}") != std::string::npos);
  REQUIRE(got.wait_for(2000));
  const auto consumer_took = std::chrono::steady_clock::now() - start;
  // The writers did not wait for the consumer.
  CHECK(writers_took < consumer_took);
  CHECK(max_lag > 0);
  std::this_thread::sleep_for(20ms);
  CHECK(sub.lag().events == 0);
  CHECK(sub.lag().seconds == 0);
  std::lock_guard lock(got.mutex);
  CHECK(check_contiguous(got.events, 1) == "");
}

TEST_CASE("appends of another process are delivered", "[subscription]") {
  TempDir dir;
  Store store = Store::open(dir.path(), quiet());
  Collector got;
  Subscription sub = store.subscribe({}, SubscriptionStart::now(), got.handler());
  auto result = run({helper_path("APPEND_WORKER"), dir.path().string(), "200", "--batch", "5"});
  REQUIRE(result.exit_code == 0);
  // Generous: the bound (poll_seconds) is measured by the benchmark.
  REQUIRE(got.wait_for(200));
  std::lock_guard lock(got.mutex);
  std::size_t worked = 0;
  for (const auto& e : got.events) worked += e.type.rfind("Worked", 0) == 0;
  CHECK(worked == 200);
}

TEST_CASE("another process's appends reach a subscriber within about the poll interval", "[subscription]") {
  TempDir dir;
  Store store = Store::open(dir.path(), quiet());
  SubscribeOptions o;
  o.poll_seconds = 0.25;
  std::mutex mutex;
  std::condition_variable arrived;
  std::vector<std::pair<std::uint64_t, std::chrono::steady_clock::time_point>> deliveries;
  auto sub = store.subscribe({}, SubscriptionStart::now(), [&](const RecordedEvent& e) {
    std::lock_guard lock(mutex);
    deliveries.emplace_back(e.id.sequence, std::chrono::steady_clock::now());
    arrived.notify_all();
  }, o);
  // The other process appends one line at a time, each after the subscriber
  // has gone back to waiting; its acknowledgement comes after the commit.
  Child child = spawn({helper_path("LIGHTHOUSE_TOOL"), "append", dir.path().string()}, {}, true);
  double worst = 0;
  std::string pending;
  for (int i = 0; i < 5; ++i) {
    std::this_thread::sleep_for(300ms);  // longer than a poll: the subscriber is idle
    const std::string text = "{\"type\":\"Remote\",\"data\":" + std::to_string(i) + "}\n";
    REQUIRE(::write(child.in_fd, text.data(), text.size()) == static_cast<ssize_t>(text.size()));
    // Read up to the acknowledgement's newline.
    while (pending.find('\n') == std::string::npos) {
      char buf[256];
      const ssize_t n = ::read(child.out_fd, buf, sizeof buf);
      REQUIRE(n > 0);
      pending.append(buf, static_cast<std::size_t>(n));
    }
    const auto acked_at = std::chrono::steady_clock::now();
    const auto ack = nlohmann::json::parse(pending.substr(0, pending.find('\n')));
    pending.erase(0, pending.find('\n') + 1);
    const auto sequence = ack.at("sequence").get<std::uint64_t>();
    std::unique_lock lock(mutex);
    REQUIRE(arrived.wait_for(lock, 5s, [&] { return !deliveries.empty() && deliveries.back().first == sequence; }));
    const double late = std::chrono::duration<double>(deliveries.back().second - acked_at).count();
    worst = std::max(worst, late);
  }
  ::close(child.in_fd);
  CHECK(wait(child).exit_code == 0);
  INFO("the latest delivery came " << worst << " s after the other process's acknowledgement");
  // At most one poll interval after the commit, with room for scheduling.
  CHECK(worst < o.poll_seconds + 0.15);
}

TEST_CASE("a handler that throws stops the subscription; resuming from the checkpoint redelivers from it",
          "[subscription]") {
  TempDir dir;
  Store store = Store::open(dir.path(), quiet());
  for (int i = 0; i < 20; ++i) store.append(event("E", "", std::to_string(i)));
  std::vector<std::uint64_t> seen;
  SubscribeOptions o;
  o.consumer = "projector";
  Subscription sub = store.subscribe(
      {}, SubscriptionStart::beginning(),
      [&](const RecordedEvent& e) {
        if (e.id.sequence == 8) throw std::runtime_error("cannot project 8");
        seen.push_back(e.id.sequence);
      },
      o);
  CHECK_THROWS_WITH(sub.wait(), "cannot project 8");
  CHECK_FALSE(sub.running());
  CHECK(sub.error() != nullptr);
  CHECK(seen.size() == 7);
  REQUIRE(store.checkpoint("projector"));
  CHECK(store.checkpoint("projector")->sequence == 7);
  // The next run starts at the first event not handled.
  std::vector<std::uint64_t> again;
  o.stop_when_caught_up = true;
  auto resumed = store.subscribe({}, SubscriptionStart::beginning(),
                                 [&](const RecordedEvent& e) { again.push_back(e.id.sequence); }, o);
  resumed.wait();
  REQUIRE(again.size() == 13);
  CHECK(again.front() == 8);
  CHECK(store.checkpoint("projector")->sequence == 20);
}

TEST_CASE("a checkpoint written with the projection's events is exactly-once", "[subscription]") {
  TempDir dir;
  Store store = Store::open(dir.path(), quiet());
  for (int i = 0; i < 10; ++i) store.append(event("Source", "s"));
  SubscribeOptions o;
  o.consumer = "totals";
  o.auto_checkpoint = false;
  o.stop_when_caught_up = true;
  Query sources;
  sources.types = {"Source"};
  int fail_at = 6;
  auto project = [&] {
    return store.subscribe(sources, SubscriptionStart::beginning(),
                           [&](const RecordedEvent& e) {
                             if (static_cast<int>(e.id.sequence) == fail_at) throw std::runtime_error("crash");
                             Batch b;
                             b.events.push_back(event("Derived", "d", std::to_string(e.id.sequence)));
                             b.checkpoint = Batch::Checkpoint{"totals", e.id};
                             store.append_batch(std::move(b));
                           },
                           o);
  };
  auto first = project();
  CHECK_THROWS(first.wait());
  fail_at = -1;
  auto second = project();
  second.wait();
  // Each source event was projected once: no duplicate Derived event.
  Query derived;
  derived.types = {"Derived"};
  std::vector<std::string> data;
  auto cursor = store.query(derived);
  while (auto e = cursor.next()) data.push_back(e->data);
  CHECK(data.size() == 10);
  CHECK(std::set<std::string>(data.begin(), data.end()).size() == 10);
}

TEST_CASE("cancel from inside the handler: no call follows; cancel from outside: none after it returns",
          "[subscription]") {
  TempDir dir;
  Store store = Store::open(dir.path(), quiet());
  for (int i = 0; i < 100; ++i) store.append(event("E"));
  std::atomic<int> calls{0};
  Subscription sub;
  std::atomic<bool> ready{false};
  sub = store.subscribe({}, SubscriptionStart::beginning(), [&](const RecordedEvent&) {
    while (!ready) std::this_thread::yield();
    if (++calls == 5) sub.cancel();
  });
  ready = true;
  sub.wait();
  CHECK(calls == 5);

  std::atomic<int> outside{0};
  auto live = store.subscribe({}, SubscriptionStart::beginning(), [&](const RecordedEvent&) {
    ++outside;
    std::this_thread::sleep_for(1ms);
  });
  std::this_thread::sleep_for(10ms);
  live.cancel();
  const int at_cancel = outside;
  store.append(event("After"));
  std::this_thread::sleep_for(50ms);
  CHECK(outside == at_cancel);
  CHECK_FALSE(live.running());
}

TEST_CASE("closing the store under live subscriptions stops them cleanly", "[subscription]") {
  TempDir dir;
  Store store = Store::open(dir.path(), quiet());
  std::vector<Subscription> subs;
  std::atomic<int> calls{0};
  for (int i = 0; i < 4; ++i) {
    SubscribeOptions o;
    if (i % 2 == 0) o.consumer = "c" + std::to_string(i);
    subs.push_back(store.subscribe({}, SubscriptionStart::beginning(), [&](const RecordedEvent&) { ++calls; }, o));
  }
  // The writer appends until the close cuts it (bounded in time): the close
  // lands while appends and deliveries are under way.
  std::atomic<int> appended{0};
  std::atomic<bool> cut_by_close{false};
  std::string other_error;  // read after join
  std::thread writer([&] {
    const auto deadline = std::chrono::steady_clock::now() + 20s;
    try {
      while (std::chrono::steady_clock::now() < deadline) {
        store.append(event("E"));
        ++appended;
      }
    } catch (const Error& e) {
      if (e.code() == ErrorCode::closed) cut_by_close = true;
      else other_error = e.what();
    }
  });
  const auto until = std::chrono::steady_clock::now() + 20s;
  while ((appended < 50 || calls < 50) && std::chrono::steady_clock::now() < until) {
    std::this_thread::sleep_for(1ms);
  }
  REQUIRE(appended >= 50);
  REQUIRE(calls >= 50);
  store.close();
  writer.join();
  CHECK(other_error.empty());
  CHECK(cut_by_close);
  for (auto& s : subs) {
    CHECK_NOTHROW(s.wait());
    CHECK_FALSE(s.running());
  }
  const int after_close = calls;
  std::this_thread::sleep_for(20ms);
  CHECK(calls == after_close);
  // Dropping the last handle of a store also stops its subscriptions.
  {
    Store other = Store::open(dir / "other", quiet());
    auto s = other.subscribe({}, SubscriptionStart::beginning(), [](const RecordedEvent&) {});
    subs.push_back(std::move(s));
  }
  CHECK_NOTHROW(subs.back().wait());
}

TEST_CASE("a consumer killed with SIGKILL resumes from its checkpoint with no event lost", "[subscription]") {
  TempDir dir;
  {
    Store store = Store::open(dir.path(), quiet());
    for (int i = 0; i < 3000; ++i) store.append_async(event("E"));
    store.append(event("Last"));
  }
  const std::string tool = helper_path("LIGHTHOUSE_TOOL");
  auto sequences = [](const std::string& out) {
    std::vector<std::uint64_t> seqs;
    std::istringstream in(out);
    std::string line;
    while (std::getline(in, line)) {
      if (in.eof()) break;  // cut by the kill
      seqs.push_back(nlohmann::json::parse(line).at("sequence").get<std::uint64_t>());
    }
    return seqs;
  };
  Options ro = quiet();
  ro.read_only = true;
  Store observer = Store::open(dir.path(), ro);
  // The first run reads slowly (its output is taken in small pieces), and is
  // killed once it has stored a checkpoint past event 1 and before it caught
  // up; a kill that lands after the end is tried again under a new name.
  for (int attempt = 0;; ++attempt) {
    REQUIRE(attempt < 10);
    const std::string consumer = "reader-" + std::to_string(attempt);
    Child child = spawn({tool, "tail", dir.path().string(), "--consumer", consumer, "--follow"});
    std::string first_out;
    const auto deadline = std::chrono::steady_clock::now() + 30s;
    for (;;) {
      REQUIRE(std::chrono::steady_clock::now() < deadline);
      char piece[512];
      const ssize_t n = ::read(child.out_fd, piece, sizeof piece);
      REQUIRE(n > 0);
      first_out.append(piece, static_cast<std::size_t>(n));
      std::this_thread::sleep_for(1ms);
      const auto stored = observer.checkpoint(consumer);
      if (stored && stored->sequence > 1) break;
    }
    ::kill(child.pid, SIGKILL);
    auto first = wait(child);
    first_out += first.out;
    REQUIRE(first.signal == SIGKILL);
    const auto at_kill = observer.checkpoint(consumer);  // the last one stored before the kill
    REQUIRE(at_kill);
    if (at_kill->sequence >= 3001) continue;
    auto a = sequences(first_out);
    // A checkpoint never runs ahead of what was delivered.
    REQUIRE_FALSE(a.empty());
    CHECK(a.back() >= at_kill->sequence);
    auto second = run({tool, "tail", dir.path().string(), "--consumer", consumer});
    REQUIRE(second.exit_code == 0);
    auto b = sequences(second.out);
    REQUIRE_FALSE(b.empty());
    // Exactly after the checkpoint (not over from event 1), to the end,
    // without a gap.
    CHECK(b.front() == at_kill->sequence + 1);
    CHECK(b.back() == 3001);
    for (std::size_t i = 1; i < b.size(); ++i) REQUIRE(b[i] == b[i - 1] + 1);
    // Caught up and stored: a third run prints nothing.
    CHECK(run({tool, "tail", dir.path().string(), "--consumer", consumer}).out.empty());
    break;
  }
}

TEST_CASE("a store dropped under a subscription whose handle outlives it: no self-wait, the checkpoint kept",
          "[subscription][regression]") {
  // Review finding: the subscription's thread ran the store's shutdown (it
  // held the last reference) and waited for itself.
  TempDir dir;
  {
    Store store = Store::open(dir.path(), quiet());
    for (int i = 0; i < 400; ++i) store.append(event("E"));
  }
  std::atomic<int> handled{0};
  struct Holder {
    Subscription sub;  // destroyed after the store below
    std::optional<Store> store;
  };
  {
    Holder h;
    h.store.emplace(Store::open(dir.path(), quiet()));
    SubscribeOptions o;
    o.consumer = "keeper";
    o.chunk_events = 50;
    h.sub = h.store->subscribe({}, SubscriptionStart::beginning(),
                               [&](const RecordedEvent&) {
                                 ++handled;
                                 std::this_thread::sleep_for(100us);
                               },
                               o);
    while (handled < 120) std::this_thread::sleep_for(1ms);
    h.store.reset();  // the last handle: the thread may hold the store mid-chunk
  }  // ~Subscription: must not hang
  Store again = Store::open(dir.path(), quiet());
  REQUIRE(again.checkpoint("keeper"));
  // Whatever was handled is checkpointed: the final checkpoint was stored
  // even though the thread could no longer reach the store.
  CHECK(again.checkpoint("keeper")->sequence == static_cast<std::uint64_t>(handled.load()));
}

TEST_CASE("a handler that opens and closes stores does not deadlock a concurrent close", "[subscription][regression]") {
  TempDir dir;
  Store store = Store::open(dir / "main", quiet());
  for (int i = 0; i < 200; ++i) store.append(event("E"));
  std::atomic<int> handled{0};
  auto sub = store.subscribe({}, SubscriptionStart::beginning(), [&](const RecordedEvent&) {
    Store side = Store::open(dir / "side", quiet());
    side.close();
    ++handled;
  });
  while (handled < 20) std::this_thread::sleep_for(1ms);
  store.close();
  CHECK_NOTHROW(sub.wait());
}

TEST_CASE("a checkpoint past the last event is refused; wait() from the handler raises instead of hanging",
          "[subscription]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  // No events yet: only a position at or before the (empty) end.
  CHECK(error_code_of([&] { store.set_checkpoint("c", EventId{1, 1, 1}); }) == ErrorCode::invalid_argument);
  std::vector<EventId> ids;
  for (int i = 0; i < 5; ++i) ids.push_back(store.append(event("T")).events[0].id);
  CHECK(error_code_of([&] { store.set_checkpoint("c", EventId{~0ull, ~0ull, 1}); }) ==
        ErrorCode::invalid_argument);
  EventId after_last = ids.back();
  ++after_last.node_id;
  CHECK(error_code_of([&] { store.set_checkpoint("c", after_last); }) == ErrorCode::invalid_argument);
  CHECK_FALSE(store.checkpoint("c"));
  store.set_checkpoint("c", ids[2]);
  store.set_checkpoint("c", ids.back());
  store.set_checkpoint("c", ids[2]);  // moving back is allowed: redelivery
  REQUIRE(store.checkpoint("c"));
  CHECK(*store.checkpoint("c") == ids[2]);

  // wait() inside the subscription's own handler.
  std::promise<ErrorCode> from_handler;
  std::optional<Subscription> sub;
  std::mutex mutex;
  std::atomic<bool> once{false};
  {
    std::lock_guard lock(mutex);
    sub.emplace(store.subscribe({}, SubscriptionStart::beginning(), [&](const RecordedEvent&) {
      if (once.exchange(true)) return;
      std::lock_guard inner(mutex);
      from_handler.set_value(error_code_of([&] { sub->wait(); }));
    }));
  }
  auto code = from_handler.get_future();
  REQUIRE(code.wait_for(10s) == std::future_status::ready);
  CHECK(code.get() == ErrorCode::invalid_argument);
  sub->cancel();
}

TEST_CASE("a consumer name has one live subscription per process", "[subscription]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  store.append(event("T"));
  SubscribeOptions named;
  named.consumer = "mailer";
  Subscription first = store.subscribe({}, SubscriptionStart::beginning(), [](const RecordedEvent&) {}, named);
  CHECK(error_code_of([&] {
          store.subscribe({}, SubscriptionStart::beginning(), [](const RecordedEvent&) {}, named);
        }) == ErrorCode::invalid_argument);
  SubscribeOptions other;
  other.consumer = "auditor";
  Subscription second = store.subscribe({}, SubscriptionStart::beginning(), [](const RecordedEvent&) {}, other);
  first.cancel();
  // Once the first has stopped, the name is free again.
  Subscription again = store.subscribe({}, SubscriptionStart::beginning(), [](const RecordedEvent&) {}, named);
  CHECK(again.running());
  // A subscription that stops by itself (caught up) frees its name too.
  again.cancel();
  SubscribeOptions once = named;
  once.stop_when_caught_up = true;
  Subscription caught_up = store.subscribe({}, SubscriptionStart::beginning(), [](const RecordedEvent&) {}, once);
  caught_up.wait();
  CHECK_NOTHROW(store.subscribe({}, SubscriptionStart::beginning(), [](const RecordedEvent&) {}, named).cancel());
}

TEST_CASE("from a store callback, cancel() and wait() raise and dropping the handle does not wait",
          "[subscription][health]") {
  TempDir dir;
  Options options;
  options.health.window_seconds = 0;
  Store store = Store::open(dir / "store", options);
  store.append(event("T"));
  SubscribeOptions named;
  named.consumer = "projector";  // its last checkpoint goes through the committer
  std::optional<Subscription> sub;
  std::atomic<int> handled{0};
  sub.emplace(store.subscribe({}, SubscriptionStart::beginning(), [&](const RecordedEvent&) { ++handled; }, named));
  // It has an event to checkpoint before it is dropped (on a slow machine
  // the drop could otherwise come before its first read).
  for (int waited = 0; handled.load() == 0 && waited < 10000; ++waited) std::this_thread::sleep_for(1ms);
  REQUIRE(handled.load() == 1);
  std::atomic<int> refused{0};
  std::atomic<bool> dropped{false};
  store.on_health_change([&](const HealthTransition&) {
    if (!sub) return;
    for (auto call : {+[](Subscription& s) { s.cancel(); }, +[](Subscription& s) { s.wait(); }}) {
      try {
        call(*sub);
      } catch (const Error& error) {
        if (error.code() == ErrorCode::invalid_argument) ++refused;
      }
    }
    sub.reset();  // asks it to stop, without waiting for it here
    dropped = true;
  });
  auto entered = std::async(std::launch::async, [&] { store.enter_emergency("drill"); });
  REQUIRE(entered.wait_for(20s) == std::future_status::ready);  // no deadlock
  entered.get();
  CHECK(dropped.load());
  CHECK(refused.load() == 2);
  store.clear_emergency();
  // The dropped subscription stopped by itself and stored its checkpoint.
  const auto deadline = std::chrono::steady_clock::now() + 10s;
  while (!store.checkpoint("projector") && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(10ms);
  }
  CHECK(store.checkpoint("projector"));
  // Its name is free again once its thread ended.
  bool claimed = false;
  while (!claimed && std::chrono::steady_clock::now() < deadline) {
    try {
      store.subscribe({}, SubscriptionStart::beginning(), [](const RecordedEvent&) {}, named).cancel();
      claimed = true;
    } catch (const Error&) {
      std::this_thread::sleep_for(10ms);
    }
  }
  CHECK(claimed);
}
