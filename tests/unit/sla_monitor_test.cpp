#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

#include "monitor/sla_monitor.h"

using namespace lighthouse;
using namespace lighthouse::monitor;

namespace {
constexpr std::uint64_t kSecond = 1'000'000'000ull;
constexpr std::uint64_t kMs = 1'000'000ull;
}  // namespace

TEST_CASE("percentiles are within the stated error of exact ones on random data", "[sla]") {
  std::mt19937_64 rng(5);
  for (int round = 0; round < 5; ++round) {
    Histogram h;
    std::vector<std::uint64_t> values;
    std::lognormal_distribution<double> dist(12.0 + round, 1.5);  // ~0.1 ms .. seconds
    for (int i = 0; i < 20'000; ++i) {
      auto v = static_cast<std::uint64_t>(dist(rng)) + 1;
      values.push_back(v);
      h.record(v);
    }
    std::sort(values.begin(), values.end());
    Histogram::Snapshot s;
    h.add_to(s);
    for (double q : {0.5, 0.9, 0.99, 0.999}) {
      const auto rank = static_cast<std::size_t>(q * static_cast<double>(values.size() - 1));
      const double exact = static_cast<double>(values[rank]);
      INFO("q " << q << " exact " << exact << " estimate " << s.quantile(q));
      CHECK(std::abs(s.quantile(q) - exact) <= 0.032 * exact);
    }
    CHECK(s.max == values.back());
    CHECK(s.count == values.size());
  }
}

TEST_CASE("windows roll with the clock", "[sla]") {
  std::uint64_t now = 1000 * kSecond;
  SlaMonitor m({}, [&] { return now; });
  for (int i = 0; i < 100; ++i) m.record_append(2 * kMs);
  m.record_group(1 * kMs, 3 * kMs, 100, 25'600);
  auto r = m.report();
  REQUIRE(r.windows.size() == 3);
  CHECK(r.windows[0].append.count == 100);
  CHECK(r.windows[0].events == 100);
  CHECK(std::abs(r.windows[0].append.p50 - 0.002) < 0.002 * 0.032);
  now += 11 * kSecond;  // out of the 10 s window, still in the 60 s one
  m.record_append(5 * kMs);
  r = m.report();
  CHECK(r.windows[0].append.count == 1);
  CHECK(r.windows[1].append.count == 101);
  CHECK(r.windows[2].append.count == 101);
  now += 70 * kSecond;  // out of both
  r = m.report();
  CHECK(r.windows[0].append.count == 0);
  CHECK(r.windows[1].append.count == 0);
  CHECK(r.windows[2].append.count == 101);  // since open
  CHECK(r.windows[2].events == 100);
}

TEST_CASE("latency over the target is a breach, reported to callbacks once", "[sla]") {
  std::uint64_t now = 5 * kSecond;
  SlaMonitor m({}, [&] { return now; });
  std::vector<SlaBreach> seen;
  m.on_breach([&](const SlaBreach& b) { seen.push_back(b); });
  for (int i = 0; i < 200; ++i) m.record_append(i % 50 == 0 ? 40 * kMs : 1 * kMs);  // p99 = 40 ms
  auto r = m.report();
  REQUIRE(r.breaches.size() == 1);
  CHECK(r.breaches[0].kind == "append_latency");
  CHECK(seen.size() == 1);
  m.report();
  CHECK(seen.size() == 1);  // still in force: not reported again
  now += 20 * kSecond;       // the slow appends leave the window
  for (int i = 0; i < 200; ++i) m.record_append(1 * kMs);
  CHECK(m.report().breaches.empty());
}

TEST_CASE("too few appends are not judged", "[sla]") {
  std::uint64_t now = 5 * kSecond;
  SlaMonitor m({}, [&] { return now; });
  for (int i = 0; i < 10; ++i) m.record_append(500 * kMs);
  CHECK(m.report().breaches.empty());
}

TEST_CASE("a low offered rate is no breach; a growing backlog is", "[sla]") {
  std::uint64_t now = 5 * kSecond;
  SlaMonitor m({}, [&] { return now; });
  // One synchronous caller: 300 appends/s, each fast, backlog 0 or 1.
  for (int s = 0; s < 10; ++s) {
    for (int i = 0; i < 300; ++i) m.record_append(3 * kMs);
    m.record_group(1 * kMs, 2 * kMs, 300, 300 * 256);
    m.sample_backlog(s % 2, kMs);
    now += kSecond;
  }
  auto r = m.report();
  CHECK(r.windows[0].events_per_second < 10'000);
  CHECK(r.breaches.empty());
  // Offered load the store does not keep up with: the backlog grows.
  for (int s = 0; s < 7; ++s) {
    m.sample_backlog(1000 * (s + 1), (s + 1) * 200 * kMs);
    now += kSecond;
  }
  r = m.report();
  REQUIRE(r.breaches.size() == 1);
  CHECK(r.breaches[0].kind == "backlog");
  CHECK(r.backlog == 7000);
}

// Slots are allocated when their period first records: a fresh monitor has
// none, and a window must count exactly the slots it spans as they are made
// and then recycled.
TEST_CASE("a fresh monitor reports empty windows; windows count each second they span", "[sla]") {
  std::uint64_t now = 1000 * kSecond;
  SlaMonitor m({}, [&] { return now; });
  auto r = m.report();
  REQUIRE(r.windows.size() == 3);
  for (const auto& w : r.windows) CHECK(w.append.count == 0);
  CHECK(m.evaluate().append.count == 0);
  // 75 seconds: both rings recycle their slots (the 60 s window counts the
  // six 10-second periods up to the current one).
  for (int second = 0; second < 75; ++second) {
    for (int i = 0; i <= second; ++i) m.record_append(1 * kMs);  // second s holds s + 1 appends
    r = m.report();
    std::uint64_t ten = 0, sixty = 0;
    const int period = (1000 + second) / 10;
    for (int s = 0; s <= second; ++s) {
      if (s > second - 10) ten += static_cast<std::uint64_t>(s + 1);
      if ((1000 + s) / 10 > period - 6) sixty += static_cast<std::uint64_t>(s + 1);
    }
    INFO("second " << second);
    CHECK(r.windows[0].append.count == ten);
    CHECK(m.evaluate().append.count == ten);
    CHECK(r.windows[1].append.count == sixty);
    CHECK(r.windows[2].append.count == static_cast<std::uint64_t>((second + 1) * (second + 2) / 2));
    now += kSecond;
  }
}
