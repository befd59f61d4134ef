#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <random>
#include <set>

#include "lighthouse/lighthouse.h"
#include "support/events.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using lighthouse::testing::error_code_of;
using lighthouse::testing::event;
using lighthouse::testing::TempDir;

namespace {

const std::vector<std::string> kTypes = {"Alpha", "AlphaBeta", "Beta", "Bravo", "Charlie",
                                         "Delta", "Echo", "Foxtrot"};

struct Model {
  std::vector<RecordedEvent> events;  // in ID order
};

// A store of `n` events with skewed types and aggregates, timestamps with gaps.
Model build(Store& store, std::mt19937_64& rng, int n, std::uint64_t& clock) {
  Model m;
  std::vector<EventData> pending;
  for (int i = 0; i < n; ++i) {
    // Skewed: the first types and aggregates are much more frequent.
    std::size_t t = std::min<std::size_t>(kTypes.size() - 1, static_cast<std::size_t>(rng() % 4 + rng() % 5));
    std::string aggregate = rng() % 10 == 0 ? "" : "agg-" + std::to_string(rng() % 3 * (rng() % 20));
    pending.push_back(event(kTypes[t], aggregate, std::to_string(i)));
    if (pending.size() == 1 + rng() % 20 || i == n - 1) {
      clock += rng() % 3 == 0 ? 1'000'000 : rng() % 100;
      auto r = store.append_batch(pending);
      for (std::size_t k = 0; k < pending.size(); ++k) {
        RecordedEvent e;
        e.id = r.events[k].id;
        e.type = pending[k].type;
        e.aggregate = pending[k].aggregate;
        e.aggregate_version = r.events[k].aggregate_version;
        e.data = pending[k].data;
        m.events.push_back(e);
      }
      pending.clear();
    }
  }
  return m;
}

std::vector<EventId> brute_force(const Model& m, const Query& q) {
  std::vector<EventId> out;
  for (const auto& e : m.events) {
    if (!q.types.empty() && std::find(q.types.begin(), q.types.end(), e.type) == q.types.end()) continue;
    if (e.type.rfind(q.type_prefix, 0) != 0) continue;
    if (q.aggregate && e.aggregate != *q.aggregate) continue;
    if (q.after_id && !(e.id > *q.after_id)) continue;
    if (q.before_id && !(e.id < *q.before_id)) continue;
    if (q.from_sequence && e.id.sequence < *q.from_sequence) continue;
    if (q.to_sequence && e.id.sequence > *q.to_sequence) continue;
    if (q.since_ns && e.id.timestamp_ns < *q.since_ns) continue;
    if (q.until_ns && e.id.timestamp_ns >= *q.until_ns) continue;
    out.push_back(e.id);
  }
  if (q.direction == Direction::reverse) std::reverse(out.begin(), out.end());
  if (q.limit != 0 && out.size() > q.limit) out.resize(q.limit);
  return out;
}

std::vector<EventId> run(Store& store, const Query& q) {
  std::vector<EventId> out;
  for (const RecordedEvent& e : store.query(q)) out.push_back(e.id);
  return out;
}

EventId pick_id(const Model& m, std::mt19937_64& rng) {
  const EventId& base = m.events[rng() % m.events.size()].id;
  switch (rng() % 3) {
    case 0: return base;                                              // stored
    case 1: return EventId{base.timestamp_ns, base.sequence, base.node_id + 1};  // absent, between
    default: return EventId{base.timestamp_ns + 1, 0, 0};            // absent
  }
}

Query random_query(const Model& m, std::mt19937_64& rng) {
  Query q;
  if (rng() % 3 == 0) {
    for (int i = 0, n = 1 + static_cast<int>(rng() % 3); i < n; ++i) q.types.push_back(kTypes[rng() % kTypes.size()]);
    if (rng() % 5 == 0) q.types.push_back("Missing");
  }
  if (rng() % 5 == 0) q.type_prefix = std::vector<std::string>{"A", "Alpha", "B", "Zulu", "Br"}[rng() % 5];
  if (rng() % 3 == 0) q.aggregate = rng() % 6 == 0 ? "absent" : m.events[rng() % m.events.size()].aggregate;
  if (q.aggregate && q.aggregate->empty()) q.aggregate = "agg-0";
  if (rng() % 4 == 0) q.after_id = pick_id(m, rng);
  if (rng() % 4 == 0) q.before_id = pick_id(m, rng);
  const std::uint64_t last = m.events.back().id.sequence;
  if (rng() % 4 == 0) q.from_sequence = rng() % (last + 3);
  if (rng() % 4 == 0) q.to_sequence = rng() % (last + 3);
  if (rng() % 4 == 0) q.since_ns = pick_id(m, rng).timestamp_ns - rng() % 2;
  if (rng() % 4 == 0) q.until_ns = pick_id(m, rng).timestamp_ns + rng() % 2;
  if (rng() % 3 == 0) q.limit = 1 + rng() % 50;
  if (rng() % 2 == 0) q.direction = Direction::reverse;
  return q;
}

}  // namespace

