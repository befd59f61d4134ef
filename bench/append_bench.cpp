// Single-writer append throughput: batches of 1, 100 and 1,000 events of
// 256 bytes, durable (Durability::sync) and no_meta_sync. Items/s is
// events/s. The store lives in $LIGHTHOUSE_BENCH_DIR (default: the current
// directory), so the figures are those of that disk.
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <string>

#include "lighthouse/lighthouse.h"

namespace {

std::filesystem::path bench_dir(const std::string& name) {
  const char* base = std::getenv("LIGHTHOUSE_BENCH_DIR");
  auto dir = std::filesystem::path(base != nullptr ? base : ".") / ("lighthouse-bench-" + name);
  std::filesystem::remove_all(dir);
  return dir;
}

std::string payload(std::mt19937_64& rng) {
  std::string data(256, '\0');
  for (auto& c : data) c = static_cast<char>('a' + rng() % 26);
  return data;
}

void append_batches(benchmark::State& state, lighthouse::Durability durability) {
  const auto batch_size = static_cast<std::size_t>(state.range(0));
  auto dir = bench_dir("append-" + std::to_string(batch_size));
  lighthouse::Options options;
  options.durability = durability;
  {
    auto store = lighthouse::Store::open(dir, options);
    std::mt19937_64 rng(42);
    std::vector<lighthouse::EventData> batch(batch_size);
    const char* types[] = {"OrderPlaced", "ItemAdded", "PaymentReceived", "OrderShipped",
                           "StockMoved", "InvoiceSent", "RefundIssued", "OrderClosed"};
    std::uint64_t n = 0;
    for (auto _ : state) {
      state.PauseTiming();
      for (auto& e : batch) {
        e.type = types[n % 8];
        e.aggregate = "agg-" + std::to_string(rng() % 10'000);
        e.data = payload(rng);
        ++n;
      }
      state.ResumeTiming();
      benchmark::DoNotOptimize(store.append_batch(batch));
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * batch_size));
    state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * batch_size * 256));
  }
  std::filesystem::remove_all(dir);
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
