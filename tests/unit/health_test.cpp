// Health states: each trigger enters and leaves its state with the right
// hysteresis, shedding by priority, emergency across processes, and the
// `$health.*` events that record every transition.
#include <catch2/catch.hpp>

#include <atomic>
#include <future>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>

#include "lighthouse/lighthouse.h"
#include "monitor/health_policy.h"
#include "support/damage.h"
#include "support/events.h"
#include "support/process.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using namespace lighthouse::testing;
using monitor::Hysteresis;

namespace {

// Options whose windows pass only when the test calls evaluate_health().
Options manual_windows(std::uint32_t enter_after = 2, std::uint32_t leave_after = 3) {
  Options o;
  o.health.window_seconds = 0;
  o.health.enter_after = enter_after;
  o.health.leave_after = leave_after;
  return o;
}

// The `$health.*` events in store order, as "from>to".
std::vector<std::string> transitions(const Store& store) {
  Query q;
  q.type_prefix = "$health.";
  std::vector<std::string> out;
  auto cursor = store.query(q);
  while (auto e = cursor.next()) {
    auto j = nlohmann::json::parse(e->data);
    CHECK(e->type == "$health." + j["to"].get<std::string>());
    CHECK(e->aggregate == "$health");
    out.push_back(j["from"].get<std::string>() + ">" + j["to"].get<std::string>());
  }
  return out;
}

// Commits taken by `n` high-priority appends in flight at once.
std::uint64_t commits_for_burst(Store& store, int n) {
  const auto commits = store.stats().commits;
  std::vector<std::future<AppendResult>> inflight;
  for (int i = 0; i < n; ++i) {
    inflight.push_back(store.append_async(event("Burst"), ExpectedVersion::any(), Priority::high));
  }
  for (auto& f : inflight) f.get();
  return store.stats().commits - commits;
}

HealthState evaluate_times(Store& store, int n) {
  HealthState s = HealthState::healthy;
  for (int i = 0; i < n; ++i) s = store.evaluate_health().state;
  return s;
}

}  // namespace

TEST_CASE("hysteresis enters after N windows that call for more and leaves after M that call for less",
          "[health]") {
  Hysteresis h(3, 4);
  CHECK(h.feed(HealthState::degraded) == HealthState::healthy);
  CHECK(h.feed(HealthState::warning) == HealthState::healthy);
  // Three in a row, the lowest of them is entered.
  CHECK(h.feed(HealthState::degraded) == HealthState::warning);
  // An interrupted streak starts again.
  CHECK(h.feed(HealthState::degraded) == HealthState::warning);
  CHECK(h.feed(HealthState::warning) == HealthState::warning);
  CHECK(h.feed(HealthState::degraded) == HealthState::warning);
  CHECK(h.feed(HealthState::degraded) == HealthState::warning);
  CHECK(h.feed(HealthState::degraded) == HealthState::degraded);
  // Leaving takes four below; the highest of them is where it goes.
  CHECK(h.feed(HealthState::healthy) == HealthState::degraded);
  CHECK(h.feed(HealthState::warning) == HealthState::degraded);
  CHECK(h.feed(HealthState::healthy) == HealthState::degraded);
  CHECK(h.feed(HealthState::degraded) == HealthState::degraded);  // resets
  for (int i = 0; i < 3; ++i) CHECK(h.feed(HealthState::healthy) == HealthState::degraded);
  CHECK(h.feed(HealthState::healthy) == HealthState::healthy);
  // An immediate cause (an I/O failure) needs no streak.
  CHECK(h.feed(HealthState::emergency, true) == HealthState::emergency);
}

