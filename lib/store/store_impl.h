// Store::Impl — one open LMDB environment, shared by every Store handle of
// this process that opened the same path.
#pragma once

#include <lmdb.h>

#include <atomic>
#include <filesystem>
#include <memory>
#include <mutex>
#include <set>
#include <optional>
#include <shared_mutex>
#include <string>
#include <vector>

#include "lighthouse/store.h"
#include "lmdb/lmdb.h"
#include "monitor/health.h"
#include "monitor/sla_monitor.h"
#include "store/committer.h"

namespace lighthouse {

struct StoreAccess {
  static Store::Impl& impl(const Store& store) { return *store.impl_; }
};

struct Databases {
  MDB_dbi events = 0;
  MDB_dbi by_type = 0;
  MDB_dbi by_aggregate = 0;
  MDB_dbi aggregate_heads = 0;
  MDB_dbi by_idempotency_key = 0;
  MDB_dbi meta = 0;
};

// The state the write path derives inside each write transaction.
struct WriteState {
  std::uint64_t last_sequence = 0;
  std::uint64_t last_timestamp_ns = 0;
  Sha256 last_chain{};
  std::uint64_t aggregate_count = 0;
};

class Store::Impl {
 public:
  // Opens the store at `path` or returns the one this process already has
  // open (the per-process registry).
  static std::shared_ptr<Impl> open(const std::filesystem::path& path, const Options& options);

  Impl(std::filesystem::path canonical_path, const Options& options);
  ~Impl();
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Closes the environment and leaves the registry; later calls raise
  // Error(closed).
  void shutdown() noexcept;

  // Validates one batch and queues it for the committer; the future
  // completes once it is durable or has failed.
  std::future<AppendResult> submit(Batch batch, bool allow_reserved);
  // Several batches as one all-or-nothing request.
  std::future<std::vector<AppendResult>> submit(std::vector<Batch> batches, bool allow_reserved);

  RecordedEvent get(const EventId& id) const;

  // Import: marks the store as being imported into (synced), writes events
  // as they are (IDs, checksums, chain), and clears the mark. Each runs in
  // the committer thread with no append in between.
  void begin_import();
  void import_events(const std::vector<RecordedEvent>& events);
  void end_import();

  // truncate_before(): drops the events from the base to `to_sequence` in
  // one write transaction and records the new base.
  void drop_events(std::uint64_t to_sequence, const std::string& archive);

  // Runs `body` in a write transaction and commits it; when the map is full,
  // aborts, grows the map and runs `body` again. For the committer thread.
  void with_write_txn(const std::function<void(MDB_txn*)>& body);

  // Runs `task` in the committer thread, alone, and waits for it.
  void run_exclusive(std::function<void()> task, bool even_if_failed = false);
  // Throws Error(invalid_argument) when called on the committer thread, from
  // a callback the store runs there (on_sla_breach, on_health_change): `what`
  // would wait for the committer, that is for itself.
  void refuse_on_committer_thread(const char* what) const;
  bool on_committer_thread() const noexcept;
  // repair(): rebuilds the secondary indexes and counters in one write transaction.
  void rebuild_indexes(RepairReport& report);
  StoreStats stats() const;

  const std::filesystem::path& path() const noexcept { return path_; }
  const Options& options() const noexcept { return options_; }
  bool env_read_only() const noexcept { return options_.read_only; }

  // Health (lib/store/health.cpp).
  HealthStatus health() const;
  void enter_emergency(const std::string& reason);
  void clear_emergency();
  HealthStatus evaluate_health();
  void on_health_change(HealthCallback callback);
  // Corruption met by this process: a health trigger until repair() or a
  // clean verify() clears it (only in a process that writes).
  void note_corruption(const std::string& detail) const;

  // Subscriptions (lib/store/subscription.cpp).
  void register_subscription(const std::shared_ptr<Subscription::State>& state);
  // One live subscription per consumer name in this process: claim throws
  // Error(invalid_argument) when the name is taken.
  void claim_consumer(const std::string& consumer);
  void release_consumer(const std::string& consumer) noexcept;
  void notify_subscribers();
  void stop_subscriptions() noexcept;
  // Stores a consumer's checkpoint (in the committer thread).
  // `caller_given`: the position comes from the host (set_checkpoint), and
  // must not be past the last event appended (its consumer would then skip
  // the events appended up to it).
  void write_checkpoint(const std::string& consumer, const EventId& position, bool caller_given = false);
  // Stores a named, auto-checkpointing subscription's position when it
  // moved since its last checkpoint; returns whether it wrote.
  bool store_checkpoint(Subscription::State& state);
  std::optional<EventId> last_event_id() const;
  std::optional<EventId> last_event_id(MDB_txn* txn) const;  // in that transaction
  // Prometheus lines: running subscriptions and each one's lag.
  std::string subscription_metrics(Store& store);
  void clear_corruption() const;

 private:
  friend class Store;
  friend class Subscription;
  friend struct MonitorAccess;
  friend class EventCursor;
  friend class EventCursor::Impl;

  // A read transaction, holding the map lock shared while it lives.
  struct ReadTxn {
    std::shared_lock<std::shared_mutex> map;
    lmdb::Txn txn;
  };
  std::unique_ptr<ReadTxn> begin_read() const;
  // The write transaction of the committer, holding the map lock shared
  // while it lives (no other thread of this process may resize meanwhile).
  class WriteHandle {
   public:
    WriteHandle(std::shared_lock<std::shared_mutex> map, MDB_txn* txn) : map_(std::move(map)), txn_(txn) {}
    MDB_txn* get() const noexcept { return txn_.get(); }
    void commit() { txn_.commit(); }

