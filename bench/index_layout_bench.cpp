// The aggregate index's layout, measured in raw LMDB (issue 20): bytes
// written per event and append rate of compare's workload 1 (batches of
// 1,000 events of 256-byte payloads, durable commits), uniform over 10,000
// aggregates, for
//   dupsort+heads  today's layout: by_aggregate DUPSORT|DUPFIXED, aggregate ->
//                  version(8 BE) || event key(20), and aggregate_heads,
//                  aggregate -> version, read and written for every event
//   dupsort        the same index; the head is the aggregate's last duplicate
//   plain+heads    a plain tree keyed by aggregate || 0x00 || version(8 BE) ->
//                  event key, and aggregate_heads
//   plain          the plain tree; the head is the last key of its prefix
//   dupsort, key   DUPSORT of the event key alone (20 bytes, no version):
//                  compare's raw LMDB system, which keeps no versions
// Every layout also writes `events` (MDB_APPEND) and by_type, as the store
// does. The figures are in docs/performance.md ("The aggregate index").
#include <benchmark/benchmark.h>
#include <lmdb.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <random>
#include <stdexcept>
#include <string>

namespace {

enum Layout { kDupsortHeads, kDupsort, kPlainHeads, kPlain, kDupsortKeyOnly };

std::uint64_t write_bytes() {
  std::ifstream io("/proc/self/io");
  std::string key;
  std::uint64_t value = 0;
  while (io >> key >> value) {
    if (key == "write_bytes:") return value;
  }
  return 0;
}

std::string be64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i, v >>= 8) out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
  return out;
}

std::uint64_t read_be64(const void* p) {
  const auto* b = static_cast<const unsigned char*>(p);
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | b[i];
  return v;
}

MDB_val val(const std::string& s) { return {s.size(), const_cast<char*>(s.data())}; }

void check(int rc, const char* what) {
  if (rc != 0) throw std::runtime_error(std::string(what) + ": " + mdb_strerror(rc));
}