TEST_CASE("each trigger proposes its state at its thresholds", "[health]") {
  HealthOptions o;
  monitor::HealthInputs in;
  CHECK(monitor::propose(in, o).state == HealthState::healthy);

  in.sla = true;
  in.append_target_seconds = 0.010;
  in.min_samples = 50;
  in.append.count = 49;
  in.append.p99 = 1.0;
  CHECK(monitor::propose(in, o).state == HealthState::healthy);  // too few to judge
  in.append.count = 50;
  in.append.p99 = 0.011;
  CHECK(monitor::propose(in, o).state == HealthState::warning);
  in.append.p99 = 0.051;
  CHECK(monitor::propose(in, o).state == HealthState::degraded);
  in.append.p99 = 0.001;
  in.backlog_breach = true;
  in.backlog_detail = "backlog grew";
  CHECK(monitor::propose(in, o).state == HealthState::degraded);
  in = {};

  for (auto [usage, state] : {std::pair{0.79, HealthState::healthy}, {0.80, HealthState::warning},
                              {0.90, HealthState::degraded}, {0.97, HealthState::emergency}}) {
    in.map_usage = usage;
    CHECK(monitor::propose(in, o).state == state);
  }
  in = {};
  for (auto [free, state] : {std::pair{0.06, HealthState::healthy}, {0.05, HealthState::warning},
                             {0.02, HealthState::degraded}, {0.01, HealthState::emergency}}) {
    in.disk_free = free;
    CHECK(monitor::propose(in, o).state == state);
  }
  in = {};
  in.corruption = "checksum mismatch";
  CHECK(monitor::propose(in, o).state == HealthState::degraded);
  in.failure = "fdatasync: Input/output error";
  auto p = monitor::propose(in, o);
  CHECK(p.state == HealthState::emergency);
  CHECK(p.immediate);
  CHECK(p.reason.find("corruption") != std::string::npos);
  CHECK(p.reason.find("fdatasync") != std::string::npos);
}

TEST_CASE("the health record in meta round-trips and a damaged one reads as nothing", "[health]") {
  monitor::HealthRecord r;
  r.state = HealthState::degraded;
  r.reason = "map usage 91 %";
  r.since_ns = 123;
  r.manual = false;
  r.failure = true;
  r.pid = 42;
  auto back = monitor::decode_health(monitor::encode_health(r));
  REQUIRE(back);
  CHECK(back->state == r.state);
  CHECK(back->reason == r.reason);
  CHECK(back->since_ns == 123);
  CHECK(back->failure);
  CHECK(back->pid == 42);
  CHECK_FALSE(monitor::decode_health("{\"state\":\"sleepy\"}"));
  CHECK_FALSE(monitor::decode_health("not json"));
}

TEST_CASE("SLA latency breaches enter warning after N windows and leave after M quiet ones",
          "[health]") {
  TempDir dir;
  std::atomic<std::uint64_t> mono{1'000'000'000'000ull};
  Options o = manual_windows(2, 3);
  o.monotonic_clock = [&] { return mono.load(); };
  o.sla.append_p99_seconds = 1e-9;  // every append breaches
  o.sla.min_samples = 5;
  o.health.degraded_latency_factor = 1e12;  // warning, not degraded
  o.health.disk_free_warning = o.health.disk_free_degraded = o.health.disk_free_emergency = 0;
  Store store = Store::open(dir.path(), o);
  std::vector<HealthTransition> seen;
  store.on_health_change([&](const HealthTransition& t) { seen.push_back(t); });
  for (int i = 0; i < 10; ++i) store.append(event("Tick"));

  auto s = store.evaluate_health();
  CHECK(s.state == HealthState::healthy);
  CHECK(s.proposed == HealthState::warning);
  CHECK(s.proposed_reason.find("append p99") != std::string::npos);
  CHECK(store.evaluate_health().state == HealthState::warning);
  CHECK(store.health().state == HealthState::warning);
  CHECK(store.health().reason.find("append p99") != std::string::npos);
  // Warning sheds nothing.
  CHECK_NOTHROW(store.append(event("Low"), ExpectedVersion::any(), Priority::low));

  // Ten seconds later the window holds no append: quiet windows.
  mono += 11'000'000'000ull;
  CHECK(evaluate_times(store, 2) == HealthState::warning);
  CHECK(store.evaluate_health().state == HealthState::healthy);
  CHECK(transitions(store) == std::vector<std::string>{"healthy>warning", "warning>healthy"});
  REQUIRE(seen.size() == 2);
  CHECK(seen[0].to == HealthState::warning);
  CHECK(seen[0].figures.count("append_p99_seconds") == 1);
  CHECK_FALSE(seen[0].event_id.empty());
  CHECK(seen[1].to == HealthState::healthy);
}