TEST_CASE("queries match a brute-force model over random stores", "[query][model]") {
  for (std::uint64_t seed = 1; seed <= 6; ++seed) {
    TempDir dir;
    std::mt19937_64 rng(seed);
    std::uint64_t clock = 1'700'000'000'000'000'000ull;
    Options options;
    options.clock = [&clock] { return clock; };
    Store store = Store::open(dir / "store", options);
    Model m = build(store, rng, 3000, clock);
    for (int i = 0; i < 400; ++i) {
      Query q = random_query(m, rng);
      auto expected = brute_force(m, q);
      auto got = run(store, q);
      INFO("seed " << seed << " query " << i << " plan " << store.explain(q).description);
      REQUIRE(got == expected);
    }
  }
}

TEST_CASE("every filter alone, forward and reverse", "[query]") {
  TempDir dir;
  std::mt19937_64 rng(99);
  std::uint64_t clock = 1'000'000'000;
  Options options;
  options.clock = [&clock] { return clock; };
  Store store = Store::open(dir / "store", options);
  Model m = build(store, rng, 1500, clock);
  const auto& mid = m.events[m.events.size() / 2].id;
  std::vector<Query> queries(9);
  queries[0].types = {"Beta"};
  queries[1].type_prefix = "Alpha";
  queries[2].aggregate = "agg-2";
  queries[3].after_id = mid;
  queries[4].before_id = mid;
  queries[5].from_sequence = mid.sequence;
  queries[6].to_sequence = mid.sequence;
  queries[7].since_ns = mid.timestamp_ns;
  queries[8].until_ns = mid.timestamp_ns;
  for (auto q : queries) {
    for (Direction d : {Direction::forward, Direction::reverse}) {
      q.direction = d;
      auto expected = brute_force(m, q);
      CHECK_FALSE(expected.empty());
      CHECK(run(store, q) == expected);
    }
  }
}

TEST_CASE("the planner picks the most selective index", "[query][planner]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  std::vector<EventData> batch;
  for (int i = 0; i < 3000; ++i) {
    batch.push_back(event(i % 100 == 0 ? "Rare" : "Common", i % 300 == 0 ? "tiny" : "big-" + std::to_string(i % 2)));
    if (batch.size() == 500) {
      store.append_batch(batch);
      batch.clear();
    }
  }
  Query rare;
  rare.types = {"Rare"};
  auto plan = store.explain(rare);
  CHECK(plan.source == QueryPlan::Source::by_type);
  CHECK(plan.estimate == 30);
  Query tiny;
  tiny.aggregate = "tiny";
  tiny.types = {"Common"};
  plan = store.explain(tiny);
  CHECK(plan.source == QueryPlan::Source::by_aggregate);
  CHECK(plan.estimate == 10);
  Query common;
  common.types = {"Common", "Rare"};
  plan = store.explain(common);
  CHECK(plan.source == QueryPlan::Source::events_range);  // the index covers everything
  CHECK(plan.estimate == 3000);
  Query narrow = rare;
  narrow.from_sequence = 2990;
  plan = store.explain(narrow);
  CHECK(plan.source == QueryPlan::Source::events_range);  // 11 events beat 30 entries
  CHECK(plan.estimate == 11);
  Query prefix;
  prefix.type_prefix = "Ra";
  plan = store.explain(prefix);
  CHECK(plan.source == QueryPlan::Source::by_type);
  CHECK(plan.estimate == 30);
  Query none;
  none.aggregate = "absent";
  plan = store.explain(none);
  CHECK(plan.source == QueryPlan::Source::by_aggregate);
  CHECK(plan.estimate == 0);
  CHECK(store.query(rare).plan().source == QueryPlan::Source::by_type);
}

