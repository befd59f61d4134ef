#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <fstream>
#include <map>

#include <nlohmann/json.hpp>

#include "lighthouse/lighthouse.h"
#include "support/events.h"
#include "support/process.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using namespace lighthouse::testing;

TEST_CASE("the store's SLA report counts appends, transactions and queries", "[sla][store]") {
  TempDir dir;
  // Health off: on a slow disk the latency breaches below would otherwise
  // put the store in `warning`, and its `$health.warning` event would be a
  // 124th event.
  Options options;
  options.health.enabled = false;
  Store store = Store::open(dir / "store", options);
  for (int i = 0; i < 120; ++i) store.append(event("T", "a"));
  store.append_batch({event("T"), event("T"), event("T")});
  for (const auto& e : store.query({})) (void)e;
  auto r = store.sla_report();
  REQUIRE(r.windows.size() == 3);
  CHECK(r.windows[0].append.count == 121);
  CHECK(r.windows[0].events == 123);
  CHECK(r.windows[0].transactions == 121);
  CHECK(r.windows[2].queries == 1);
  CHECK(r.windows[2].query_results == 123);
  CHECK(r.windows[0].append.p99 > 0);
  CHECK(r.windows[0].commit.count == 121);
  // One synchronous caller is far below 10,000/s: no backlog breach for it.
  // A latency breach is the disk's to cause (a slow disk's fsyncs take over
  // 10 ms), and then only if an append took longer than the target.
  for (const auto& b : r.breaches) {
    INFO(b.kind << ": " << b.detail);
    CHECK(b.kind == "append_latency");
    CHECK(r.windows[0].append.max > r.targets.append_p99_seconds * 0.95);
  }
  const std::string text = store.metrics_text();
  CHECK(text.find("lighthouse_events_appended_total 123") != std::string::npos);
  CHECK(text.find("lighthouse_append_duration_seconds_count 121") != std::string::npos);
  CHECK(text.find("lighthouse_last_sequence 123") != std::string::npos);
}

TEST_CASE("a breach of the latency target reaches the callbacks", "[sla][store]") {
  TempDir dir;
  Options options;
  options.sla.append_p99_seconds = 1e-9;  // nothing is that fast
  options.sla.min_samples = 10;
  Store store = Store::open(dir / "store", options);
  std::vector<SlaBreach> breaches;
  std::mutex mutex;
  store.on_sla_breach([&](const SlaBreach& b) {
    std::lock_guard lock(mutex);
    breaches.push_back(b);
  });
  for (int i = 0; i < 20; ++i) store.append(event("T"));
  auto r = store.sla_report();
  REQUIRE_FALSE(r.breaches.empty());
  CHECK(r.breaches[0].kind == "append_latency");
  std::lock_guard lock(mutex);
  REQUIRE_FALSE(breaches.empty());
  CHECK(breaches[0].kind == "append_latency");
}

TEST_CASE("errors are counted by code", "[sla][store]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  store.append(event("T", "a"));
  CHECK_THROWS(store.append(event("T", "a"), ExpectedVersion::no_stream()));
  CHECK(store.metrics_text().find("lighthouse_errors_total{code=\"wrong_expected_version\"} 1") !=
        std::string::npos);
}

TEST_CASE("the writing process's report is readable by another process", "[sla][store]") {
  TempDir dir;
  { Store::open(dir / "store"); }
  Child child = spawn({helper_path("APPEND_WORKER"), (dir / "store").string(), "200", "--threads", "2"});
  const int pid = child.pid;
  auto result = wait(child);
  REQUIRE(result.exit_code == 0);
  Options ro;
  ro.read_only = true;
  Store store = Store::open(dir / "store", ro);
  auto json = nlohmann::json::parse(store.persisted_sla());
  CHECK(json["pid"].get<int>() == pid);
  CHECK(json["counters"]["events"].get<std::uint64_t>() == 200);
  CHECK(json["windows"][2]["append"]["count"].get<std::uint64_t>() == 200);
  const std::string text = store.persisted_metrics_text();
  CHECK(text.find("lighthouse_events_appended_total 200") != std::string::npos);
  CHECK(text.find("lighthouse_append_duration_seconds_count 200") != std::string::npos);
}

TEST_CASE("a process that only changed the health state keeps the previous SLA report", "[sla][store]") {
  TempDir dir;
  {
    Store store = Store::open(dir / "store");
    for (int i = 0; i < 5; ++i) store.append(event("T", "a"));
  }
  {
    // The operator's process: two health transitions, no append.
    Store store = Store::open(dir / "store");
    store.enter_emergency("maintenance");
    store.clear_emergency();
  }
  Options ro;
  ro.read_only = true;
  Store store = Store::open(dir / "store", ro);
  auto json = nlohmann::json::parse(store.persisted_sla());
  CHECK(json["counters"]["events"].get<std::uint64_t>() == 5);
  CHECK(store.persisted_metrics_text().find("lighthouse_events_appended_total 5") != std::string::npos);
}