TEST_CASE("a degraded store sheds appends below the priority it admits, and admits the rest",
          "[health]") {
  TempDir dir;
  Options o = manual_windows(1, 3);
  o.sla.append_p99_seconds = 1e-9;
  o.sla.min_samples = 1;
  o.health.degraded_latency_factor = 1;  // any breach is degraded
  o.health.degraded_min_priority = Priority::high;
  o.health.degraded_max_group_events = 2;
  o.health.disk_free_warning = o.health.disk_free_degraded = o.health.disk_free_emergency = 0;
  Store store = Store::open(dir.path(), o);
  store.append(event("Warmup"));
  REQUIRE(store.evaluate_health().state == HealthState::degraded);
  const auto before = store.stats().event_count;

  for (Priority p : {Priority::low, Priority::normal}) {
    try {
      store.append(event("Shed", "order-1"), ExpectedVersion::any(), p);
      FAIL("a low-priority append was admitted");
    } catch (const Error& e) {
      CHECK(e.code() == ErrorCode::degraded);
      CHECK(std::string(e.what()).find("degraded") != std::string::npos);
      CHECK(std::string(e.what()).find(std::string(to_string(p))) != std::string::npos);
    }
  }
  Batch low;
  low.events.push_back(event("ShedToo"));
  low.priority = Priority::low;
  Batch high;
  high.events.push_back(event("Kept"));
  high.priority = Priority::high;
  // append_batches: one batch below the bar refuses the whole request.
  CHECK(error_code_of([&] { store.append_batches({low, high}); }) == ErrorCode::degraded);
  CHECK(error_code_of([&] { store.append_batch_async(low).get(); }) == ErrorCode::degraded);
  CHECK(store.stats().event_count == before);

  CHECK(store.append(event("Admitted", "order-1"), ExpectedVersion::no_stream(), Priority::high)
            .events[0]
            .aggregate_version == 1);
  CHECK(store.append_batch(high).events.size() == 1);
  CHECK(store.append_async(event("Critical"), ExpectedVersion::any(), Priority::critical).get().events.size() ==
        1);
  CHECK(store.stats().event_count == before + 3);
  // What is admitted commits in groups of at most degraded_max_group_events.
  CHECK(commits_for_burst(store, 60) >= 30);
  // Refusals are counted in the metrics, and the state is exposed.
  const std::string metrics = store.metrics_text();
  CHECK(metrics.find("lighthouse_errors_total{code=\"degraded\"} 4") != std::string::npos);
  CHECK(metrics.find("lighthouse_health_state{state=\"degraded\"} 1") != std::string::npos);
  CHECK(metrics.find("lighthouse_health_state{state=\"healthy\"} 0") != std::string::npos);
}

