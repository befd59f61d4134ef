#include <catch2/catch.hpp>

#include <atomic>
#include <condition_variable>
#include <future>
#include <set>
#include <thread>

#include "lighthouse/lighthouse.h"
#include "store/committer.h"
#include "support/events.h"
#include "support/scan.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using lighthouse::testing::error_code_of;
using lighthouse::testing::event;
using lighthouse::testing::TempDir;

TEST_CASE("8 threads appending concurrently: gap-free, contiguous, every append answered",
          "[group_commit]") {
  TempDir dir;
  const int kThreads = 8, kPerThread = 400;
  std::atomic<int> acknowledged{0};
  std::set<std::uint64_t> sequences;
  std::mutex mutex;
  {
    Store store = Store::open(dir / "store");
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kPerThread; ++i) {
          // Shared aggregates across threads, plus a batch now and then.
          std::string aggregate = "shared-" + std::to_string(i % 5);
          AppendResult r = i % 10 == 0 ? store.append_batch({event("T", aggregate), event("U", aggregate)})
                                       : store.append(event("T", aggregate));
          std::lock_guard lock(mutex);
          for (auto& e : r.events) sequences.insert(e.id.sequence);
          acknowledged += static_cast<int>(r.events.size());
        }
      });
    }
    for (auto& t : threads) t.join();
    auto stats = store.stats();
    CHECK(stats.last_sequence == stats.event_count);
    INFO("commits: " << stats.commits);
    CHECK(stats.commits < static_cast<std::uint64_t>(kThreads * kPerThread));  // grouped
  }
  CHECK(sequences.size() == static_cast<std::size_t>(acknowledged.load()));
  auto scanned = lighthouse::testing::scan(dir / "store");
  CHECK(lighthouse::testing::appended_events(scanned).size() == static_cast<std::size_t>(acknowledged.load()));
  CHECK(lighthouse::testing::check_history(scanned) == "");
}

TEST_CASE("thousands of asynchronous appends from one thread complete in groups",
          "[group_commit][async]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  std::vector<std::future<AppendResult>> futures;
  for (int i = 0; i < 4096; ++i) {
    futures.push_back(store.append_async(event("T", "agg-" + std::to_string(i % 64))));
  }
  std::uint64_t last = 0;
  for (auto& f : futures) {
    auto r = f.get();
    CHECK(r.events[0].id.sequence == last + 1);  // submission order is commit order
    last = r.events[0].id.sequence;
  }
  auto stats = store.stats();
  CHECK(stats.event_count == 4096);
  CHECK(stats.commits < 4096 / 4);
}

TEST_CASE("a conflicting batch in a group fails alone", "[group_commit]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  store.append(event("Opened", "contested"));
  std::vector<std::future<AppendResult>> good, bad, bad_keys;
  store.append(lighthouse::testing::keyed("Paid", "p", "key-1", "\x01"));
  for (int i = 0; i < 300; ++i) {
    good.push_back(store.append_async(event("T", "free-" + std::to_string(i))));
    bad.push_back(store.append_async(event("T", "contested"), ExpectedVersion::no_stream()));
    bad_keys.push_back(store.append_async(lighthouse::testing::keyed("Paid", "p", "key-1", "\x02")));
    Batch invalid_in_txn;  // passes validation, fails on the stored state
    invalid_in_txn.events = {event("T", "x"), event("T", "contested")};
    invalid_in_txn.expectations = {{"contested", ExpectedVersion::exact(99)}};
    bad.push_back(store.append_batch_async(invalid_in_txn));
  }
  for (auto& f : good) CHECK(f.get().events.size() == 1);
  for (auto& f : bad) CHECK(error_code_of([&] { f.get(); }) == ErrorCode::wrong_expected_version);
  for (auto& f : bad_keys) CHECK(error_code_of([&] { f.get(); }) == ErrorCode::idempotency_conflict);
  auto stats = store.stats();
  CHECK(stats.event_count == 302);
  CHECK(stats.commits < 300);  // the conflicts shared transactions with the good appends
  store.close();
  CHECK(lighthouse::testing::check_history(lighthouse::testing::scan(dir / "store")) == "");
}

