// The clocks of a store: wall-clock nanoseconds for event IDs and records
// (Options::clock when set), monotonic nanoseconds for intervals.
#pragma once

#include <chrono>
#include <cstdint>

#include "lighthouse/options.h"

namespace lighthouse {

inline std::uint64_t wall_clock_ns(const Options& options) {
  if (options.clock) return options.clock();
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
}

inline std::uint64_t steady_ns() {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
          .count());
}

inline std::uint64_t ns_since(std::chrono::steady_clock::time_point start) {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count());
}

}  // namespace lighthouse
