// lighthouse::Store — an embedded, transactional event store on LMDB.
//
// Caveats (read these first):
//  * One process opens a store's environment once. Opening the same path
//    again in the same process returns a handle to the already open store
//    (LMDB forbids two environments on one file in a process). Do not open
//    a store, fork, and use it in the child.
//  * No network filesystems: LMDB's locking needs a local filesystem.
//  * Long scans hold no LMDB read transaction between chunks, so they do
//    not block writers from reusing pages — but a single get() or chunk sees
//    one snapshot only.
//  * Durability: see Options::durability. The default, sync, loses no
//    acknowledged append on a crash or power loss.
//
// Thread safety: a Store is safe for concurrent use by multiple threads.
// Copies of a Store share the open store; it closes when the last copy is
// destroyed or close() is called.
#pragma once

#include <cstdint>
#include <filesystem>
#include <future>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "lighthouse/error.h"
#include "lighthouse/event.h"
#include "lighthouse/event_id.h"
#include "lighthouse/expected_version.h"
#include "lighthouse/health.h"
#include "lighthouse/export.h"
#include "lighthouse/integrity.h"
#include "lighthouse/options.h"
#include "lighthouse/query.h"
#include "lighthouse/sla.h"
#include "lighthouse/subscription.h"

namespace lighthouse {

// The result of an append: one entry per event, in the order given.
struct AppendedEvent {
  EventId id;
  std::uint64_t aggregate_version = 0;  // 0 for an event without aggregate
};

struct AppendResult {
  std::vector<AppendedEvent> events;
  // True iff the append was an idempotent retry: nothing new was written and
  // `events` are those stored by the original append.
  bool replayed = false;
};

// An atomic group of events with at most one expectation per aggregate.
// Aggregates without an expectation are unconstrained; an expectation may
// name an aggregate the batch does not write to (a guard).
struct Batch {
  std::vector<EventData> events;
  std::vector<AggregateExpectation> expectations;
  // A degraded store refuses appends below HealthOptions::degraded_min_priority
  // (append_batches: a request with any batch below it).
  Priority priority = Priority::normal;
  // Stores a named consumer's checkpoint in the same transaction as the
  // events: a projection that appends what it derives from `position` and
  // moves its checkpoint to `position` does both or neither.
  struct Checkpoint {
    std::string consumer;
    EventId position;
  };
  std::optional<Checkpoint> checkpoint;
};

struct TruncateReport {
  std::uint64_t events_dropped = 0;
  std::uint64_t base_sequence = 1;  // the first sequence the store holds now
  std::string archive;
  double seconds = 0;
};

struct CompactReport {
  std::uint64_t bytes_before = 0;  // size of data.mdb before
  std::uint64_t bytes_after = 0;
};

struct UpgradeReport {
  std::uint32_t from_format = 0;  // the store's format before
  std::uint32_t to_format = 0;    // the format this build writes
  bool upgraded = false;          // false: it was of the current format already
  std::uint64_t events = 0;       // events rewritten
  double seconds = 0;
};

struct StoreStats {
  std::uint64_t event_count = 0;
  std::uint64_t last_sequence = 0;       // 0 when nothing was ever appended
  std::uint64_t last_timestamp_ns = 0;
  std::uint64_t aggregate_count = 0;
  std::uint64_t type_count = 0;          // distinct event types (counted: O(types))
  std::uint32_t node_id = 0;             // the node id this handle writes with
  std::uint32_t format_version = 0;
  std::uint64_t map_size_bytes = 0;
  std::uint64_t map_used_bytes = 0;
  std::uint64_t append_backlog = 0;      // appends queued for the committer now
  std::uint64_t commits = 0;             // write transactions committed by this process since open
  std::uint64_t base_sequence = 1;       // the first sequence the store holds (after truncation)
  std::string base_archive;              // the archive holding what truncation dropped
  std::string base_chain;                // hex chain value the first event follows (empty: none)
  bool read_only = false;
  // Why the store refuses writes after an I/O error or MDB_PANIC (close and
  // reopen it); empty while it is healthy.
  std::string failure;
};

class LIGHTHOUSE_API Store {
 public:
  // Opens (and with create_if_missing creates) the store in directory `path`.
  // Checks the store's invariants in O(1) and restores its counters.
  // Errors: not_found (no store and !create_if_missing, or read_only),
  // unsupported_format (written by a newer Lighthouse), corruption (meta
  // invariants broken, a damaged meta page of the LMDB file — checked on
  // every open, before LMDB reads the file —, with
  // Options::check_structure_on_open a damaged page anywhere, not an LMDB
  // environment, an LMDB environment that is not a store), already_open (open in this process read-only while this
  // call wants to write), invalid_argument (options out of range), io_error.
  // A store this process already has open is shared: the call returns
  // another handle to it, with the options of the first open (read_only
  // aside, which makes this handle read-only).
  static Store open(const std::filesystem::path& path, const Options& options = {});

