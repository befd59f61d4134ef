// SlaMonitor: the timings of a store, in sliding windows (10 s of 1-second
// slots, 60 s of 10-second slots) and since open, checked against targets.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "lighthouse/sla.h"
#include "monitor/histogram.h"

namespace lighthouse::monitor {

// The measurements of one slot (or of the time since open).
struct Measures {
  Histogram append, queue_wait, transaction, commit, query, group_events;
  std::atomic<std::uint64_t> events{0}, bytes{0}, transactions{0}, queries{0}, query_results{0};
  void clear() noexcept;
};

struct MeasuresSnapshot {
  Histogram::Snapshot append, queue_wait, transaction, commit, query, group_events;
  std::uint64_t events = 0, bytes = 0, transactions = 0, queries = 0, query_results = 0;
  void add(const Measures& m);
};

class SlaMonitor {
 public:
  using NowNs = std::function<std::uint64_t()>;  // a monotonic clock, nanoseconds
  SlaMonitor(SlaTargets targets, NowNs now);
  ~SlaMonitor();
  SlaMonitor(const SlaMonitor&) = delete;
  SlaMonitor& operator=(const SlaMonitor&) = delete;

  void record_append(std::uint64_t latency_ns) noexcept;
  void record_queue_wait(std::uint64_t ns) noexcept;
  void record_group(std::uint64_t transaction_ns, std::uint64_t commit_ns, std::uint64_t events,
                    std::uint64_t bytes) noexcept;
  void record_query(std::uint64_t ns, std::uint64_t results) noexcept;
  // The committer's backlog, sampled when it takes a group or goes idle.
  void sample_backlog(std::uint64_t queued, std::uint64_t oldest_age_ns);

  // Windows, backlog and the breaches in force; calls the breach callbacks
  // (and logs) for breaches that begin.
  SlaReport report();
  // Only looks for breaches (reads the 10 s append histogram alone): what the
  // committer calls once a second, and the health evaluation each window.
  struct Evaluation {
    LatencySummary append;  // the last 10 s
    std::vector<SlaBreach> breaches;
  };
  Evaluation evaluate();
  const SlaTargets& targets() const noexcept { return targets_; }
  void on_breach(SlaBreachCallback callback);

  // Since-open measures, for the Prometheus exposition.
  MeasuresSnapshot since_open() const;
  std::uint64_t errors(const std::string& code) const;
  void record_error(const std::string& code);
  std::map<std::string, std::uint64_t> error_counts() const;
  std::uint64_t now() const { return now_(); }

 private:
  struct Slot {
    std::atomic<std::uint64_t> epoch{~std::uint64_t{0}};
    Measures m;
  };
  // A slot's histograms take 66 KiB: each is allocated when its period
  // first records something, so that opening a store (or a short-lived
  // process that only reads) does not zero a megabyte it may never use.
  struct Ring {
    Ring(std::uint64_t period_ns, std::size_t count) : slot_ns(period_ns), slots(count) {}
    ~Ring();
    std::uint64_t slot_ns;
    std::vector<std::atomic<Slot*>> slots;  // null until first used; owned
  };
  template <typename F>
  void each(F&& record) noexcept;
  // Null only when the slot could not be allocated (the record is dropped
  // from the windows, still counted since open).
  Measures* slot(Ring& ring, std::uint64_t t) noexcept;
  MeasuresSnapshot window(const Ring& ring, std::uint64_t t) const;
  // Decides the breaches from the recent append latencies and the backlog,
  // and notifies the ones that begin.
  std::vector<SlaBreach> breaches(const LatencySummary& recent_append, double recent_seconds,
                                  double recent_rate, std::uint64_t t);

  SlaTargets targets_;
  NowNs now_;
  std::uint64_t opened_ns_;
  Ring ten_{1'000'000'000ull, 10};
  Ring sixty_{10'000'000'000ull, 6};
  Measures total_;
  std::mutex rotate_mutex_;

  mutable std::mutex mutex_;  // below: backlog samples, breaches, callbacks, errors
  std::vector<std::pair<std::uint64_t, std::uint64_t>> backlog_;  // (time, queued)
  std::uint64_t backlog_now_ = 0, backlog_oldest_ns_ = 0;
  std::vector<std::string> active_;
  std::map<std::string, std::uint64_t> last_logged_;
  std::vector<SlaBreachCallback> callbacks_;
  std::map<std::string, std::uint64_t> errors_;
};

LatencySummary summarize(const Histogram::Snapshot& s);

}  // namespace lighthouse::monitor