TEST_CASE("callbacks that throw or wait for the committer do not take the store down", "[sla][store][health]") {
  TempDir dir;
  Options options;
  options.sla.append_p99_seconds = 1e-9;  // every window breaches
  options.sla.min_samples = 1;
  options.health.window_seconds = 0;  // health changes only by hand here
  Store store = Store::open(dir / "store", options);
  std::atomic<int> calls{0}, refused{0};
  std::mutex mutex;
  std::optional<std::future<AppendResult>> from_callback;
  auto refuse = [&](auto&& call) {
    try {
      call();
    } catch (const Error& error) {
      if (error.code() == ErrorCode::invalid_argument) ++refused;
    }
  };
  store.on_sla_breach([&](const SlaBreach&) {
    // Both would wait for the committer, on whose thread this runs.
    refuse([&] { store.append(event("FromCallback")); });
    refuse([&] { store.close(); });
    {
      std::lock_guard lock(mutex);
      from_callback = store.append_async(event("AsyncFromCallback"));  // does not wait: allowed
    }
    // Counted last: the test's thread, which stops appending once it sees
    // the call, then reads what the call did (it raced with it before).
    ++calls;
    throw std::runtime_error("a host's bug");
  });
  // The committer evaluates at most once a second: append until it has.
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (calls.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    auto pending = store.append_async(event("T"));
    REQUIRE(pending.wait_for(std::chrono::seconds(10)) == std::future_status::ready);  // never frozen
    pending.get();
  }
  REQUIRE(calls.load() == 1);
  CHECK(refused.load() == 2);
  store.append(event("After"));  // the committer lives on
  {
    std::lock_guard lock(mutex);
    REQUIRE(from_callback);
    CHECK(from_callback->get().events.size() == 1);
  }
  Query q;
  q.types = {"FromCallback", "AsyncFromCallback"};
  std::vector<std::string> types;
  for (const auto& e : store.query(q)) types.push_back(e.type);
  CHECK(types == std::vector<std::string>{"AsyncFromCallback"});

  // The same from a health callback: close() and clear_emergency() are refused there.
  refused = 0;
  store.on_health_change([&](const HealthTransition&) {
    refuse([&] { store.close(); });
    refuse([&] { store.clear_emergency(); });
  });
  store.enter_emergency("drill");
  CHECK(refused.load() == 2);
  store.clear_emergency();
  CHECK(refused.load() == 4);
  CHECK(store.health().state == HealthState::healthy);
  store.append(event("AfterHealth"));
}

TEST_CASE("with the monitor off the windows stay empty and no report is persisted", "[sla][store]") {
  TempDir dir;
  Options o;
  o.monitor = false;
  {
    Store store = Store::open(dir / "store", o);
    for (int i = 0; i < 20; ++i) store.append(event("T", "a"));
    for (const auto& e : store.query({})) (void)e;
    const SlaReport report = store.sla_report();
    CHECK(report.windows.empty());
    CHECK(report.breaches.empty());
    CHECK(store.persisted_sla().empty());
  }
  Options ro;
  ro.read_only = true;
  CHECK(Store::open(dir / "store", ro).persisted_sla().empty());
}

TEST_CASE("the SLA report is persisted at most once per 10 s, riding on a commit", "[sla][store]") {
  TempDir dir;
  std::atomic<std::uint64_t> mono{5'000'000'000'000ull};
  Options o;
  o.monotonic_clock = [&] { return mono.load(); };
  o.health.window_seconds = 0;  // no evaluation ticks: only appends commit
  Store store = Store::open(dir / "store", o);
  store.append(event("T"));
  const std::string first = store.persisted_sla();  // the first commit carries one
  REQUIRE_FALSE(first.empty());
  // A report is made inside the commit it rides on: it counts the groups
  // measured before that one.
  CHECK(nlohmann::json::parse(first)["counters"]["events"].get<std::uint64_t>() == 0);
  mono += 9'900'000'000ull;  // 9.9 s later
  for (int i = 0; i < 3; ++i) store.append(event("T"));
  CHECK(store.persisted_sla() == first);
  mono += 200'000'000ull;  // 10.1 s after the first
  store.append(event("T"));
  const std::string second = store.persisted_sla();
  CHECK(second != first);
  CHECK(nlohmann::json::parse(second)["counters"]["events"].get<std::uint64_t>() == 4);
  mono += 1'000'000'000ull;
  store.append(event("T"));
  CHECK(store.persisted_sla() == second);
}

TEST_CASE("persisting the SLA report never costs a sync of its own", "[sla][store][fault]") {
  // The shim counts the syncs of data.mdb: 40 appends from one thread make 40
  // commits, each with one fdatasync and one meta page write; the report
  // rides on the first and is written once more when the store closes.
  TempDir dir;
  { Store::open(dir / "store"); }
  const auto counts = dir / "counts";
  auto result = run({helper_path("APPEND_WORKER"), (dir / "store").string(), "40", "--threads", "1"},
                    {"LD_PRELOAD=" + helper_path("FAULT_SHIM"), "LH_COUNT_FILE=" + counts.string(),
                     "LH_FAULT_PATH=data.mdb", "ASAN_OPTIONS=verify_asan_link_order=0"});
  REQUIRE(result.exit_code == 0);
  std::ifstream in(counts);
  std::map<std::string, long> calls;
  std::string name;
  long n = 0;
  while (in >> name >> n) calls[name] = n;
  Options ro;
  ro.read_only = true;
  Store store = Store::open(dir / "store", ro);
  REQUIRE_FALSE(store.persisted_sla().empty());
  Query health;
  health.type_prefix = "$health.";
  std::size_t transitions = 0;
  for (const auto& e : store.query(health)) transitions += !e.id.to_string().empty();
  CHECK(calls["fdatasync"] == 40 + 1 + static_cast<long>(transitions));
  CHECK(calls["dsync_pwrite"] == 40 + 1 + static_cast<long>(transitions));
  CHECK(calls["fsync"] == 0);
}
