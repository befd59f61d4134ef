// Subscriptions: catch-up throughput of one subscriber over 1,000,000 events,
// and live delivery latency under a write load of 50,000 events/s, with the
// writer in this process and in another process.
//
// Latency is measured from the event's timestamp (assigned inside the write
// transaction, just before its commit and sync) to the handler's call, on
// the same host's wall clock: an upper bound of commit-to-handler latency
// that includes the commit itself. p50_ms / p99_ms / max_ms are counters.
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <thread>

#include "bench_support.h"
#include "lighthouse/lighthouse.h"

extern char** environ;

namespace lb = lighthouse::bench;
using namespace std::chrono_literals;

namespace {

std::string self_path;

std::uint64_t wall_ns() {
  return static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::system_clock::now().time_since_epoch())
                                        .count());
}

lighthouse::Options fast_options() {
  lighthouse::Options o;
  o.health.enabled = false;
  return o;
}

// Appends `rate` events/s for `seconds`: batches of rate/100 every 10 ms.
void write_load(lighthouse::Store& store, std::uint64_t rate, double seconds) {
  const std::string data = lb::payload(7);
  const std::size_t per_tick = static_cast<std::size_t>(rate / 100);
  auto next = std::chrono::steady_clock::now();
  const auto end = next + std::chrono::duration<double>(seconds);
  std::uint64_t n = 0;
  while (std::chrono::steady_clock::now() < end) {
    lighthouse::Batch batch;
    for (std::size_t i = 0; i < per_tick; ++i, ++n) batch.events.push_back(lb::uniform_event(n, data));
    store.append_batch(std::move(batch));
    next += 10ms;
    std::this_thread::sleep_until(next);
  }
}

lighthouse::Store& million_store() {
  static lighthouse::Store store = [] {
    auto s = lighthouse::Store::open(lb::fresh_dir("subscription-catchup") / "store", fast_options());
    lb::fill_uniform(s, 1'000'000, lb::payload(3), lighthouse::ContentType::msgpack, 1000);
    return s;
  }();
  return store;
}

void BM_Subscription_CatchUp_1M(benchmark::State& state) {
  auto& store = million_store();
  for (auto _ : state) {
    std::uint64_t seen = 0;
    lighthouse::SubscribeOptions o;
    o.stop_when_caught_up = true;
    o.chunk_events = static_cast<std::size_t>(state.range(0));
    auto sub = store.subscribe({}, lighthouse::SubscriptionStart::beginning(),
                               [&](const lighthouse::RecordedEvent&) { ++seen; }, o);
    sub.wait();
    if (seen != 1'000'000) state.SkipWithError("not every event was delivered");
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations()) * 1'000'000);
}
BENCHMARK(BM_Subscription_CatchUp_1M)->Arg(512)->Arg(4096)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(2);

void BM_Subscription_Live_InProcess_50k(benchmark::State& state) {
  auto store = lighthouse::Store::open(lb::fresh_dir("subscription-live") / "store", fast_options());
  lb::Latencies latencies;
  std::atomic<std::uint64_t> delivered{0};
  auto sub = store.subscribe({}, lighthouse::SubscriptionStart::now(), [&](const lighthouse::RecordedEvent& e) {
    latencies.add(std::chrono::nanoseconds(wall_ns() - e.id.timestamp_ns));
    ++delivered;
  });
  for (auto _ : state) write_load(store, 50'000, 5.0);
  std::this_thread::sleep_for(200ms);
  sub.cancel();
  state.SetItemsProcessed(static_cast<std::int64_t>(delivered.load()));
  latencies.report(state);
}
BENCHMARK(BM_Subscription_Live_InProcess_50k)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

void BM_Subscription_Live_CrossProcess_50k(benchmark::State& state) {
  const auto dir = lb::fresh_dir("subscription-cross");
  auto store = lighthouse::Store::open(dir / "store", fast_options());
  lb::Latencies latencies;
  std::atomic<std::uint64_t> delivered{0};
  auto sub = store.subscribe({}, lighthouse::SubscriptionStart::now(), [&](const lighthouse::RecordedEvent& e) {
    latencies.add(std::chrono::nanoseconds(wall_ns() - e.id.timestamp_ns));
    ++delivered;
  });
  for (auto _ : state) {
    // The writer is this program again, in writer mode.
    const std::string path = (dir / "store").string();
    std::vector<char*> argv{self_path.data(), const_cast<char*>("--writer"), const_cast<char*>(path.c_str()),
                            nullptr};
    pid_t pid = 0;
    if (posix_spawn(&pid, self_path.c_str(), nullptr, nullptr, argv.data(), environ) != 0) {
      state.SkipWithError("cannot start the writer process");
      return;
    }
    int status = 0;
    waitpid(pid, &status, 0);
  }
  std::this_thread::sleep_for(200ms);
  sub.cancel();
  state.SetItemsProcessed(static_cast<std::int64_t>(delivered.load()));
  latencies.report(state);
}
BENCHMARK(BM_Subscription_Live_CrossProcess_50k)->Unit(benchmark::kMillisecond)->UseRealTime()->Iterations(1);

}  // namespace

int main(int argc, char** argv) {
  self_path = argv[0];
  if (argc == 3 && std::string(argv[1]) == "--writer") {
    auto store = lighthouse::Store::open(argv[2], fast_options());
    write_load(store, 50'000, 5.0);
    return 0;
  }
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
