// Shared pieces of the benchmark programs: a store directory on the disk
// under test, payloads, and latency percentiles.
#pragma once

#include <benchmark/benchmark.h>

#include <algorithm>
#include <chrono>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <random>
#include <string>
#include <vector>

#include "lighthouse/lighthouse.h"

namespace lighthouse::bench {

// A fresh directory under $LIGHTHOUSE_BENCH_DIR (default: the current one).
inline std::filesystem::path fresh_dir(const std::string& name) {
  const char* base = std::getenv("LIGHTHOUSE_BENCH_DIR");
  auto dir = std::filesystem::path(base != nullptr ? base : ".") / ("lighthouse-bench-" + name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

// Events in a benchmark's store: LIGHTHOUSE_BENCH_EVENTS, default 1,000,000.
// LIGHTHOUSE_BENCH_EVENTS: the size of query_bench's and archive_bench's
// stores (default 1,000,000; at least 10,000).
inline std::uint64_t bench_events() {
  const char* env = std::getenv("LIGHTHOUSE_BENCH_EVENTS");
  if (env == nullptr) return 1'000'000;
  std::uint64_t n = 0;
  const char* end = env + std::strlen(env);
  const auto parsed = std::from_chars(env, end, n);  // digits only: no sign, no junk
  if (parsed.ec != std::errc() || parsed.ptr != end || n < 10'000) {
    std::fprintf(stderr, "LIGHTHOUSE_BENCH_EVENTS must be a number of at least 10000, not '%s'\n", env);
    std::exit(2);
  }
  return n;
}

inline std::string payload(std::uint64_t seed, std::size_t size = 256) {
  std::mt19937_64 rng(seed);
  std::string data(size, '\0');
  for (auto& c : data) c = static_cast<char>('a' + rng() % 26);
  return data;
}

inline const char* event_type(std::uint64_t n) {
  static const char* types[] = {"OrderPlaced", "ItemAdded", "PaymentReceived", "OrderShipped",
                                "StockMoved", "InvoiceSent", "RefundIssued", "OrderClosed"};
  return types[n % 8];
}

// Event `n` of a uniform stream: one of 8 types, one of 10,000 aggregates.
inline lighthouse::EventData uniform_event(std::uint64_t n, const std::string& data,
                                           lighthouse::ContentType content_type = lighthouse::ContentType::msgpack) {
  lighthouse::EventData e;
  e.type = event_type(n);
  e.aggregate = "agg-" + std::to_string(n * 7919 % 10'000);
  e.content_type = content_type;
  e.data = data;
  return e;
}

// Appends `events` uniform events in batches of `per_batch`.
inline void fill_uniform(lighthouse::Store& store, std::uint64_t events, const std::string& data,
                         lighthouse::ContentType content_type = lighthouse::ContentType::msgpack,
                         std::uint64_t per_batch = 5000) {
  std::vector<lighthouse::EventData> batch;
  for (std::uint64_t n = 0; n < events;) {
    batch.push_back(uniform_event(n, data, content_type));
    if (++n % per_batch == 0 || n == events) {
      store.append_batch(std::move(batch));
      batch.clear();
    }
  }
}

// Latencies recorded by any thread; percentiles reported as counters (ms).
class Latencies {
 public:
  void add(std::chrono::steady_clock::duration d) {
    std::lock_guard lock(mutex_);
    samples_.push_back(std::chrono::duration<double, std::milli>(d).count());
  }
  void report(benchmark::State& state) {
    std::lock_guard lock(mutex_);
    if (samples_.empty()) return;
    std::sort(samples_.begin(), samples_.end());
    auto at = [&](double q) {
      return samples_[std::min(samples_.size() - 1, static_cast<std::size_t>(q * samples_.size()))];
    };
    state.counters["p50_ms"] = at(0.50);
    state.counters["p99_ms"] = at(0.99);
    state.counters["max_ms"] = samples_.back();
    samples_.clear();
  }

 private:
  std::mutex mutex_;
  std::vector<double> samples_;
};

}  // namespace lighthouse::bench
