// Event streams and measurements for bench/compare.
#pragma once

#include <chrono>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "system.h"

namespace compare {

enum class Distribution { uniform, lifecycle };
const char* to_string(Distribution d);

// 256-byte payloads, 8 types. Uniform: aggregates drawn from 10,000, and every
// `hot_every`-th event goes to the aggregate "hot" (read by workload 5: with
// hot_every = events / 1,000 it holds 1,000 events whatever the size). Lifecycle:
// 64 aggregates are live at a time; each receives 5 to 20 events, then goes
// quiet for good and a new one starts.
class EventStream {
 public:
  EventStream(Distribution distribution, std::uint64_t seed, std::uint64_t hot_every = 1000);
  BenchEvent next();

 private:
  struct Live {
    std::uint64_t id;
    int remaining;
  };
  Distribution distribution_;
  std::mt19937_64 rng_;
  std::vector<std::string> payloads_;
  std::vector<Live> live_;
  std::uint64_t next_aggregate_ = 0;
  std::uint64_t count_ = 0;
  std::uint64_t hot_every_;
};

// Bytes this process has caused to be written to storage (/proc/self/io).
std::uint64_t write_bytes();
// Anonymous resident memory of this process, in bytes (/proc/self/status):
// the process's own memory, not pages of files it has mapped.
std::uint64_t anonymous_rss();

struct Percentiles {
  double p50_ms = 0, p99_ms = 0;
};
Percentiles percentiles(std::vector<double> samples_ms);
// The middle value (the mean of the two middle ones for an even count).
double median(std::vector<double> values);

using Clock = std::chrono::steady_clock;
inline double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

}  // namespace compare
