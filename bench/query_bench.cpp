// The read path over a 1,000,000-event store (256-byte payloads, 8 types,
// 10,000 aggregates): query by type and by aggregate with checksum checks on
// and off (items_per_second = events decoded per second), read_aggregate of
// 10, 100 and 1,000 events, seeks by ID, sequence and time (p50/p99), and
// verify() and backup() of the whole store, and opening it (Store::open,
// with and without the structural check of every page,
// against raw LMDB opening the same environment: mdb_env_open, the three
// databases, the last key — what bench/compare's lmdb system does).
// LIGHTHOUSE_BENCH_EVENTS overrides the store size.
#include <lmdb.h>

#include <memory>

#include "bench_support.h"
#include "lighthouse/lighthouse.h"

namespace lb = lighthouse::bench;

namespace {

struct Fixture {
  std::unique_ptr<lighthouse::Store> store;
  std::vector<lighthouse::EventId> sample_ids;  // spread over the store
  std::uint64_t events = 0;
};

Fixture& fixture() {
  static Fixture f = [] {
    Fixture f;
    f.events = lb::bench_events();
    lighthouse::Options options;
    options.durability = lighthouse::Durability::no_meta_sync;
    f.store = std::make_unique<lighthouse::Store>(
        lighthouse::Store::open(lb::fresh_dir("query") / "store", options));
    const std::string data = lb::payload(7);
    std::vector<lighthouse::EventData> batch;
    std::uint64_t n = 0, long_streams = 0;
    // Three streams of known length for read_aggregate (10, 100 and 1,000
    // events: 1,110 in all), spread through the store whatever its size.
    const std::uint64_t spread = std::max<std::uint64_t>(1, f.events / 1'127);
    while (n < f.events) {
      lighthouse::EventData e;
      e.type = lb::event_type(n);
      if (n % spread == 0 && long_streams < 1110) {
        std::uint64_t k = long_streams++;
        e.aggregate = k < 10 ? "len-10" : (k < 110 ? "len-100" : "len-1000");
      } else {
        e.aggregate = "agg-" + std::to_string(n * 7919 % 10'000);
      }
      e.data = data;
      batch.push_back(std::move(e));
      if (++n % 5000 == 0 || n == f.events) {
        auto r = f.store->append_batch(batch);
        f.sample_ids.push_back(r.events[batch.size() / 2].id);
        batch.clear();
      }
    }
    return f;
  }();
  return f;
}

void query_events(benchmark::State& state, lighthouse::Query q) {
  auto& f = fixture();
  q.verify_on_read = static_cast<lighthouse::ReadCheck>(state.range(0));
  std::int64_t events = 0;
  for (auto _ : state) {
    for (const auto& e : f.store->query(q)) {
      benchmark::DoNotOptimize(e.data.data());
      ++events;
    }
  }
  state.SetItemsProcessed(events);
  state.counters["events_per_query"] =
      static_cast<double>(events) / static_cast<double>(state.iterations());
}

void BM_QueryByType(benchmark::State& state) {
  lighthouse::Query q;
  q.types = {"OrderPlaced"};
  query_events(state, q);
}
BENCHMARK(BM_QueryByType)->ArgName("check")->Arg(1)->Arg(2)->Arg(0)->Unit(benchmark::kMillisecond);

void BM_QueryByAggregate(benchmark::State& state) {
  auto& f = fixture();
  lb::Latencies latencies;
  lighthouse::Query q;
  q.verify_on_read = static_cast<lighthouse::ReadCheck>(state.range(0));
  std::int64_t events = 0, i = 0;
  for (auto _ : state) {
    q.aggregate = "agg-" + std::to_string(i++ * 31 % 10'000);
    auto start = std::chrono::steady_clock::now();
    for (const auto& e : f.store->query(q)) {
      benchmark::DoNotOptimize(e.data.data());
      ++events;
    }
    latencies.add(std::chrono::steady_clock::now() - start);
  }
  state.SetItemsProcessed(events);
  latencies.report(state);
}
BENCHMARK(BM_QueryByAggregate)->ArgName("check")->Arg(1)->Arg(2)->Arg(0);

void BM_ReadAggregate(benchmark::State& state) {
  auto& f = fixture();
  const std::string aggregate = "len-" + std::to_string(state.range(0));
  lb::Latencies latencies;
  std::int64_t events = 0;
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    for (const auto& e : f.store->read_aggregate(aggregate)) {
      benchmark::DoNotOptimize(e.data.data());
      ++events;
    }
    latencies.add(std::chrono::steady_clock::now() - start);
  }
  if (events != state.range(0) * static_cast<std::int64_t>(state.iterations())) {
    state.SkipWithError("read_aggregate returned the wrong number of events");
  }
  state.SetItemsProcessed(events);
  latencies.report(state);
}
BENCHMARK(BM_ReadAggregate)->Arg(10)->Arg(100)->Arg(1000);

// One seek: the first event at or after a position, as query + limit 1.
void seek(benchmark::State& state, void (*position)(lighthouse::Query&, const lighthouse::EventId&)) {
  auto& f = fixture();
  lb::Latencies latencies;
  std::size_t i = 0;
  for (auto _ : state) {
    const auto& id = f.sample_ids[i++ * 7 % f.sample_ids.size()];
    lighthouse::Query q;
    q.limit = 1;
    position(q, id);
    auto start = std::chrono::steady_clock::now();
    auto e = f.store->query(q).next();
    latencies.add(std::chrono::steady_clock::now() - start);
    if (!e) state.SkipWithError("seek found nothing");
  }
  latencies.report(state);
}

void BM_SeekById(benchmark::State& state) {
  seek(state, [](lighthouse::Query& q, const lighthouse::EventId& id) { q.after_id = id; });
}
void BM_SeekBySequence(benchmark::State& state) {
  seek(state, [](lighthouse::Query& q, const lighthouse::EventId& id) { q.from_sequence = id.sequence; });
}
void BM_SeekByTime(benchmark::State& state) {
  seek(state, [](lighthouse::Query& q, const lighthouse::EventId& id) { q.since_ns = id.timestamp_ns; });
}
BENCHMARK(BM_SeekById);
BENCHMARK(BM_SeekBySequence);
BENCHMARK(BM_SeekByTime);

// verify() over the whole store: items_per_second = events verified per second.
void BM_Verify(benchmark::State& state) {
  auto& f = fixture();
  for (auto _ : state) {
    auto report = f.store->verify();
    if (!report.ok()) state.SkipWithError("the benchmark store does not verify");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * f.events));
}
BENCHMARK(BM_Verify)->Unit(benchmark::kMillisecond)->Iterations(2);

// backup(): bytes_per_second = bytes of the compacted copy per second,
// including its sync and its verification.
void BM_Backup(benchmark::State& state) {
  auto& f = fixture();
  std::int64_t bytes = 0;
  int n = 0;
  for (auto _ : state) {
    auto dir = lb::fresh_dir("backup-" + std::to_string(n++));
    std::filesystem::remove_all(dir);
    bytes += static_cast<std::int64_t>(f.store->backup(dir).bytes);
    state.PauseTiming();
    std::filesystem::remove_all(dir);
    state.ResumeTiming();
  }
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_Backup)->Unit(benchmark::kMillisecond)->Iterations(2);

// Times `open(path)` once per iteration; what it returns closes the store,
// untimed. The fixture's handle is closed meanwhile (a second open in one
// process shares the first), so these are registered last.
template <typename Open>
void time_opens(benchmark::State& state, Open open) {
  auto& f = fixture();
  const auto path = f.store->path();
  const auto options = f.store->options();
  f.store.reset();
  for (auto _ : state) {
    auto close = open(path);
    if (state.error_occurred()) {  // skipped: no timing calls may follow
      close();
      break;
    }
    state.PauseTiming();
    close();
    state.ResumeTiming();
  }
  f.store = std::make_unique<lighthouse::Store>(lighthouse::Store::open(path, options));
}

void BM_OpenStore(benchmark::State& state) {
  time_opens(state, [](const std::filesystem::path& path) {
    return [store = lighthouse::Store::open(path)]() mutable { store.close(); };
  });
}
BENCHMARK(BM_OpenStore)->Unit(benchmark::kMicrosecond)->Iterations(300);

// Store::open with Options::check_structure_on_open: the structural walk of
// every page (verify() runs the same walk first). bytes_per_second = bytes
// of data.mdb walked per second, the file in the page cache; BM_OpenStore is
// the same open without it.
void BM_OpenCheckingStructure(benchmark::State& state) {
  std::int64_t bytes = 0;
  time_opens(state, [&bytes](const std::filesystem::path& path) {
    lighthouse::Options options;
    options.check_structure_on_open = true;
    bytes += static_cast<std::int64_t>(std::filesystem::file_size(path / "data.mdb"));
    return [store = lighthouse::Store::open(path, options)]() mutable { store.close(); };
  });
  state.SetBytesProcessed(bytes);
}
BENCHMARK(BM_OpenCheckingStructure)->Unit(benchmark::kMillisecond)->Iterations(5);

// Raw LMDB opening the same environment for writing, as bench/compare's
// `lmdb` system does: the floor for Store::open.
void BM_OpenRawLmdb(benchmark::State& state) {
  time_opens(state, [&state](const std::filesystem::path& path) {
    MDB_env* env = nullptr;
    MDB_txn* txn = nullptr;
    MDB_dbi events = 0, by_type = 0, by_aggregate = 0;
    MDB_cursor* cursor = nullptr;
    MDB_val key, value;
    const bool opened =
        mdb_env_create(&env) == 0 && mdb_env_set_maxdbs(env, 8) == 0 && mdb_env_set_maxreaders(env, 256) == 0 &&
        mdb_env_set_mapsize(env, std::size_t{1} << 34) == 0 && mdb_env_open(env, path.c_str(), MDB_NOTLS, 0600) == 0 &&
        mdb_txn_begin(env, nullptr, 0, &txn) == 0 && mdb_dbi_open(txn, "events", 0, &events) == 0 &&
        mdb_dbi_open(txn, "by_type", MDB_DUPSORT | MDB_DUPFIXED, &by_type) == 0 &&
        mdb_dbi_open(txn, "by_aggregate", MDB_DUPSORT | MDB_DUPFIXED, &by_aggregate) == 0 &&
        mdb_cursor_open(txn, events, &cursor) == 0 && mdb_cursor_get(cursor, &key, &value, MDB_LAST) == 0;
    if (!opened) state.SkipWithError("raw LMDB could not open the store");
    if (cursor != nullptr) mdb_cursor_close(cursor);
    if (txn != nullptr) mdb_txn_commit(txn);
    return [env] {
      if (env != nullptr) mdb_env_close(env);
    };
  });
}
BENCHMARK(BM_OpenRawLmdb)->Unit(benchmark::kMicrosecond)->Iterations(300);

}  // namespace

BENCHMARK_MAIN();