class IndexStore {
 public:
  IndexStore(const std::filesystem::path& dir, Layout layout) : layout_(layout) {
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    check(mdb_env_create(&env_), "create");
    mdb_env_set_maxdbs(env_, 8);
    mdb_env_set_mapsize(env_, std::size_t{1} << 34);
    check(mdb_env_open(env_, dir.c_str(), MDB_NOTLS, 0600), "open");
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "begin");
    const bool dupsort = layout != kPlainHeads && layout != kPlain;
    check(mdb_dbi_open(txn, "events", MDB_CREATE, &events_), "events");
    check(mdb_dbi_open(txn, "by_type", MDB_CREATE | MDB_DUPSORT | MDB_DUPFIXED, &by_type_), "by_type");
    check(mdb_dbi_open(txn, "by_aggregate", MDB_CREATE | (dupsort ? MDB_DUPSORT | MDB_DUPFIXED : 0u), &by_aggregate_),
          "by_aggregate");
    check(mdb_dbi_open(txn, "aggregate_heads", MDB_CREATE, &heads_), "aggregate_heads");
    check(mdb_txn_commit(txn), "commit");
  }
  ~IndexStore() { mdb_env_close(env_); }
  IndexStore(const IndexStore&) = delete;
  IndexStore& operator=(const IndexStore&) = delete;

  void append_batch(std::mt19937_64& rng, const std::string& payload, int events) {
    MDB_txn* txn = nullptr;
    check(mdb_txn_begin(env_, nullptr, 0, &txn), "begin");
    for (int i = 0; i < events; ++i) {
      const std::string aggregate = "agg-" + std::to_string(rng() % 10'000);
      ++sequence_;
      const std::string key = be64(sequence_ * 1000) + be64(sequence_) + std::string(4, '\1');
      const std::uint64_t version = head(txn, aggregate) + 1;
      const std::string record = std::string(40, 'h') + aggregate + payload;
      MDB_val k = val(key), v = val(record);
      check(mdb_put(txn, events_, &k, &v, MDB_APPEND), "put events");
      const std::string type = "OrderPlaced";
      MDB_val tk = val(type), tv = val(key);
      check(mdb_put(txn, by_type_, &tk, &tv, MDB_APPENDDUP), "put by_type");
      if (layout_ == kDupsortKeyOnly) {
        MDB_val ak = val(aggregate), av = val(key);
        check(mdb_put(txn, by_aggregate_, &ak, &av, MDB_APPENDDUP), "put by_aggregate");
      } else if (layout_ == kDupsortHeads || layout_ == kDupsort) {
        const std::string entry = be64(version) + key;
        MDB_val ak = val(aggregate), av = val(entry);
        check(mdb_put(txn, by_aggregate_, &ak, &av, 0), "put by_aggregate");
      } else {
        const std::string index_key = aggregate + '\0' + be64(version);
        MDB_val ak = val(index_key), av = val(key);
        check(mdb_put(txn, by_aggregate_, &ak, &av, 0), "put by_aggregate");
      }
      if (layout_ == kDupsortHeads || layout_ == kPlainHeads) {
        const std::string stored = be64(version);
        MDB_val hk = val(aggregate), hv = val(stored);
        check(mdb_put(txn, heads_, &hk, &hv, 0), "put aggregate_heads");
      }
    }
    check(mdb_txn_commit(txn), "commit");
  }

 private:
  std::uint64_t head(MDB_txn* txn, const std::string& aggregate) {
    if (layout_ == kDupsortKeyOnly) return 0;
    MDB_val k = val(aggregate), v;
    if (layout_ == kDupsortHeads || layout_ == kPlainHeads) {
      return mdb_get(txn, heads_, &k, &v) == 0 ? read_be64(v.mv_data) : 0;
    }
    MDB_cursor* c = nullptr;
    check(mdb_cursor_open(txn, by_aggregate_, &c), "cursor");
    std::uint64_t version = 0;
    if (layout_ == kDupsort) {
      if (mdb_cursor_get(c, &k, &v, MDB_SET) == 0 && mdb_cursor_get(c, &k, &v, MDB_LAST_DUP) == 0) {
        version = read_be64(v.mv_data);
      }
    } else {
      // The first key after the aggregate's prefix, then one back.
      const std::string after = aggregate + '\1';
      MDB_val bound = val(after);
      int rc = mdb_cursor_get(c, &bound, &v, MDB_SET_RANGE);
      rc = rc == 0 ? mdb_cursor_get(c, &bound, &v, MDB_PREV) : mdb_cursor_get(c, &bound, &v, MDB_LAST);
      if (rc == 0 && bound.mv_size == aggregate.size() + 9 &&
          std::string_view(static_cast<const char*>(bound.mv_data), aggregate.size() + 1) ==
              std::string_view(aggregate.data(), aggregate.size() + 1)) {
        version = read_be64(static_cast<const char*>(bound.mv_data) + aggregate.size() + 1);
      }
    }
    mdb_cursor_close(c);
    return version;
  }

  Layout layout_;
  MDB_env* env_ = nullptr;
  MDB_dbi events_ = 0, by_type_ = 0, by_aggregate_ = 0, heads_ = 0;
  std::uint64_t sequence_ = 0;
};

void BM_AggregateIndexLayout(benchmark::State& state) {
  const auto layout = static_cast<Layout>(state.range(0));
  const int batches = static_cast<int>(state.range(1));
  constexpr int kBatch = 1000;
  // In the working directory (compare writes there too): a tmpfs /tmp counts no bytes written.
  const std::filesystem::path dir = std::filesystem::current_path() / "index-layout-data";
  std::uint64_t bytes = 0, events = 0;
  for (auto _ : state) {
    state.PauseTiming();
    std::mt19937_64 rng(42);
    const std::string payload(256, 'p');
    {
      IndexStore store(dir, layout);
      // A warm-up of 10,000 aggregates' first events: the measured batches
      // update existing aggregates, as in compare's steady state.
      for (int b = 0; b < 20; ++b) store.append_batch(rng, payload, kBatch);
      const std::uint64_t before = write_bytes();
      state.ResumeTiming();
      for (int b = 0; b < batches; ++b) store.append_batch(rng, payload, kBatch);
      state.PauseTiming();
      bytes += write_bytes() - before;
      events += static_cast<std::uint64_t>(batches) * kBatch;
    }
    std::filesystem::remove_all(dir);
    state.ResumeTiming();
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(events));
  state.counters["bytes_per_event"] = static_cast<double>(bytes) / static_cast<double>(events);
  static const char* const kNames[] = {"dupsort+heads", "dupsort", "plain+heads", "plain", "dupsort, key"};
  state.SetLabel(kNames[layout]);
}

}  // namespace

// Arguments: the layout, and the measured batches of 1,000 events (after
// 20,000 events of warm-up): 10^5 and 10^6 events, compare's default.
BENCHMARK(BM_AggregateIndexLayout)
    ->ArgsProduct({{0, 1, 2, 3, 4}, {100, 1000}})
    ->Iterations(1)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK_MAIN();