TEST_CASE("seeks at the first, last, missing and out-of-range positions", "[query][seek]") {
  TempDir dir;
  std::uint64_t clock = 5'000;
  Options options;
  options.clock = [&clock] { clock += 10; return clock; };
  Store store = Store::open(dir / "store", options);
  std::vector<EventId> ids;
  for (int i = 0; i < 50; ++i) ids.push_back(store.append(event("T")).events[0].id);
  auto count = [&](const Query& q) { return run(store, q).size(); };
  Query q;
  q.from_sequence = 1;
  CHECK(count(q) == 50);
  q.from_sequence = 50;
  CHECK(run(store, q) == std::vector<EventId>{ids.back()});
  q.from_sequence = 51;
  CHECK(count(q) == 0);
  q.from_sequence = 0;
  CHECK(count(q) == 50);
  q = {};
  q.to_sequence = 1;
  CHECK(run(store, q) == std::vector<EventId>{ids.front()});
  q.to_sequence = 0;
  CHECK(count(q) == 0);
  q.to_sequence = ~std::uint64_t{0};
  CHECK(count(q) == 50);
  q = {};
  q.after_id = ids.front();
  CHECK(count(q) == 49);
  q.after_id = ids.back();
  CHECK(count(q) == 0);
  q.after_id = EventId{0, 0, 0};
  CHECK(count(q) == 50);
  q.after_id = EventId{~0ull, ~0ull, ~0u};
  CHECK(count(q) == 0);
  q.after_id = EventId{ids[9].timestamp_ns + 1, 0, 0};  // missing, between two events
  CHECK(run(store, q).front() == ids[10]);
  q = {};
  q.since_ns = ids[0].timestamp_ns;
  CHECK(count(q) == 50);
  q.since_ns = ids[49].timestamp_ns + 1;
  CHECK(count(q) == 0);
  q.until_ns = 0;
  q.since_ns.reset();
  CHECK(count(q) == 0);
  q.until_ns = ids[20].timestamp_ns;
  CHECK(count(q) == 20);
  q.direction = Direction::reverse;
  q.limit = 3;
  CHECK(run(store, q) == std::vector<EventId>{ids[19], ids[18], ids[17]});
}

TEST_CASE("read_aggregate returns a version range in order", "[query][aggregate]") {
  TempDir dir;
  Store store = Store::open(dir / "store");
  for (int i = 0; i < 300; ++i) store.append(event("T", i % 3 == 0 ? "order" : "other"));
  std::vector<std::uint64_t> versions;
  for (const auto& e : store.read_aggregate("order", 10, 20)) versions.push_back(e.aggregate_version);
  std::vector<std::uint64_t> expected;
  for (std::uint64_t v = 10; v <= 20; ++v) expected.push_back(v);
  CHECK(versions == expected);
  std::size_t all = 0;
  std::uint64_t last = 0;
  for (const auto& e : store.read_aggregate("order")) {
    CHECK(e.aggregate_version == ++last);
    ++all;
  }
  CHECK(all == 100);
  CHECK_FALSE(store.read_aggregate("order", 101).next());
  CHECK_FALSE(store.read_aggregate("missing").next());
  CHECK(error_code_of([&] { store.read_aggregate("order", 5, 4); }) == ErrorCode::invalid_argument);
  CHECK(error_code_of([&] { store.read_aggregate(""); }) == ErrorCode::invalid_argument);
  Query bad;
  bad.types = {""};
  CHECK(error_code_of([&] { store.query(bad); }) == ErrorCode::invalid_argument);
}

TEST_CASE("a cursor left open while the map grows goes on without gaps or duplicates",
          "[query][map]") {
  TempDir dir;
  Options options;
  options.map_size = 256 * 1024;
  Store store = Store::open(dir / "store", options);
  std::vector<EventId> original;
  for (int i = 0; i < 10; ++i) {
    auto r = store.append_batch(std::vector<EventData>(100, event("T", "a", std::string(500, 'x'))));
    for (auto& e : r.events) original.push_back(e.id);
  }
  EventCursor cursor = store.query({});
  std::vector<EventId> seen;
  for (int i = 0; i < 10; ++i) seen.push_back(cursor.next()->id);
  // Growing the map needs every read transaction of this process to end: an
  // idle cursor holds none, so this completes.
  for (int i = 0; i < 200; ++i) {
    std::vector<EventData> batch(10, event("Grow", "b", std::string(2000, 'y')));
    store.append_batch(batch);
  }
  CHECK(store.stats().map_size_bytes > options.map_size);
  while (auto e = cursor.next()) seen.push_back(e->id);
  // Every event of the snapshot the query began with, and possibly some
  // appended meanwhile; never one twice or out of order.
  REQUIRE(seen.size() >= original.size());
  CHECK(std::vector<EventId>(seen.begin(), seen.begin() + 1000) == original);
  CHECK(std::adjacent_find(seen.begin(), seen.end(),
                           [](const EventId& a, const EventId& b) { return !(a < b); }) == seen.end());
}

