// ReadPath — every read of a store: single events, and one open_cursor()
// behind query(), read_aggregate(), subscriptions, lag and the truncation
// and archive checks. Requests are validated against the store's own
// Options::limits and planned in one read transaction; the cursor then reads
// chunk by chunk (store/event_cursor.h).
//
// Thread safety: safe for concurrent use; a cursor is used by one thread.
#pragma once

#include <lmdb.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "lighthouse/query.h"
#include "lighthouse/tracing.h"
#include "lighthouse/store.h"
#include "monitor/sla_monitor.h"
#include "store/environment.h"
#include "store/health_controller.h"
#include "store/query_planner.h"
#include "store/replication_gate.h"
#include "store/schema.h"

namespace lighthouse {

// What a cursor reads: a query, or an aggregate's versions.
struct ReadRequest {
  Query query;
  struct Versions {
    std::string aggregate;
    std::uint64_t from = 1;
    std::uint64_t to = 0;  // 0: to the end
  };
  std::optional<Versions> versions;  // set: read_aggregate()

  static ReadRequest of(Query query) { return {std::move(query), std::nullopt}; }
  static ReadRequest aggregate(std::string aggregate, std::uint64_t from, std::uint64_t to) {
    return {Query{}, Versions{std::move(aggregate), from, to}};
  }
};

// The store's own reads for a subscription record no span (its delivery
// spans say what it did).
using UntracedReads = tracing::UntracedScope;

class ReadPath {
 public:
  ReadPath(const Environment& env, const Databases& dbs, const Options& options, monitor::SlaMonitor* monitor,
           const HealthController& health, const ReplicationGate& gate);

  // The event with `id`, checked as Options::verify_on_read says
  // is off. Errors: not_found (also an event past the replication
  // high-water mark of a store in quorum mode), corruption, closed, io_error.
  RecordedEvent get(const EventId& id) const;

  // A cursor over what `request` selects. `owner` is the store the cursor
  // keeps open while it lives. Errors: invalid_argument (a malformed
  // request), closed, io_error.
  std::unique_ptr<EventCursor::Impl> open_cursor(std::shared_ptr<Store::Impl> owner, const ReadRequest& request) const;
  QueryPlan explain(const ReadRequest& request) const;

  // The last event stored (nothing in an empty or fully truncated store).
  std::optional<EventId> last_event_id() const;
  static std::optional<EventId> last_event_id(MDB_txn* txn, const Databases& dbs);
  // A consumer's stored checkpoint. Errors: corruption (a damaged one).
  std::optional<EventId> checkpoint(const std::string& consumer) const;

  // For the cursors.
  const Environment& env() const noexcept { return env_; }
  const Databases& dbs() const noexcept { return dbs_; }
  monitor::SlaMonitor* monitor() const noexcept { return monitor_; }
  // Corruption met while reading is a health trigger of a writing process.
  void note_corruption(const std::string& detail) const { health_.note_corruption(detail); }

 private:
  tracing::Span start_read_span(const ReadRequest& request) const;
  ResolvedQuery plan(MDB_txn* txn, const ReadRequest& request) const;

  const Environment& env_;
  const Databases& dbs_;
  const Options& options_;
  monitor::SlaMonitor* const monitor_;
  const HealthController& health_;
  const ReplicationGate& gate_;
};

}  // namespace lighthouse
