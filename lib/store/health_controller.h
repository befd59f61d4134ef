// HealthController — the store's health state for this process: the state
// recorded in `meta` (the truth every process obeys), the cached copy the
// appending threads refuse by, the triggers' evaluation with hysteresis (on
// the committer thread, once a window), manual emergencies, corruption met
// by this process, and the callbacks of each transition.
//
// It decides; it does not write. Its transitions are written through the
// `write` effect it is given (the write path's exclusive transaction, on the
// committer thread), and a state that changes the group bound is passed to
// the `bound_groups` effect.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "lighthouse/health.h"
#include "lighthouse/options.h"
#include "monitor/health_policy.h"
#include "monitor/sla_monitor.h"
#include "store/environment.h"
#include "store/schema.h"

namespace lighthouse {

class HealthController {
 public:
  struct Effects {
    // Writes `record` and the `$health.<to>` event of `transition` in one
    // write transaction; returns the event's ID. Throws what the write throws.
    std::function<std::string(const monitor::HealthRecord&, const HealthTransition&)> write;
    // The most events a group may hold from now on.
    std::function<void(std::size_t)> bound_groups;
    // Wall-clock nanoseconds (Options::clock or the system clock).
    std::function<std::uint64_t()> now_ns;
  };

  HealthController(const Environment& env, const Databases& dbs, const Options& options,
                   monitor::SlaMonitor* monitor, Effects effects);
  HealthController(const HealthController&) = delete;
  HealthController& operator=(const HealthController&) = delete;

  // At open: adopts the recorded state (and, in a process that writes, ends
  // a failure emergency whose process has ended).
  void start();

  // --- Any thread -----------------------------------------------------------
  // The state recorded in the store, with this process's own proposal.
  HealthStatus status() const;
  // Refuses an append of `priority` on the caller's thread when the state
  // does (Error(emergency) or Error(degraded)); cheap while healthy.
  void admit(Priority priority) const;
  void on_change(HealthCallback callback);
  // Corruption met by this process: a trigger until repair() or a clean
  // verify() clears it (only in a process that writes).
  void note_corruption(const std::string& detail) const;
  void clear_corruption() const;
  // The lag of this process's replicator (a trigger), or nothing once it stopped.
  struct ReplicationLag {
    std::string stream;
    std::uint64_t events = 0;
    double seconds = 0;
  };
  void note_replication_lag(std::optional<ReplicationLag> lag);
  HealthState cached_state() const noexcept { return static_cast<HealthState>(cache_.load(std::memory_order_relaxed)); }
  std::size_t group_bound(HealthState state) const;

  // --- Inside a write transaction -------------------------------------------
  // The state as every process on the store sees it in `txn` (decoded once
  // per change); remembered as the state in force.
  monitor::HealthRecord read_and_adopt(MDB_txn* txn) const;
  // The error for an append of `priority` under `record`, if it is refused.
  std::optional<Error> refusal(const monitor::HealthRecord& record, Priority priority) const;

  // --- Committer thread -----------------------------------------------------
  // One window of evaluation; never throws (logs instead).
  void tick() noexcept;
  HealthStatus evaluate();
  void enter_emergency(const std::string& reason);
  void clear_emergency();

 private:
  monitor::HealthRecord read_health(MDB_txn* txn) const;
  monitor::HealthRecord recorded() const;
  // The recorded state, or — when the store cannot be read any more (after
  // MDB_PANIC) — the state this process holds but could not record.
  monitor::HealthRecord current() const;
  void adopt(const monitor::HealthRecord& record) const;
  monitor::HealthRecord with_unrecorded(monitor::HealthRecord record) const;
  HealthStatus status_of(monitor::HealthRecord record) const;
  monitor::HealthInputs inputs();
  // Writes the transition (or holds it, when the store cannot write), then
  // logs it and calls the callbacks.
  void record_transition(const monitor::HealthRecord& from, HealthState to, const std::string& reason,
                         const std::map<std::string, double>& figures, bool manual, bool failure = false);
  void retry_unrecorded(const monitor::HealthRecord& stored);

  // Fixed after construction.
  const Environment& env_;
  const Databases& dbs_;
  const Options& options_;
  monitor::SlaMonitor* const monitor_;  // null when Options::monitor is off
  const Effects effects_;

  // The state this process last read, for refusing appends on the caller's
  // thread; changed together with the group bound, under adopt_mutex_.
  mutable std::atomic<std::uint8_t> cache_{0};
  mutable std::mutex adopt_mutex_;

  mutable std::mutex record_mutex_;  // guards the two below
  mutable std::string record_bytes_;  // the last `health` bytes read ...
  mutable monitor::HealthRecord record_;  // ... decoded

  mutable std::mutex mutex_;  // guards everything below
  monitor::Hysteresis hysteresis_{3, 10};
  monitor::Proposal proposal_;
  mutable std::string corruption_;
  std::optional<ReplicationLag> replication_lag_;
  // A transition this process could not write (its store failed): it holds
  // here, and status() reports it, until a later one is written.
  std::optional<monitor::HealthRecord> unrecorded_;
  HealthTransition unrecorded_transition_;
  std::vector<HealthCallback> callbacks_;
};

}  // namespace lighthouse
