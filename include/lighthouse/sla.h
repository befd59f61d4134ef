// The SLA monitor: timings of every write transaction, append and query, in
// sliding windows, checked against targets. By default the store is held to
// an append p99 under 10 ms and sized for 10,000 events/s: a breach is
// latency over the target, or a backlog that grows while that much or less
// is offered — never a low rate when little is offered.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace lighthouse {

struct SlaTargets {
  // An append (call to durable acknowledgement) should take at most this at
  // the 99th percentile.
  double append_p99_seconds = 0.010;
  // The capacity the store is sized for; reported, and used to judge a
  // growing backlog. A low rate alone is never a breach.
  double capacity_events_per_second = 10'000;
  // Fewer appends than this in a window are too few to judge latency by.
  std::uint64_t min_samples = 50;
};

// Percentiles are within 3.2 % of the exact value (log-linear buckets, 32
// per power of two). Seconds.
struct LatencySummary {
  std::uint64_t count = 0;
  double p50 = 0, p90 = 0, p99 = 0, p999 = 0, max = 0;
};

struct SlaWindow {
  double seconds = 0;  // 10, 60, or the time since open
  LatencySummary append;       // call to durable acknowledgement
  LatencySummary queue_wait;   // queued before the committer took it
  LatencySummary transaction;  // inside the write transaction, before commit
  LatencySummary commit;       // mdb_txn_commit, with its syncs
  LatencySummary query;        // query() planning and its cursor's chunks
  std::uint64_t events = 0, bytes = 0, transactions = 0, queries = 0;
  std::uint64_t query_results = 0;  // events the queries returned
  double events_per_second = 0;
};

struct SlaBreach {
  std::string kind;    // "append_latency" or "backlog"
  std::string detail;  // the figures that caused it
};

struct SlaReport {
  std::vector<SlaWindow> windows;  // 10 s, 60 s, since open
  std::uint64_t backlog = 0;       // appends queued now
  double backlog_oldest_seconds = 0;
  std::vector<SlaBreach> breaches;  // in force now
  SlaTargets targets;
  std::uint64_t written_ns = 0;  // when this report was made (persisted reports: when stored)
  std::int64_t pid = 0;          // the process that made it
};

using SlaBreachCallback = std::function<void(const SlaBreach&)>;

}  // namespace lighthouse