TEST_CASE("a manual emergency refuses appends in this and another process and serves reads",
          "[health]") {
  TempDir dir;
  Options o = manual_windows();
  Store store = Store::open(dir.path(), o);
  const EventId first = store.append(event("Before", "a")).events[0].id;
  CHECK(error_code_of([&] { store.enter_emergency(""); }) == ErrorCode::invalid_argument);
  CHECK(error_code_of([&] { store.enter_emergency("bad \xff utf-8"); }) == ErrorCode::invalid_argument);
  store.enter_emergency("operator: storage migration");
  auto h = store.health();
  CHECK(h.state == HealthState::emergency);
  CHECK(h.manual);
  CHECK(h.reason == "operator: storage migration");
  CHECK(h.since_ns > 0);
  const auto count = store.stats().event_count;

  for (Priority p : {Priority::low, Priority::critical}) {
    CHECK(error_code_of([&] { store.append(event("During"), ExpectedVersion::any(), p); }) ==
          ErrorCode::emergency);
  }
  CHECK_THROWS_WITH(store.append(event("During")), Catch::Contains("storage migration"));
  CHECK(store.stats().event_count == count);
  // Reads keep working.
  CHECK(store.get(first).type == "Before");
  CHECK(store.read_aggregate("a").next()->id == first);
  // Triggers do not end a manual emergency.
  CHECK(evaluate_times(store, 5) == HealthState::emergency);

  // Another process obeys the state in the store.
  auto other = run({helper_path("APPEND_WORKER"), dir.path().string(), "3", "--priority", "critical"});
  CHECK(other.exit_code == 1);
  CHECK(other.out.find("error emergency") != std::string::npos);
  CHECK(other.out.find("health emergency operator: storage migration") != std::string::npos);
  CHECK(store.stats().event_count == count);

  store.clear_emergency();
  CHECK(store.health().state == HealthState::healthy);
  CHECK_FALSE(store.health().manual);
  store.clear_emergency();  // nothing to clear: no event
  auto after = run({helper_path("APPEND_WORKER"), dir.path().string(), "3"});
  CHECK(after.exit_code == 0);
  CHECK(store.append(event("After")).events.size() == 1);
  CHECK(transitions(store) == std::vector<std::string>{"healthy>emergency", "emergency>healthy"});
}

TEST_CASE("an emergency entered by an operator's process is obeyed by an already open store",
          "[health]") {
  TempDir dir;
  Store store = Store::open(dir.path(), manual_windows());
  const EventId id = store.append(event("Before")).events[0].id;
  const std::string tool = helper_path("LIGHTHOUSE_TOOL");
  auto entered = run({tool, "health", dir.path().string(), "--enter-emergency", "disk array rebuild"});
  REQUIRE(entered.exit_code == 0);
  auto line = nlohmann::json::parse(entered.out);
  CHECK(line["state"] == "emergency");
  CHECK(line["manual"] == true);
  // This process has not evaluated anything since: the write transaction
  // reads the state, so the very next append is refused.
  CHECK(error_code_of([&] { store.append(event("During"), ExpectedVersion::any(), Priority::critical); }) ==
        ErrorCode::emergency);
  CHECK(store.get(id).type == "Before");
  auto shown = nlohmann::json::parse(run({tool, "health", dir.path().string()}).out);
  CHECK(shown["state"] == "emergency");
  CHECK(shown["reason"] == "disk array rebuild");
  CHECK(shown["since"].is_string());
  auto cleared = run({tool, "health", dir.path().string(), "--clear-emergency"});
  REQUIRE(cleared.exit_code == 0);
  CHECK(nlohmann::json::parse(cleared.out)["state"] == "healthy");
  CHECK(store.append(event("After")).events.size() == 1);
  CHECK(transitions(store) == std::vector<std::string>{"healthy>emergency", "emergency>healthy"});
}

TEST_CASE("map usage over its thresholds degrades, then fills to emergency, and clears with a larger map",
          "[health]") {
  TempDir dir;
  Options o = manual_windows(1, 2);
  o.map_size = 1 << 20;
  o.max_map_size = 2 << 20;
  o.health.disk_free_warning = o.health.disk_free_degraded = o.health.disk_free_emergency = 0;
  o.compression_threshold = 0;
  std::mt19937 rng(7);
  auto payload = [&] {
    std::string s(2000, '\0');
    for (auto& c : s) c = static_cast<char>(rng());
    return s;
  };
  {
    Store store = Store::open(dir.path(), o);
    // Fill until the map is full: a clear error, nothing half written.
    std::uint64_t appended = 0;
    for (;;) {
      try {
        store.append(event("Fill", "", payload()));
        ++appended;
      } catch (const Error& e) {
        CHECK(e.code() == ErrorCode::limit_exceeded);
        CHECK(std::string(e.what()).find("max_map_size") != std::string::npos);
        break;
      }
      REQUIRE(appended < 5000);
    }
    CHECK(store.stats().event_count == appended);
    auto s = store.evaluate_health();
    CHECK(s.state == HealthState::emergency);
    CHECK(s.reason.find("map usage") != std::string::npos);
    CHECK(error_code_of([&] { store.append(event("More"), ExpectedVersion::any(), Priority::critical); }) ==
          ErrorCode::emergency);
  }
  // Reopened with room to grow: the cause is gone; the state it inherited is
  // left after two quiet windows.
  o.max_map_size = 64 << 20;
  Store store = Store::open(dir.path(), o);
  CHECK(store.health().state == HealthState::emergency);
  CHECK(store.evaluate_health().state == HealthState::emergency);
  CHECK(store.evaluate_health().state == HealthState::healthy);
  CHECK(store.append(event("Room")).events.size() == 1);
  CHECK(transitions(store) == std::vector<std::string>{"healthy>emergency", "emergency>healthy"});
}