  // Appends one event, checking `expected` against the event's aggregate.
  // REQUIRES: expected is any() when the event has no aggregate.
  // Errors: invalid_argument, limit_exceeded, wrong_expected_version (with
  // aggregate() and actual_version()), idempotency_conflict, read_only,
  // degraded (priority below what a degraded store admits), emergency,
  // corruption (the store's structure is marked damaged: see verify()),
  // store_failed, closed, io_error. On error nothing is written.
  // Appends take their events by value: pass them with std::move to append
  // without copying them.
  AppendResult append(EventData event, ExpectedVersion expected = ExpectedVersion::any(),
                      Priority priority = Priority::normal);

  // Appends a batch atomically: all of its events become visible together,
  // or — on any error — none. Idempotency is checked before expectations:
  // when every event carries a key and every key is stored with identical
  // content, the original result is returned with replayed == true; a key
  // stored with other content, or only some keys stored, is an
  // idempotency_conflict.
  // Errors: as for append(); Error::index() names the offending event.
  AppendResult append_batch(Batch batch);
  AppendResult append_batch(std::vector<EventData> events,
                            std::vector<AggregateExpectation> expectations = {});

  // Appends several batches in one transaction, all or nothing: each batch
  // keeps its own expectations and idempotency rules (a later batch sees the
  // earlier ones' events); if any fails, none is written and the error's
  // index() names the failing batch. The batch limits apply to the total.
  // Errors: as for append(); Error::index() names the failing batch.
  std::vector<AppendResult> append_batches(std::vector<Batch> batches);

  // Asynchronous appends: the future completes once the events are durable
  // in the store's durability mode, or holds the Error of the append (the
  // same errors as the synchronous calls). Validation errors are thrown
  // right away. Many appends may be in flight from one thread; the
  // committer takes them into groups, and each succeeds or fails alone.
  // Closing the store completes every append already queued.
  // Errors: thrown at once — invalid_argument, limit_exceeded, read_only,
  // degraded, emergency, store_failed, closed; held by the future — the
  // errors of append() found in the write transaction.
  std::future<AppendResult> append_async(EventData event,
                                         ExpectedVersion expected = ExpectedVersion::any(),
                                         Priority priority = Priority::normal);
  std::future<AppendResult> append_batch_async(Batch batch);

  // Returns the event with `id`, checked as Options::verify_on_read says.
  // Errors: not_found, corruption, closed, io_error.
  RecordedEvent get(const EventId& id) const;

  // Returns a streaming cursor over the events `query` selects, walking the
  // index the planner estimates to be the most selective (see explain()).
  // Errors: invalid_argument (a malformed filter, such as an empty type),
  // closed, io_error; corruption is raised by the cursor's next().
  EventCursor query(const Query& query) const;

  // Returns the plan query(query) would follow, without reading events.
  // Errors: invalid_argument (a malformed filter), closed, io_error.
  QueryPlan explain(const Query& query) const;

  // The stream of `aggregate`, versions from_version..to_version inclusive
  // (to_version 0: to the end), in version order.
  // Errors: invalid_argument (an empty or oversized aggregate, to_version
  // below from_version), closed, io_error; corruption from the cursor's next().
  EventCursor read_aggregate(const std::string& aggregate, std::uint64_t from_version = 1,
                             std::uint64_t to_version = 0) const;

  // Counters and sizes of the store, read in one snapshot.
  // Errors: corruption (a damaged meta counter), closed, io_error.
  StoreStats stats() const;

  // The SLA monitor's report: 10 s, 60 s and since-open windows, backlog,
  // breaches in force (Options::monitor must be on, else the windows are empty).
  // Errors: closed.
  SlaReport sla_report() const;
  // Calls `callback` when a breach begins, from the thread that notices it
  // (the committer's). An exception it throws is logged and dropped. From it,
  // methods that wait for a commit (append, append_batch(es), close, repair,
  // enter/clear_emergency, evaluate_health, set_checkpoint, import) raise
  // Error(invalid_argument) instead of waiting for themselves; append_async
  // works. Do not drop the store's last handle from a callback. Errors: closed.
  void on_sla_breach(SlaBreachCallback callback);
  // The live Prometheus text exposition (format 0.0.4) for a host program to serve.
  // Errors: corruption (a damaged meta counter), closed, io_error.
  std::string metrics_text() const;
  // The report and histograms the writing process last persisted in the store
  // (JSON, with its pid and wall-clock time), or "" if none yet.
  // Errors: closed, io_error.
  std::string persisted_sla() const;
  // Prometheus text built from the store's gauges and persisted_sla(): what a
  // process that does not write (lighthouse metrics) can expose.
  // Errors: corruption (a damaged meta counter), closed, io_error.
  std::string persisted_metrics_text() const;

