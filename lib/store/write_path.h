// WritePath — every write of a store that can write: appends are validated
// and admitted on the caller's thread, queued for the Committer, and
// committed in groups (write, commit-or-grow, measure, complete); the
// store's exclusive tasks (repair, import, truncation, checkpoints, health
// writes) run alone on the committer thread, between groups.
//
// Thread safety: submit() and run_exclusive() from any thread; the rest of
// the write work happens on the committer thread only.
#pragma once

#include <atomic>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lighthouse/store.h"
#include "monitor/health_policy.h"
#include "monitor/sla_monitor.h"
#include "store/committer.h"
#include "store/environment.h"
#include "store/health_controller.h"
#include "store/replication_gate.h"
#include "store/schema.h"

namespace lighthouse {

// The work the committer runs alone, by name.
enum class ExclusiveTask { repair, import, truncation, checkpoint, health, replication };
const char* to_string(ExclusiveTask task) noexcept;

class WritePath {
 public:
  // `committed` is called after every commit that wrote events (appends,
  // health events, imports): the subscriptions of this process look again.
  WritePath(Environment& env, const Databases& dbs, const Options& options, std::uint32_t node_id,
            monitor::SlaMonitor* monitor, HealthController& health, ReplicationGate& gate,
            std::function<void()> committed);
  ~WritePath();  // stop()
  // Starts the committer thread: appends and exclusive tasks are taken from
  // then on (the store's opening writes before it, on its own thread).
  void start();
  WritePath(const WritePath&) = delete;
  WritePath& operator=(const WritePath&) = delete;

  // Validates one batch (or several, all or nothing) and queues it; the
  // future completes once it is durable or has failed. Validation and
  // admission errors are thrown here.
  std::future<AppendResult> submit(Batch batch, bool allow_reserved);
  std::future<std::vector<AppendResult>> submit(std::vector<Batch> batches, bool allow_reserved);

  // Runs `work` on the committer thread, alone, and waits for it. Refused
  // after a failure unless `even_if_failed`.
  void run_exclusive(ExclusiveTask task, std::function<void()> work, bool even_if_failed = false);
  // Inside an exclusive task: `body` in a write transaction (the map grows
  // when full), then the subscriptions are told.
  void write_exclusive(const std::function<void(MDB_txn*)>& body);
  // Throws Error(corruption) while the store carries the damage mark
  // (store/damage_mark.h): for writes that would otherwise hold only in
  // this process, such as a manual emergency.
  void refuse_if_damaged() const;
  // Inside an exclusive task: a `$health.<to>` event and the state, in one
  // transaction. Returns the event's ID.
  std::string write_health(const monitor::HealthRecord& record, const HealthTransition& transition);

  // Commits what is queued, then ends the committer; persists the SLA
  // report of a process that appended. Idempotent.
  void stop() noexcept;

  // Throws Error(invalid_argument) on the committer thread (from a callback
  // the store runs there): `what` would wait for the committer, for itself.
  void refuse_on_committer_thread(const char* what) const;
  bool on_committer_thread() const noexcept { return committer_ && committer_->on_committer_thread(); }
  void bound_group_events(std::size_t events) {
    if (committer_) committer_->bound_group_events(events);
  }
  std::size_t backlog() const { return committer_ ? committer_->backlog() : 0; }
  std::uint64_t commits() const noexcept { return commits_.load(std::memory_order_relaxed); }

 private:
  // What one group's transaction came to.
  struct GroupOutcome {
    std::vector<std::exception_ptr> errors;  // per request
    std::exception_ptr group_error;          // the whole transaction failed
    std::uint64_t transaction_ns = 0, commit_ns = 0;
    tracing::SpanContext commit_span;  // valid when the commit was traced
    std::chrono::steady_clock::time_point taken;  // when the committer took the group
    bool quorum = false;               // the store is in quorum mode: appends wait for the stream
  };
  // Tracing (only with Options::tracing.sink): the append span, and the
  // trace context it gives the events; the commit span of a group that
  // carries a sampled append.
  void start_append_span(AppendRequest& request, std::string_view operation);
  tracing::Span start_commit_span(const std::vector<std::unique_ptr<AppendRequest>>& group);
  // Events (not replayed) and bytes of the requests a group committed.
  struct GroupTotals {
    std::uint64_t events = 0, bytes = 0;
  };
  GroupTotals committed_totals(const std::vector<std::unique_ptr<AppendRequest>>& group,
                               const GroupOutcome& out) const;
  void end_commit_span(tracing::Span& span, const std::vector<std::unique_ptr<AppendRequest>>& group,
                       GroupOutcome& out);
  // What an append's span reports, recorded in the request as the committer
  // completes it (the span itself ends when the request is freed).
  static void record_span_outcome(AppendRequest& request, const std::vector<AppendResult>* results,
                                  const std::exception_ptr& error, const GroupOutcome& out, std::uint64_t end_ns);
  void enqueue(std::unique_ptr<AppendRequest> request);
  void commit_group(std::vector<std::unique_ptr<AppendRequest>>& group);
  // Writes every request of the group into one transaction and commits it,
  // growing the map and trying again when it is full.
  void write_group(std::vector<std::unique_ptr<AppendRequest>>& group, GroupOutcome& out);
  // Writes the group's requests into `txn`; returns whether it must commit.
  bool write_requests(MDB_txn* txn, std::vector<std::unique_ptr<AppendRequest>>& group, GroupOutcome& out);
  // Writes a request of several batches all or nothing, in a nested transaction.
  void write_several(MDB_txn* txn, class WriteTxn& write, AppendRequest& request, std::size_t index,
                     GroupOutcome& out);
  void measure(const std::vector<std::unique_ptr<AppendRequest>>& group, const GroupOutcome& out);
  void complete(std::vector<std::unique_ptr<AppendRequest>>& group, const GroupOutcome& out);
  void persist_sla(MDB_txn* txn);
  std::uint64_t now_ns() const;

  // Fixed after construction.
  Environment& env_;
  const Databases& dbs_;
  const Options& options_;
  const std::uint32_t node_id_;
  monitor::SlaMonitor* const monitor_;  // null when Options::monitor is off
  HealthController& health_;
  ReplicationGate& gate_;
  const std::function<void()> committed_;

  std::atomic<std::uint64_t> commits_{0};
  std::atomic<bool> appended_{false};  // this process committed an append group

  // Committer thread only.
  std::optional<std::uint64_t> last_persist_ns_;  // the monitor's clock
  std::uint64_t last_evaluation_ns_ = 0;
  // Per request of the group being committed: kept between groups so that
  // their buffers are reused, not allocated per request.
  std::vector<std::vector<AppendResult>> group_results_;

  std::unique_ptr<Committer> committer_;  // from start(); last: its thread uses the above
};

}  // namespace lighthouse
