// Durable appends of single events from 1, 4 and 16 threads, each waiting for
// its own acknowledgement; one thread keeping 4,096 asynchronous appends in
// flight; and, in the same run, raw LMDB committing one event per
// transaction (the limit without group commit). items_per_second is events/s;
// p50_ms / p99_ms are per-append latencies (call to durable acknowledgement).
#include <lmdb.h>

#include <deque>
#include <future>
#include <memory>

#include "bench_support.h"
#include "lighthouse/lighthouse.h"

namespace lb = lighthouse::bench;

namespace {

std::unique_ptr<lighthouse::Store> shared_store;
lb::Latencies latencies;

void BM_DurableAppend_Threads(benchmark::State& state) {
  if (state.thread_index() == 0) {
    shared_store = std::make_unique<lighthouse::Store>(
        lighthouse::Store::open(lb::fresh_dir("threads") / "store"));
  }
  const std::string data = lb::payload(static_cast<std::uint64_t>(state.thread_index()));
  std::uint64_t n = 0;
  for (auto _ : state) {
    lighthouse::EventData e;
    e.type = lb::event_type(n);
    e.aggregate = "agg-" + std::to_string((n * 7919 + static_cast<std::uint64_t>(state.thread_index())) % 10'000);
    e.data = data;
    ++n;
    auto start = std::chrono::steady_clock::now();
    benchmark::DoNotOptimize(shared_store->append(e));
    latencies.add(std::chrono::steady_clock::now() - start);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  if (state.thread_index() == 0) {
    latencies.report(state);
    shared_store.reset();
  }
}
BENCHMARK(BM_DurableAppend_Threads)->Threads(1)->Threads(4)->Threads(16)->UseRealTime()->MinTime(3.0);

void BM_DurableAppend_Async4096(benchmark::State& state) {
  auto store = lighthouse::Store::open(lb::fresh_dir("async") / "store");
  const std::string data = lb::payload(1);
  using Clock = std::chrono::steady_clock;
  std::deque<std::pair<std::future<lighthouse::AppendResult>, Clock::time_point>> in_flight;
  std::uint64_t n = 0;
  auto submit = [&] {
    lighthouse::EventData e;
    e.type = lb::event_type(n);
    e.aggregate = "agg-" + std::to_string(n * 7919 % 10'000);
    e.data = data;
    ++n;
    in_flight.emplace_back(store.append_async(std::move(e)), Clock::now());
  };
  for (int i = 0; i < 4096; ++i) submit();
  for (auto _ : state) {
    // Each iteration waits for the oldest append and submits another.
    in_flight.front().first.get();
    latencies.add(Clock::now() - in_flight.front().second);
    in_flight.pop_front();
    submit();
  }
  for (auto& f : in_flight) f.first.get();
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  latencies.report(state);
}
BENCHMARK(BM_DurableAppend_Async4096)->UseRealTime()->MinTime(3.0);

// Raw LMDB: one 256-byte put per durable transaction, callers serialised by
// LMDB's writer lock. No indexes, no checksums: what one event per commit
// costs on this disk.
MDB_env* raw_env = nullptr;
MDB_dbi raw_dbi;

void BM_LmdbOneEventPerTxn_Threads(benchmark::State& state) {
  if (state.thread_index() == 0) {
    auto dir = lb::fresh_dir("lmdb-raw");
    mdb_env_create(&raw_env);
    mdb_env_set_mapsize(raw_env, std::size_t{1} << 34);
    if (mdb_env_open(raw_env, dir.c_str(), MDB_NOTLS, 0600) != 0) state.SkipWithError("mdb_env_open");
    MDB_txn* txn;
    mdb_txn_begin(raw_env, nullptr, 0, &txn);
    mdb_dbi_open(txn, nullptr, 0, &raw_dbi);
    mdb_txn_commit(txn);
  }
  const std::string data = lb::payload(2);
  std::uint64_t n = 0;
  for (auto _ : state) {
    auto start = std::chrono::steady_clock::now();
    std::uint64_t key = (static_cast<std::uint64_t>(state.thread_index()) << 40) | n++;
    MDB_val k{sizeof key, &key};
    MDB_val v{data.size(), const_cast<char*>(data.data())};
    MDB_txn* txn;
    mdb_txn_begin(raw_env, nullptr, 0, &txn);
    mdb_put(txn, raw_dbi, &k, &v, 0);
    if (mdb_txn_commit(txn) != 0) state.SkipWithError("mdb_txn_commit");
    latencies.add(std::chrono::steady_clock::now() - start);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()));
  if (state.thread_index() == 0) {
    latencies.report(state);
    mdb_env_close(raw_env);
  }
}
BENCHMARK(BM_LmdbOneEventPerTxn_Threads)->Threads(1)->Threads(4)->Threads(16)->UseRealTime()->MinTime(3.0);

}  // namespace

BENCHMARK_MAIN();
