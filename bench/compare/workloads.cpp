#include "workloads.h"

#include <algorithm>
#include <fstream>

namespace compare {

const char* to_string(Distribution d) { return d == Distribution::uniform ? "uniform" : "lifecycle"; }

EventStream::EventStream(Distribution distribution, std::uint64_t seed, std::uint64_t hot_every)
    : distribution_(distribution), rng_(seed), hot_every_(std::max<std::uint64_t>(1, hot_every)) {
  for (int i = 0; i < 64; ++i) {
    std::string p(256, '\0');
    for (auto& c : p) c = static_cast<char>('a' + rng_() % 26);
    payloads_.push_back(std::move(p));
  }
  for (int i = 0; i < 64; ++i) live_.push_back({next_aggregate_++, 5 + static_cast<int>(rng_() % 16)});
}

BenchEvent EventStream::next() {
  static const char* kTypes[] = {"OrderPlaced", "ItemAdded", "PaymentReceived", "OrderShipped",
                                 "StockMoved", "InvoiceSent", "RefundIssued", "OrderClosed"};
  BenchEvent e;
  e.type = kTypes[rng_() % 8];
  e.data = payloads_[rng_() % payloads_.size()];
  ++count_;
  if (distribution_ == Distribution::uniform) {
    e.aggregate = count_ % hot_every_ == 0 ? "hot" : "agg-" + std::to_string(rng_() % 10'000);
    return e;
  }
  Live& l = live_[rng_() % live_.size()];
  e.aggregate = "life-" + std::to_string(l.id);
  if (--l.remaining == 0) l = {next_aggregate_++, 5 + static_cast<int>(rng_() % 16)};
  return e;
}

std::uint64_t write_bytes() {
  std::ifstream io("/proc/self/io");
  std::string key;
  std::uint64_t value;
  while (io >> key >> value) {
    if (key == "write_bytes:") return value;
  }
  return 0;
}

std::uint64_t anonymous_rss() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("RssAnon:", 0) == 0) return std::stoull(line.substr(8)) * 1024;
  }
  return 0;
}

double median(std::vector<double> values) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  const std::size_t n = values.size();
  return n % 2 == 1 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
}

Percentiles percentiles(std::vector<double> samples) {
  if (samples.empty()) return {};
  std::sort(samples.begin(), samples.end());
  auto at = [&](double q) {
    return samples[std::min(samples.size() - 1, static_cast<std::size_t>(q * samples.size()))];
  };
  return {at(0.50), at(0.99)};
}

}  // namespace compare