   private:
    std::shared_lock<std::shared_mutex> map_;
    lmdb::Txn txn_;  // destroyed (aborted) before the lock is released
  };
  std::unique_ptr<WriteHandle> begin_write();
  // Adopts a map grown by another process (MDB_MAP_RESIZED).
  void adopt_map_size() const;
  // Doubles the map after MDB_MAP_FULL; no transaction of this process is active.
  void grow_map();

  void commit_group(std::vector<std::unique_ptr<AppendRequest>>& group);
  std::uint64_t map_used_bytes() const;
  void enqueue(std::unique_ptr<AppendRequest> request);
  void record_failure(const std::string& reason);
  std::string failure() const;
 public:
  // Throws Error(read_only) iff the store, or the handle asking
  // (`handle_read_only`), may not write.
  void refuse_read_only(bool handle_read_only) const;
  // The error every write gets once an I/O error or MDB_PANIC made the store
  // refuse writes; nothing while it is healthy.
  std::optional<Error> failed_error() const;
 private:

  // Held shared by every operation, exclusively by shutdown().
  std::shared_lock<std::shared_mutex> use() const;
  void open_databases();
  void check_file_size();
  void check_invariants(MDB_txn* txn);
  std::uint64_t now_ns() const;

  std::filesystem::path path_;
  Options options_;
  lmdb::Env env_;
  Databases dbs_;
  std::uint32_t node_id_ = 0;
  std::uint32_t format_version_ = 0;

  mutable std::shared_mutex lifecycle_;
  // Written under lifecycle_; atomic so that cursors can check it per event
  // without taking the lock.
  std::atomic<bool> closed_{false};

  // Held shared by every transaction of this process, exclusively while the
  // map is resized (LMDB requires that no transaction is active then).
  mutable std::shared_mutex map_lock_;

  mutable std::mutex failure_mutex_;
  std::string failure_;  // why the store refuses writes, once it does

  std::atomic<std::uint64_t> commits_{0};
  std::atomic<bool> appended_{false};  // this process committed an append group
  std::unique_ptr<monitor::SlaMonitor> monitor_;  // null when Options::monitor is off
  std::optional<std::uint64_t> last_persist_ns_;  // committer thread only (monitor clock)
  std::uint64_t last_evaluation_ns_ = 0;          // committer thread only
  // Per request of the group being committed (committer thread only): kept
  // between groups so that their buffers are reused, not allocated per request.
  std::vector<std::vector<AppendResult>> group_results_;
  void persist_sla(MDB_txn* txn);
  std::unique_ptr<Committer> committer_;  // null when read-only

  // Health. The state in `meta` is the truth; `health_cache_` is the state
  // this process last read, for refusing appends on the caller's thread.
  monitor::HealthRecord read_health(MDB_txn* txn) const;
  // The state recorded in the store (a read transaction).
  monitor::HealthRecord recorded_health() const;
  monitor::HealthRecord current_health() const;
  // The most events a group may hold in `state`.
  std::size_t group_bound(HealthState state) const;
  // Caller's thread: refuses `request` when the store's state does.
  void admit(const AppendRequest& request) const;
  // The error for `request` under `record`, if it is refused.
  std::optional<Error> refusal(const monitor::HealthRecord& record, Priority priority) const;
  // Remembers `record` as the state in force (cache, group bound).
  void adopt_health(const monitor::HealthRecord& record) const;
  // Committer thread: one window of evaluation.
  void health_tick() noexcept;
  HealthStatus evaluate_health_in_committer();
  // `record` as the status this process reports (with its own proposal).
  HealthStatus status_of(monitor::HealthRecord record) const;
  monitor::HealthInputs health_inputs();
  // Committer thread: writes the new state and its `$health.<to>` event in
  // one write transaction, then logs and calls the callbacks.
  void record_transition(const monitor::HealthRecord& from, HealthState to, const std::string& reason,
                         const std::map<std::string, double>& figures, bool manual, bool failure = false);
  void start_health();
  // Writes `record` and the `$health.<to>` event of `t` in one write
  // transaction; returns the event's ID. Throws what the write throws.
  std::string write_transition(const monitor::HealthRecord& record, const HealthTransition& t);
  monitor::HealthRecord with_unrecorded(monitor::HealthRecord record) const;

  std::mutex subscriptions_mutex_;
  std::vector<std::weak_ptr<Subscription::State>> subscriptions_;
  std::set<std::string> consumers_;  // named consumers with a live subscription here

  mutable std::atomic<std::uint8_t> health_cache_{0};
  mutable std::mutex health_record_mutex_;  // the last `health` bytes read, decoded
  mutable std::string health_record_bytes_;
  mutable monitor::HealthRecord health_record_;
  mutable std::mutex health_mutex_;  // below
  monitor::Hysteresis hysteresis_{3, 10};
  monitor::Proposal proposal_;
  mutable std::string corruption_;
  // A transition this process could not write (its store failed): it holds
  // here, and health() reports it, until a later one is written.
  std::optional<monitor::HealthRecord> unrecorded_;
  HealthTransition unrecorded_transition_;
  mutable std::mutex adopt_mutex_;
  std::vector<HealthCallback> health_callbacks_;
};

}  // namespace lighthouse