namespace {
std::size_t anonymous_rss_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::stoul(line.substr(8));
  }
  FAIL("/proc/self/status has no RssAnon line: the memory bound cannot be checked");
  return 0;
}
}  // namespace

TEST_CASE("streaming a 200,000-event result keeps memory bounded", "[query][memory]") {
  TempDir dir;
  Options options;
  options.durability = Durability::no_meta_sync;
  Store store = Store::open(dir / "store", options);
  const std::string data(1000, 'd');
  std::vector<EventData> batch;
  for (int i = 0; i < 200'000; ++i) {
    batch.push_back(event(i % 2 ? "Odd" : "Even", "agg-" + std::to_string(i % 1000), data));
    if (batch.size() == 5000) {
      store.append_batch(batch);
      batch.clear();
    }
  }
  for (Query q : {Query{}, [] { Query t; t.types = {"Odd", "Even"}; t.type_prefix = ""; return t; }()}) {
    const std::size_t before = anonymous_rss_kib();
    std::size_t peak = before, n = 0, bytes = 0;
    for (const auto& e : store.query(q)) {
      bytes += e.data.size();
      if (++n % 10'000 == 0) peak = std::max(peak, anonymous_rss_kib());
    }
    CHECK(n == 200'000);
    CHECK(bytes == 200'000u * 1000u);
    INFO("anonymous memory grew by " << (peak - before) << " KiB while streaming 200 MB");
    CHECK(peak - before < 16 * 1024);
  }
}

namespace {

// Every field of a read event, as text: two reads of one event must agree.
std::string fields_of(const RecordedEvent& e) {
  std::string out = e.id.to_string() + "|" + e.type + "|" + e.aggregate + "|" + std::to_string(e.aggregate_version) +
                    "|" + std::to_string(static_cast<int>(e.content_type)) + "|" + e.data + "|" +
                    e.idempotency_key.value_or("(none)") + "|" + std::to_string(e.schema_version) + "|" +
                    (e.trace_context ? e.trace_context->traceparent + ";" + e.trace_context->tracestate : "(none)") +
                    "|" + to_hex(e.checksum) + "|" + to_hex(e.chain) + "|" + std::to_string(e.record_format);
  for (const auto& [k, v] : e.metadata) out += "|" + k + "=" + v;
  return out;
}

}  // namespace

TEST_CASE("a cursor decodes into reused events: no field of one event is left in the next", "[query]") {
  // Rich events (metadata, idempotency key, schema version, trace context,
  // long data) between plain ones, over several chunks of 256, and a filter
  // that skips some: every way of reading returns each event exactly as get()
  // does.
  TempDir dir;
  Store store = Store::open(dir / "store");
  std::vector<EventId> ids;
  for (int i = 0; i < 700; ++i) {
    EventData e = event(i % 3 == 0 ? "Skipped" : "Read", i % 2 == 0 ? "agg-" + std::to_string(i % 7) : "");
    if (i % 5 == 0) {
      e.metadata = {{"user", "u" + std::to_string(i)}, {"z", std::string(40, 'z')}};
      e.idempotency_key = "key-" + std::to_string(i);
      e.schema_version = 3;
      e.trace_context = TraceContext{"00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "vendor=x"};
      e.content_type = ContentType::bytes;
      e.data = std::string(3000 + i, 'd');
    }
    ids.push_back(store.append(e).events.at(0).id);
  }
  Query q;
  q.types = {"Read"};
  std::vector<std::string> expected;
  for (std::size_t i = 0; i < ids.size(); ++i) {
    if (i % 3 != 0) expected.push_back(fields_of(store.get(ids[i])));
  }
  std::vector<std::string> in_place, owned, reused;
  for (const RecordedEvent& e : store.query(q)) in_place.push_back(fields_of(e));
  EventCursor by_value = store.query(q);
  while (auto e = by_value.next()) owned.push_back(fields_of(*e));
  EventCursor into = store.query(q);
  RecordedEvent one;
  while (into.next(one)) reused.push_back(fields_of(one));
  const std::string last = reused.back();
  CHECK_FALSE(into.next(one));
  CHECK(fields_of(one) == last);  // unchanged at the end
  CHECK(in_place == expected);
  CHECK(owned == expected);
  CHECK(reused == expected);
}
