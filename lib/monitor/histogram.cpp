#include "monitor/histogram.h"

#include <algorithm>

namespace lighthouse::monitor {

void Histogram::add_to(Snapshot& s) const noexcept {
  for (int i = 0; i < kBuckets; ++i) {
    s.counts[static_cast<std::size_t>(i)] += counts_[static_cast<std::size_t>(i)].load(std::memory_order_relaxed);
  }
  s.count += count_.load(std::memory_order_relaxed);
  s.sum += sum_.load(std::memory_order_relaxed);
  s.max = std::max(s.max, max_.load(std::memory_order_relaxed));
}

void Histogram::Snapshot::add(const Snapshot& other) {
  for (std::size_t i = 0; i < counts.size(); ++i) counts[i] += other.counts[i];
  count += other.count;
  sum += other.sum;
  max = std::max(max, other.max);
}

double Histogram::Snapshot::quantile(double q) const {
  std::uint64_t total = 0;
  for (auto c : counts) total += c;
  if (total == 0) return 0;
  const auto rank = static_cast<std::uint64_t>(q * static_cast<double>(total - 1)) + 1;
  std::uint64_t seen = 0;
  for (int i = 0; i < kBuckets; ++i) {
    seen += counts[static_cast<std::size_t>(i)];
    if (seen >= rank) {
      double mid = static_cast<double>(lower(i)) + static_cast<double>(width(i) - 1) / 2.0;
      return std::min(mid, static_cast<double>(max));
    }
  }
  return static_cast<double>(max);
}

std::uint64_t Histogram::Snapshot::at_most(std::uint64_t ns) const {
  std::uint64_t n = 0;
  for (int i = 0; i < kBuckets; ++i) {
    if (lower(i) + width(i) - 1 > ns) break;
    n += counts[static_cast<std::size_t>(i)];
  }
  return n;
}

}  // namespace lighthouse::monitor
