// ReplicationGate — quorum replication (docs/replication.md, "Quorum mode").
//
// A store is in quorum mode while its `meta` holds the replication
// high-water mark (schema::meta::kHighWater): the last sequence its stream
// acknowledged, as a replicator in quorum mode stored it. Then
//   - an append of this process completes only once the mark reaches its
//     last event, or fails with Error(replication_pending) after
//     Options::quorum_timeout_seconds (its events stay: durable here, and
//     replicated later);
//   - the store's readers (queries, aggregate reads, get, subscriptions)
//     see events up to the mark only.
// The mark comes from a replicator in this process (attach/advance: as each
// acknowledgement arrives), or else from `meta`, read by every group's
// write transaction and, while appends wait, polled every 2 ms (a
// replicator in another process stores it every 10 ms while it moves).
//
// Thread safety: safe for concurrent use. Held appends are completed on the
// replicator's thread (advance) or on the gate's own thread (timeouts,
// polling), which runs only while appends wait.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "store/committer.h"
#include "store/environment.h"
#include "store/schema.h"

namespace lighthouse {

class ReplicationGate {
 public:
  // `advanced` runs whenever the mark moves (the subscriptions look again).
  ReplicationGate(const Environment& env, const Databases& dbs, const Options& options, std::function<void()> advanced);
  ~ReplicationGate();  // stop()
  ReplicationGate(const ReplicationGate&) = delete;
  ReplicationGate& operator=(const ReplicationGate&) = delete;

  // A replicator of this process in quorum mode: it moves the mark
  // (advance) and is woken (`wake`) when an append waits for it.
  void attach(std::uint64_t mark, std::function<void()> wake);
  // The replicator stopped: the mark is read from `meta` again.
  void detach() noexcept;
  // The stream acknowledged everything up to `mark`: the appends it covers
  // complete. Never moves the mark back.
  void advance(std::uint64_t mark);

  // The newest mark this process knows of (0: none yet).
  std::uint64_t mark() const noexcept { return mark_.load(std::memory_order_acquire); }

  // Reads: the last sequence a reader in `txn` may see, or nothing when the
  // store is not in quorum mode or the thread reads past the mark.
  std::optional<std::uint64_t> read_cap(MDB_txn* txn) const;
  // Reads of the calling thread see every event from now on, past the mark:
  // the replicator's (it must read what it has yet to publish).
  static void read_past_mark() noexcept;

  // The committer, in a group's write transaction: whether the store is in
  // quorum mode (the mark in `meta` is adopted as it is read).
  bool quorum_mode(MDB_txn* txn);
  // The committer, for a committed request of a group written in quorum
  // mode: completes it now if the mark covers its events, or holds it until
  // it does, until its deadline, or until stop().
  void complete_or_hold(AppendRequest& request, std::vector<AppendResult>& results);

  // Fails every held append (replication_pending: the store closed) and
  // ends the gate's thread. Idempotent.
  void stop() noexcept;

  // Appends waiting now.
  std::size_t held() const;

 private:
  struct Held {
    std::chrono::steady_clock::time_point deadline;
    bool one_batch = true;
    std::optional<std::promise<AppendResult>> single;
    std::optional<std::promise<std::vector<AppendResult>>> several;
    std::vector<AppendResult> results;
    std::uint64_t first = 0, last = 0;  // the first and last sequence of its events
  };
  static void release(Held& held);
  void fail(Held& held, const std::string& why);
  // Completes what `mark` covers; the caller holds mutex_.
  void release_up_to(std::uint64_t mark, std::vector<Held>& done);
  void run();
  std::optional<std::uint64_t> read_meta_mark() const;
  bool raise_mark(std::uint64_t mark);

  const Environment& env_;
  const Databases& dbs_;
  const Options& options_;
  const std::function<void()> advanced_;

  std::atomic<std::uint64_t> mark_{0};
  mutable std::mutex mutex_;  // guards everything below
  std::condition_variable changed_;
  std::multimap<std::uint64_t, Held> held_;  // by last sequence
  std::function<void()> wake_;               // set while a replicator is attached
  bool attached_ = false;
  bool stopping_ = false;
  std::thread thread_;  // from the first hold
};

}  // namespace lighthouse