  // Checks everything the store promises, on one consistent snapshot while
  // writers keep writing: every checksum, the chain, strictly increasing IDs
  // and timestamps, gap-free sequences, contiguous aggregate versions, every
  // index entry naming an existing event of the same type or aggregate,
  // every event present in each index it belongs to, the idempotency index,
  // and the meta counters. First of all it checks the LMDB file's own
  // structure — every page, read with pread, never through LMDB (which
  // trusts its pages: LMDB keeps no checksums) — on the snapshot it then
  // checks (category "structure"; docs/formats.md, "The LMDB file"); a
  // damaged structure ends the check there, and leaves the damage mark
  // beside data.mdb (even from a read-only handle: it is the only thing
  // verify writes): every process's writers then refuse to write, with
  // Error(corruption), until repair() of a whole structure clears it — a
  // damaged free list would make LMDB reuse live pages. Reads go on.
  // Problems are reported, not thrown. Errors: closed, io_error.
  VerifyReport verify(const VerifyOptions& options = {}) const;

  // The structural check alone (what verify() runs first), on the file of a
  // store that cannot be opened — its main database damaged, say: both
  // meta pages and every page reachable from the current one, read with
  // pread, never through LMDB. Opens and writes nothing (no damage mark: a
  // store no process can open takes no writes). A problem must be there on
  // three walks to be reported, but a writer of another process may still
  // make it report one that is not there: on a store that opens, use
  // verify(), which walks a pinned snapshot. Errors: not_found, io_error.
  static VerifyReport check_file(const std::filesystem::path& path);

  // Rebuilds the secondary indexes (by_type, by_aggregate,
  // by_idempotency_key) and the meta counters from `events`, in one write
  // transaction (writers of every process wait meanwhile). Never drops or
  // rewrites an event: one whose record does not decode or whose checksum
  // fails is reported and left for the operator. It verifies first: when the
  // LMDB file's structure is damaged it rebuilds nothing (rebuilding would
  // write through it) and says so in `refused` (use salvage()); when it is
  // whole, it clears the damage mark an earlier verify() left. Errors:
  // read_only, store_failed, closed, io_error.
  RepairReport repair();

  // Writes a consistent, compacted copy of the store (LMDB's compacting copy
  // of one snapshot) into the directory `destination`, which must not exist
  // or be empty, while writers keep writing; syncs it and verifies it.
  // The LMDB file's structure is checked first (LMDB's copy trusts every
  // page). Errors: invalid_argument (destination not empty, or inside the
  // store), corruption (a damaged structure, or the copy does not verify),
  // closed, io_error.
  BackupReport backup(const std::filesystem::path& destination) const;

  // Drops every event before `id` (retention), once a verified archive holds
  // them: the archive segments covering the range are re-verified (files,
  // checksums, chain up to the cut) and their last dropped event must carry
  // the store's own chain value; an event no verified segment holds is never
  // dropped. Events and their index entries go in bounded transactions, so
  // writers keep going; after each, the store records its new base (first
  // sequence, chain anchor, archive). Afterwards sequences, timestamps and
  // aggregate versions continue (a head is kept for an aggregate that lost
  // all its events), idempotency keys of dropped events still replay (their
  // entries keep ID, content hash and version), queries reaching below the
  // base say so (EventCursor::truncation()), and verify() starts from the
  // anchor. Errors: not_found (no archive), invalid_argument (the archive is
  // another store's, or its export checkpoint is before the cut),
  // corruption (the archive does not verify), read_only, closed, io_error.
  TruncateReport truncate_before(const EventId& id, const std::filesystem::path& archive);

  // LMDB reuses freed pages but never shrinks its file: compact() writes a
  // compacted copy and swaps it in. REQUIRES: no process has the store open
  // (it refuses with already_open if one does when it starts — this process
  // or another — and no process may open it until it returns). The LMDB
  // file's structure is checked first. Errors: already_open, not_found,
  // corruption (a damaged structure, or the damage mark), io_error.
  static CompactReport compact(const std::filesystem::path& path);