TEST_CASE("low free disk space warns, and the warning clears when the threshold is met", "[health]") {
  TempDir dir;
  Options o = manual_windows(2, 2);
  o.health.disk_free_warning = 1.0;  // any filesystem is "too full"
  {
    Store store = Store::open(dir.path(), o);
    CHECK(store.evaluate_health().state == HealthState::healthy);
    auto s = store.evaluate_health();
    CHECK(s.state == HealthState::warning);
    CHECK(s.reason.find("free disk space") != std::string::npos);
  }
  Options normal = manual_windows(2, 2);
  normal.health.disk_free_warning = normal.health.disk_free_degraded = normal.health.disk_free_emergency = 0;
  Store store = Store::open(dir.path(), normal);
  CHECK(store.health().state == HealthState::warning);  // the state persists across opens
  CHECK(store.evaluate_health().state == HealthState::warning);
  CHECK(store.evaluate_health().state == HealthState::healthy);
  CHECK(transitions(store) == std::vector<std::string>{"healthy>warning", "warning>healthy"});
}

TEST_CASE("corruption met by a writing process degrades the store until a clean verify", "[health]") {
  TempDir dir;
  std::vector<EventId> ids;
  {
    Store store = Store::open(dir.path());
    for (int i = 0; i < 200; ++i) ids.push_back(store.append(event("Typed", "agg")).events[0].id);
    store.append(event("Rare"));
  }
  // A by_type entry that names an event which is not stored.
  damage(dir.path(), [&](MDB_txn* t, const Databases& d) {
    lmdb::put(t, d.by_type, "Rare", key_of(EventId{ids.back().timestamp_ns + 1, 999, ids.back().node_id}));
  });
  Options o = manual_windows(2, 2);
  o.health.disk_free_warning = o.health.disk_free_degraded = o.health.disk_free_emergency = 0;
  Store store = Store::open(dir.path(), o);
  Query q;
  q.types = {"Rare"};
  REQUIRE(store.explain(q).source == QueryPlan::Source::by_type);
  auto cursor = store.query(q);
  CHECK(error_code_of([&] {
          while (cursor.next()) {
          }
        }) == ErrorCode::corruption);
  CHECK(store.evaluate_health().proposed == HealthState::degraded);
  auto s = store.evaluate_health();
  CHECK(s.state == HealthState::degraded);
  CHECK(s.reason.find("corruption") != std::string::npos);
  // A failing verify keeps the cause; repair and its clean verify end it.
  CHECK_FALSE(store.verify().ok());
  CHECK(store.evaluate_health().proposed == HealthState::degraded);
  CHECK(store.repair().after.ok());
  CHECK(store.evaluate_health().state == HealthState::degraded);
  CHECK(store.evaluate_health().state == HealthState::healthy);
  CHECK(transitions(store) == std::vector<std::string>{"healthy>degraded", "degraded>healthy"});
}