TEST_CASE("append_batches inside a group is undone alone when a later batch fails",
          "[group_commit]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  std::vector<std::future<AppendResult>> around;
  for (int i = 0; i < 50; ++i) around.push_back(store.append_async(event("Before")));
  std::vector<Batch> failing(2);
  failing[0].events = {event("A", "nested")};
  failing[1].events = {event("B", "nested")};
  failing[1].expectations = {{"nested", ExpectedVersion::exact(5)}};
  auto failing_future = std::async(std::launch::async, [&] { return store.append_batches(failing); });
  for (int i = 0; i < 50; ++i) around.push_back(store.append_async(event("After")));
  CHECK(error_code_of([&] { failing_future.get(); }) == ErrorCode::wrong_expected_version);
  for (auto& f : around) f.get();
  CHECK(store.stats().event_count == 100);
  store.close();
  auto scanned = lighthouse::testing::scan(dir / "store");
  CHECK(lighthouse::testing::check_history(scanned) == "");
  CHECK(scanned.heads.count("nested") == 0);
}

TEST_CASE("closing the store completes every queued append", "[group_commit][close]") {
  TempDir dir;
  std::vector<std::future<AppendResult>> futures;
  {
    Store store = Store::open(dir / "store");
    for (int i = 0; i < 3000; ++i) futures.push_back(store.append_async(event("T")));
    store.close();
    CHECK(error_code_of([&] { store.append_async(event("T")); }) == ErrorCode::closed);
    CHECK(error_code_of([&] { store.append(event("T")); }) == ErrorCode::closed);
  }
  for (auto& f : futures) {
    REQUIRE(f.wait_for(std::chrono::seconds(0)) == std::future_status::ready);
    CHECK(f.get().events.size() == 1);
  }
  CHECK(Store::open(dir / "store").stats().event_count == 3000);
}

TEST_CASE("closing while threads append answers every caller", "[group_commit][close]") {
  TempDir dir;
  std::atomic<int> ok{0}, closed{0}, other{0};
  Store store = Store::open(dir / "store");
  std::vector<std::thread> threads;
  // Each thread appends until the close cuts it (bounded in time).
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
      while (std::chrono::steady_clock::now() < deadline) {
        try {
          store.append(event("T"));
          ++ok;
        } catch (const Error& e) {
          (e.code() == ErrorCode::closed ? closed : other)++;
          if (e.code() == ErrorCode::closed) return;
        }
      }
    });
  }
  // The close lands while appends are being committed.
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (ok < 40 && std::chrono::steady_clock::now() < until) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(ok >= 40);
  store.close();
  for (auto& t : threads) t.join();
  CHECK(other == 0);
  CHECK(closed == 4);  // every thread was cut by the close, none ran out of time
  // Every append that was answered with success is stored; none other is.
  CHECK(Store::open(dir / "store").stats().event_count == static_cast<std::uint64_t>(ok.load()));
}

TEST_CASE("the map grows by itself under concurrent appends and readers", "[group_commit][map]") {
  TempDir dir;
  Options options;
  options.map_size = 256 * 1024;  // tiny: grows many times
  // No health transitions: on a loaded machine an SLA breach would add a
  // `$health.*` event of the store's own to the count below.
  options.health.window_seconds = 0;
  std::atomic<bool> done{false};
  std::atomic<int> reads{0}, bad_reads{0};
  std::vector<EventId> ids;
  std::mutex ids_mutex;
  {
    Store store = Store::open(dir / "store", options);
    ids.push_back(store.append(event("First", "a", std::string(300, 'x'))).events[0].id);
    std::vector<std::thread> readers;
    for (int r = 0; r < 2; ++r) {
      readers.emplace_back([&] {
        while (!done) {
          EventId id;
          {
            std::lock_guard lock(ids_mutex);
            id = ids[static_cast<std::size_t>(reads.load()) % ids.size()];
          }
          if (store.get(id).id != id) ++bad_reads;  // Catch2 asserts are not thread-safe
          ++reads;
        }
      });
    }
    std::vector<std::thread> writers;
    for (int w = 0; w < 4; ++w) {
      writers.emplace_back([&, w] {
        for (int i = 0; i < 500; ++i) {
          auto r = store.append_batch({event("Grow", "w" + std::to_string(w), std::string(2000, 'y')),
                                       event("Grow", "w" + std::to_string(w), std::string(2000, 'z'))});
          std::lock_guard lock(ids_mutex);
          ids.push_back(r.events[1].id);
        }
      });
    }
    for (auto& t : writers) t.join();
    done = true;
    for (auto& t : readers) t.join();
    auto stats = store.stats();
    CHECK(stats.event_count == 4001);
    CHECK(stats.map_size_bytes > options.map_size * 16);
  }
  CHECK(reads > 0);
  CHECK(bad_reads == 0);
  CHECK(lighthouse::testing::check_history(lighthouse::testing::scan(dir / "store")) == "");
}