  // Rewrites a store of an older format (a format-1 store opens read-only)
  // in the format this build writes: every event keeps its ID, content,
  // version and idempotency key; its checksum and the chain are recomputed
  // from the store's base (a format-1 archive of the store stays valid for
  // truncate_before(), import and `archive verify`, but the next export
  // goes into a new archive). The store must verify first. The new store is
  // written beside the old one (in STORE/.upgrade), verified, and renamed
  // over it: a crash at any moment leaves the old store or the new one.
  // REQUIRES: no process has the store open (as compact()). A store of the
  // current format is left as it is (`upgraded` false).
  // Errors: already_open, not_found, corruption (the store does not
  // verify), io_error.
  static UpgradeReport upgrade(const std::filesystem::path& path);

  // Builds a new store in `destination` (new, or an empty directory) from
  // every event record of the store at `damaged` that can still be read and
  // verified — reading its file's pages directly, never through LMDB, so
  // that it works when the file's structure is damaged (LMDB could not be
  // trusted to read it). The new store holds the longest history that
  // continues the old one's chain without a gap, with its IDs, checksums,
  // chain, base and node id, and the consumers' checkpoints; the report
  // says exactly what was lost, and the events after a gap are written
  // beside the new store. The damaged store is not changed (its damage
  // mark stays). REQUIRES: no process writes to `damaged`.
  // Errors: invalid_argument (destination not new or empty, or inside the
  // store), not_found (no store at `damaged`), io_error.
  static SalvageReport salvage(const std::filesystem::path& damaged, const std::filesystem::path& destination);

  // Follows the events `filter` selects (its types, type prefix and
  // aggregate; its ID, sequence and time bounds and limit must be unset)
  // from `start`: catches up from the store, then delivers live, calling
  // `handler` on one thread of the subscription's own, in event order, at
  // least once (see lighthouse/subscription.h). A handler that throws stops
  // the subscription (error() holds the exception; a named consumer's
  // checkpoint stays at the last event handled). Closing the store stops
  // every subscription on it first.
  // Errors: invalid_argument (a bound in the filter, a bad consumer name),
  // read_only (a named consumer on a read-only store), closed, io_error.
  Subscription subscribe(const Query& filter, SubscriptionStart start, EventHandler handler,
                         const SubscribeOptions& options = {});
  // A named consumer's stored checkpoint (nullopt: none yet).
  // Errors: invalid_argument (a bad consumer name), corruption (a damaged
  // checkpoint), closed, io_error.
  std::optional<EventId> checkpoint(const std::string& consumer) const;
  // Stores a consumer's checkpoint. Errors: invalid_argument, read_only, closed, io_error.
  void set_checkpoint(const std::string& consumer, const EventId& position);

  // The health state recorded in the store (every process obeys it), with
  // this process's own proposal. Errors: closed, io_error.
  HealthStatus health() const;
  // Enters a manual emergency, for every process on the store: appends are
  // refused with Error(emergency) until clear_emergency(). Recorded as a
  // `$health.emergency` event. Errors: invalid_argument (empty reason),
  // read_only, store_failed, corruption (the store's structure is marked
  // damaged: see verify()), closed, io_error.
  void enter_emergency(const std::string& reason);
  // Ends a manual emergency; the state becomes what this process's triggers
  // hold now (healthy for a process that has not evaluated any). Recorded as
  // a `$health.<to>` event. Does nothing when there is no manual emergency.
  // Errors: read_only, store_failed, corruption (marked damaged), closed,
  // io_error.
  void clear_emergency();
  // Evaluates the triggers once, as one window (what the writing process
  // does by itself every HealthOptions::window_seconds), and returns the
  // state. Errors: read_only, closed, io_error.
  HealthStatus evaluate_health();
  // Calls `callback` after each transition this process records, from the
  // thread that records it (usually the committer's). An exception it throws
  // is logged and dropped; methods that wait for a commit raise
  // Error(invalid_argument) from it, as for on_sla_breach.
  // Errors: closed (a handle that was moved from).
  void on_health_change(HealthCallback callback);

  const std::filesystem::path& path() const noexcept;
  const Options& options() const noexcept;

  // Closes this store for every handle sharing it, after committing every
  // append already queued. Later calls raise Error(closed). Idempotent.
  // Errors: invalid_argument (called from a store callback, on the
  // committer thread it would wait for).
  void close();

  ~Store();
  Store(const Store&);
  Store& operator=(const Store&);
  Store(Store&&) noexcept;
  Store& operator=(Store&&) noexcept;

  class Impl;

 private:
  friend struct StoreAccess;  // the library's own modules (archive import)
  friend class Subscription;
  explicit Store(std::shared_ptr<Impl> impl, bool read_only_handle);
  // The store; Error(closed) on a moved-from handle.
  Impl& impl() const;
  RepairReport repair_untraced();  // repair() inside its span
  std::shared_ptr<Impl> impl_;
  bool read_only_handle_ = false;
};

}  // namespace lighthouse