TEST_CASE("a read-only process never writes the health state", "[health]") {
  TempDir dir;
  {
    Options o = manual_windows(1, 1);
    o.health.disk_free_warning = 1.0;
    Store store = Store::open(dir.path(), o);
    store.evaluate_health();
  }
  const auto mtime = std::filesystem::last_write_time(dir / "data.mdb");
  const auto size = std::filesystem::file_size(dir / "data.mdb");
  Options ro;
  ro.read_only = true;
  ro.health.disk_free_warning = 1.0;
  ro.health.window_seconds = 0.01;
  Store store = Store::open(dir.path(), ro);
  CHECK(store.health().state == HealthState::warning);
  CHECK(error_code_of([&] { store.evaluate_health(); }) == ErrorCode::read_only);
  CHECK(error_code_of([&] { store.enter_emergency("x"); }) == ErrorCode::read_only);
  CHECK(error_code_of([&] { store.clear_emergency(); }) == ErrorCode::read_only);
  store.close();
  CHECK(std::filesystem::last_write_time(dir / "data.mdb") == mtime);
  CHECK(std::filesystem::file_size(dir / "data.mdb") == size);
}

TEST_CASE("the writing process evaluates by itself once a window, also while idle", "[health]") {
  TempDir dir;
  Options o;
  o.health.window_seconds = 0.02;
  o.health.enter_after = 2;
  o.health.disk_free_warning = 1.0;
  Store store = Store::open(dir.path(), o);
  std::atomic<int> calls{0};
  store.on_health_change([&](const HealthTransition& t) {
    if (t.to == HealthState::warning) ++calls;
  });
  // Generous: the bound is two windows, the wait allows for a loaded machine.
  for (int i = 0; i < 500 && store.health().state != HealthState::warning; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  CHECK(store.health().state == HealthState::warning);
  store.close();
  CHECK(calls == 1);
}

TEST_CASE("a store opened degraded bounds its groups from the first one", "[health][regression]") {
  TempDir dir;
  Options o = manual_windows(1, 100);
  o.sla.append_p99_seconds = 1e-9;
  o.sla.min_samples = 1;
  o.health.degraded_latency_factor = 1;
  o.health.degraded_max_group_events = 2;
  o.health.disk_free_warning = o.health.disk_free_degraded = o.health.disk_free_emergency = 0;
  {
    Store store = Store::open(dir.path(), o);
    store.append(event("Warmup"));
    REQUIRE(store.evaluate_health().state == HealthState::degraded);
  }
  Store store = Store::open(dir.path(), o);
  REQUIRE(store.health().state == HealthState::degraded);
  CHECK(commits_for_burst(store, 60) >= 30);
}

TEST_CASE("with health evaluation off a process records no transition and still obeys the stored state",
          "[health]") {
  TempDir dir;
  Options o;
  o.health.enabled = false;
  o.health.window_seconds = 0.02;
  // Every trigger would call for an emergency at once, were it evaluated.
  o.health.disk_free_warning = o.health.disk_free_degraded = o.health.disk_free_emergency = 1.0;
  o.health.enter_after = 1;
  Store store = Store::open(dir.path(), o);
  store.append(event("Before"));
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // ten windows
  CHECK(store.evaluate_health().state == HealthState::healthy);
  CHECK(transitions(store).empty());
  // Another process enters an emergency: this one obeys it without evaluating.
  const std::string tool = helper_path("LIGHTHOUSE_TOOL");
  REQUIRE(run({tool, "health", dir.path().string(), "--enter-emergency", "ops drill"}).exit_code == 0);
  CHECK(error_code_of([&] { store.append(event("During"), ExpectedVersion::any(), Priority::critical); }) ==
        ErrorCode::emergency);
  CHECK(store.health().state == HealthState::emergency);
  CHECK(store.health().reason == "ops drill");
  REQUIRE(run({tool, "health", dir.path().string(), "--clear-emergency"}).exit_code == 0);
  CHECK(store.append(event("After")).events.size() == 1);
  // Only the operator's two transitions are recorded.
  CHECK(transitions(store) == std::vector<std::string>{"healthy>emergency", "emergency>healthy"});
}
