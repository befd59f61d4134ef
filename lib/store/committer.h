// Committer — group commit. LMDB has one writer and a durable commit costs
// two syncs, so appends from every thread queue here and one thread takes
// what is queued into one write transaction and one sync, then completes
// every caller. A request that fails (conflict, idempotency, corruption met
// while checking it) fails alone; the others in its group commit.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <future>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "codec/record.h"
#include "lighthouse/store.h"
#include "lighthouse/tracing.h"

namespace lighthouse {

// One caller's request: one or more batches, all or nothing.
struct AppendRequest {
  std::vector<Batch> batches;
  // Every event's content hashes, batch after batch, computed in the
  // caller's thread before the request is queued.
  std::vector<codec::ContentHashes> hashes;
  bool allow_reserved = false;
  std::size_t events = 0;
  std::size_t bytes = 0;
  std::chrono::steady_clock::time_point enqueued;
  Priority priority = Priority::normal;  // the lowest of its batches'
  // The append's span (empty without a tracing sink): started on the
  // caller's thread. The committer only records what the span reports
  // (`span_outcome`, a few words in the request it has in hand) as it
  // completes the request; the span is described and ended when the request
  // is freed (~AppendRequest) — by the next submit()'s thread or by the
  // committer once nothing is queued, off its path; at the latest by stop().
  tracing::Span span;
  struct SpanOutcome {
    std::uint64_t end_ns = 0;
    std::int64_t queue_ns = 0;
    tracing::SpanContext commit;  // the group's commit span, when traced
    std::exception_ptr error;     // null: the request committed
    std::int64_t events = 0;
    std::optional<std::uint64_t> first_sequence;
    bool replayed = false;
  };
  std::optional<SpanOutcome> span_outcome;
  // The span's context, which the events without one of their own carry:
  // its text (hashed with each event) and its 25 stored bytes (written into
  // each record), both made once from the span's context.
  std::optional<TraceContext> trace_context;
  char traceparent_bytes[codec::kTraceparentBytes];
  codec::TraceStamp stamp() const noexcept {
    return trace_context ? codec::TraceStamp{&*trace_context, traceparent_bytes} : codec::TraceStamp{};
  }
  std::string_view operation;        // the span's db.operation.name (a literal)
  // A one-event append's aggregate, for its span: copied on the caller's
  // thread, so that the committer, describing the span after the group's
  // commit, does not reach into the events again (by then out of its cache).
  std::string span_aggregate;
  // Completed once, from the committer thread: `single` for requests of one
  // batch (append, append_batch), `several` for append_batches.
  // Only the promise a request uses is made (each allocates its shared state).
  bool one_batch = true;
  std::optional<std::promise<AppendResult>> single;
  std::optional<std::promise<std::vector<AppendResult>>> several;
  // Set instead of batches: work that must run alone in the committer thread
  // (repair), with no append of this process in between.
  std::function<void()> task;
  std::optional<std::promise<void>> task_done;

  AppendRequest() = default;
  AppendRequest(const AppendRequest&) = delete;
  AppendRequest& operator=(const AppendRequest&) = delete;
  ~AppendRequest();  // ends the span from span_outcome (write_path.cpp)

  void complete(std::vector<AppendResult>* results, std::exception_ptr error) {
    if (one_batch) {
      if (error) single->set_exception(error);
      else single->set_value(std::move(results->front()));
    } else {
      if (error) several->set_exception(error);
      else several->set_value(std::move(*results));
    }
  }
};

struct CommitterLimits {
  std::size_t max_group_events = 0;
  std::size_t max_group_bytes = 0;
};

class Committer {
 public:
  // `commit_group` runs one group in one transaction and returns, per
  // request, its results or its error; it throws only for a failure of the
  // whole transaction, which then fails every request of the group.
  using CommitGroup = std::function<void(std::vector<std::unique_ptr<AppendRequest>>&)>;

  // `observe` is called with the backlog (requests left queued, age of the
  // oldest) each time the committer takes a group.
  using ObserveBacklog = std::function<void(std::size_t, std::uint64_t)>;
  // `tick`, when given, runs in the committer thread once per
  // `tick_interval` (also while idle), between groups.
  using Tick = std::function<void()>;
  Committer(CommitterLimits limits, CommitGroup commit_group, ObserveBacklog observe = {},
            Tick tick = {}, std::chrono::nanoseconds tick_interval = {});
  ~Committer();  // stop()
  Committer(const Committer&) = delete;
  Committer& operator=(const Committer&) = delete;

  // Queues `request`. Throws Error(closed) once stop() has begun.
  void submit(std::unique_ptr<AppendRequest> request);

  // Commits everything already queued, then ends the thread. Later submits
  // are refused. Idempotent.
  void stop() noexcept;

  // The number of queued requests and the age of the oldest.
  std::size_t backlog() const;

  // Bounds later groups to `events` (the configured bound when larger).
  void bound_group_events(std::size_t events);

  // True on the committer's own thread (where store callbacks run): a wait
  // for the committer there would wait for itself.
  bool on_committer_thread() const noexcept { return std::this_thread::get_id() == thread_id_.load(); }

 private:
  void run();

  CommitterLimits limits_;
  CommitGroup commit_group_;
  ObserveBacklog observe_;
  Tick tick_;
  std::chrono::nanoseconds tick_interval_;
  std::size_t configured_max_events_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::unique_ptr<AppendRequest>> queue_;
  std::atomic<std::size_t> queued_{0};  // queue_.size(), read unlocked while the committer frees
  // Completed requests, freed by the next submit() on its caller's thread
  // (which allocated most of them) or by the committer before it sleeps:
  // freeing a group of thousands, and ending their append spans, is then
  // off the committer's critical path. stop() frees what is left.
  std::vector<std::unique_ptr<AppendRequest>> retired_;
  bool stopping_ = false;
  // The thread's id, set by the thread itself: readable while another thread
  // joins thread_ (whose own id that join clears).
  std::atomic<std::thread::id> thread_id_{};
  std::thread thread_;
};

}  // namespace lighthouse
