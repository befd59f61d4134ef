// Single-writer append throughput: batches of 1, 100 and 1,000 events of
// 256 bytes, durable (Durability::sync) and no_meta_sync. Items/s is
// events/s. The store lives in $LIGHTHOUSE_BENCH_DIR (default: the current
// directory), so the figures are those of that disk.
#include "bench_support.h"
#include "lighthouse/lighthouse.h"

namespace lb = lighthouse::bench;

namespace {

void append_batches(benchmark::State& state, lighthouse::Durability durability) {
  const auto batch_size = static_cast<std::size_t>(state.range(0));
  auto dir = lb::fresh_dir("append-" + std::to_string(batch_size)) / "store";
  lighthouse::Options options;
  options.durability = durability;
  {
    auto store = lighthouse::Store::open(dir, options);
    std::mt19937_64 rng(42);
    std::vector<lighthouse::EventData> batch(batch_size);
    std::uint64_t n = 0;
    for (auto _ : state) {
      state.PauseTiming();
      for (auto& e : batch) {
        e.type = lb::event_type(n);
        e.aggregate = "agg-" + std::to_string(rng() % 10'000);
        e.data = lb::payload(rng());
        ++n;
      }
      state.ResumeTiming();
      benchmark::DoNotOptimize(store.append_batch(batch));
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch_size));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch_size * 256));
  }
  std::filesystem::remove_all(dir.parent_path());
}

void BM_AppendBatch_Sync(benchmark::State& state) {
  append_batches(state, lighthouse::Durability::sync);
}
void BM_AppendBatch_NoMetaSync(benchmark::State& state) {
  append_batches(state, lighthouse::Durability::no_meta_sync);
}

BENCHMARK(BM_AppendBatch_Sync)->Arg(1)->Arg(100)->Arg(1000)->UseRealTime()->MinTime(2.0);
BENCHMARK(BM_AppendBatch_NoMetaSync)->Arg(1)->Arg(100)->Arg(1000)->UseRealTime()->MinTime(2.0);

}  // namespace

BENCHMARK_MAIN();
