// Export and import of a 1,000,000-event store (256-byte payloads), and in the
// same run `gzip -6` and `pigz -6` compressing the same record bytes:
// bytes_per_second is uncompressed record bytes per second, items_per_second
// events per second. LIGHTHOUSE_BENCH_EVENTS overrides the store size.
#include <cstdlib>
#include <memory>

#include "bench_support.h"
#include "lighthouse/lighthouse.h"

namespace lb = lighthouse::bench;
namespace fs = std::filesystem;

namespace {

struct Fixture {
  fs::path root;
  std::unique_ptr<lighthouse::Store> store;
  std::uint64_t events = 0;
  fs::path records;  // the uncompressed record stream of one export
  std::uint64_t record_bytes = 0;
};

Fixture& fixture() {
  static Fixture f = [] {
    Fixture f;
    f.events = lb::bench_events();
    f.root = lb::fresh_dir("archive");
    lighthouse::Options options;
    options.durability = lighthouse::Durability::no_meta_sync;
    f.store = std::make_unique<lighthouse::Store>(lighthouse::Store::open(f.root / "store", options));
    lb::fill_uniform(*f.store, f.events, lb::payload(3), lighthouse::ContentType::bytes);
    // The record bytes the gzip tools compress: one export, decompressed.
    auto dir = f.root / "reference";
    f.record_bytes = lighthouse::export_archive(*f.store, dir).record_bytes;
    f.records = f.root / "records.bin";
    std::string cmd = "cat " + (dir / "events-*.gz").string() + " | gzip -dc > " + f.records.string();
    if (std::system(cmd.c_str()) != 0) std::abort();
    return f;
  }();
  return f;
}

void BM_Export(benchmark::State& state) {
  auto& f = fixture();
  std::uint64_t bytes = 0, compressed = 0;
  int run = 0;
  for (auto _ : state) {
    auto dir = f.root / ("export-" + std::to_string(run++));
    lighthouse::ExportOptions options;
    options.level = 6;
    auto r = lighthouse::export_archive(*f.store, dir, options);
    bytes += r.record_bytes;
    compressed += r.compressed_bytes;
    state.PauseTiming();
    fs::remove_all(dir);
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(f.events * state.iterations()));
  state.counters["ratio"] = static_cast<double>(bytes) / static_cast<double>(compressed);
}
BENCHMARK(BM_Export)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

void BM_Import(benchmark::State& state) {
  auto& f = fixture();
  std::uint64_t bytes = 0;
  int run = 0;
  for (auto _ : state) {
    state.PauseTiming();
    auto target = f.root / ("import-" + std::to_string(run++));
    state.ResumeTiming();
    {
      auto store = lighthouse::Store::open(target);
      bytes += lighthouse::import_archive(f.root / "reference", store).record_bytes;
    }
    state.PauseTiming();
    fs::remove_all(target);
    state.ResumeTiming();
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(bytes));
  state.SetItemsProcessed(static_cast<std::int64_t>(f.events * state.iterations()));
}
BENCHMARK(BM_Import)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

void compress_with(benchmark::State& state, const char* tool) {
  auto& f = fixture();
  const std::string cmd = std::string(tool) + " -6 -c " + f.records.string() + " > /dev/null";
  for (auto _ : state) {
    if (std::system(cmd.c_str()) != 0) state.SkipWithError((std::string(tool) + " failed").c_str());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(f.record_bytes * state.iterations()));
}
void BM_Gzip6(benchmark::State& state) { compress_with(state, "gzip"); }
void BM_Pigz6(benchmark::State& state) { compress_with(state, "pigz"); }
BENCHMARK(BM_Gzip6)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();
BENCHMARK(BM_Pigz6)->Unit(benchmark::kMillisecond)->Iterations(3)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