TEST_CASE("no_meta_sync stores append and reopen in either mode", "[group_commit][durability]") {
  TempDir dir;
  Options fast;
  fast.durability = Durability::no_meta_sync;
  {
    Store store = Store::open(dir / "store", fast);
    for (int i = 0; i < 100; ++i) store.append_async(event("T", "a"));
    store.append(event("T", "a"));
  }
  {
    Store store = Store::open(dir / "store");  // sync mode on the same files
    CHECK(store.stats().event_count == 101);
    CHECK(store.append(event("T", "a")).events[0].aggregate_version == 102);
  }
  CHECK(lighthouse::testing::check_history(lighthouse::testing::scan(dir / "store")) == "");
}

namespace {

std::unique_ptr<AppendRequest> request_of(std::size_t events, std::size_t bytes) {
  auto r = std::make_unique<AppendRequest>();
  r->events = events;
  r->bytes = bytes;
  r->single.emplace();
  return r;
}

}  // namespace

TEST_CASE("groups are bounded by max_group_events and max_group_bytes, and a request is never split",
          "[group_commit]") {
  std::mutex mutex;
  std::condition_variable cv;
  bool release = false;
  std::vector<std::vector<std::size_t>> groups;  // per group: each request's events (or bytes, below)
  std::vector<std::vector<std::size_t>> group_bytes;
  Committer committer({10, 1000}, [&](std::vector<std::unique_ptr<AppendRequest>>& group) {
    std::unique_lock lock(mutex);
    // The first group holds the committer until everything else is queued.
    cv.wait(lock, [&] { return release; });
    std::vector<std::size_t> events, bytes;
    for (auto& r : group) {
      events.push_back(r->events);
      bytes.push_back(r->bytes);
      std::vector<AppendResult> results(1);
      r->complete(&results, nullptr);
    }
    groups.push_back(events);
    group_bytes.push_back(bytes);
  });
  std::vector<std::future<AppendResult>> done;
  auto submit = [&](std::size_t events, std::size_t bytes) {
    auto r = request_of(events, bytes);
    done.push_back(r->single->get_future());
    committer.submit(std::move(r));
  };
  submit(1, 10);
  // Wait until the committer has taken the first request alone.
  for (int i = 0; i < 2000 && committer.backlog() != 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  REQUIRE(committer.backlog() == 0);
  for (auto [events, bytes] : std::vector<std::pair<std::size_t, std::size_t>>{
           {4, 10}, {4, 10}, {4, 10}, {25, 10}, {1, 400}, {1, 400}, {1, 400}, {2, 10}}) {
    submit(events, bytes);
  }
  {
    std::lock_guard lock(mutex);
    release = true;
  }
  cv.notify_all();
  for (auto& f : done) REQUIRE(f.wait_for(std::chrono::seconds(20)) == std::future_status::ready);
  committer.stop();
  std::lock_guard lock(mutex);
  // Greedy in queue order: the next request that would pass a bound starts
  // the next group; one over the bound by itself (25 events) goes alone.
  CHECK(groups == std::vector<std::vector<std::size_t>>{{1}, {4, 4}, {4}, {25}, {1, 1}, {1, 2}});
  CHECK(group_bytes == std::vector<std::vector<std::size_t>>{{10}, {10, 10}, {10}, {10}, {400, 400}, {400, 10}});
}

TEST_CASE("a store commits in groups of at most max_group_events and a larger batch whole", "[group_commit]") {
  TempDir dir;
  Options options;
  options.max_group_events = 10;
  Store store = Store::open(dir / "store", options);
  const auto commits_before = store.stats().commits;
  std::vector<std::future<AppendResult>> futures;
  for (int i = 0; i < 200; ++i) futures.push_back(store.append_async(event("T")));
  std::vector<EventData> big(25, event("Big", "b"));
  auto batch = store.append_batch_async(Batch{big, {}, Priority::normal, std::nullopt});
  for (auto& f : futures) f.get();
  AppendResult r = batch.get();
  REQUIRE(r.events.size() == 25);
  for (std::size_t i = 1; i < r.events.size(); ++i) CHECK(r.events[i].id.sequence == r.events[i - 1].id.sequence + 1);
  // 200 single appends in groups of at most 10, the batch in a group of its own.
  CHECK(store.stats().commits - commits_before >= 21);
  store.close();
  CHECK(lighthouse::testing::check_history(lighthouse::testing::scan(dir / "store")) == "");
}
