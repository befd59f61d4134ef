#include "store/read_path.h"

#include <chrono>

#include "codec/record.h"
#include "store/event_cursor.h"
#include "lighthouse/tracing.h"
#include "task_span.h"

namespace lighthouse {

ReadPath::ReadPath(const Environment& env, const Databases& dbs, const Options& options,
                   monitor::SlaMonitor* monitor, const HealthController& health, const ReplicationGate& gate)
    : env_(env), dbs_(dbs), options_(options), monitor_(monitor), health_(health), gate_(gate) {}

RecordedEvent ReadPath::get(const EventId& id) const {
  auto lock = env_.use();
  auto read = env_.begin_read();
  const auto key = id.to_key();
  std::string_view value;
  if (!lmdb::get(read->get(), dbs_.events, schema::key_view(key), value)) {
    throw Error(ErrorCode::not_found, "no event " + id.to_string());
  }
  if (const auto cap = gate_.read_cap(read->get()); cap && id.sequence > *cap) {
    throw Error(ErrorCode::not_found, "no event " + id.to_string() + " yet: the stream has not acknowledged it (quorum replication, high-water mark " +
                                          std::to_string(*cap) + ")");
  }
  try {
    return codec::read_record(id, value, options_.verify_on_read);
  } catch (const Error& error) {
    if (error.code() == ErrorCode::corruption) note_corruption(error.what());
    throw;
  }
}

ResolvedQuery ReadPath::plan(MDB_txn* txn, const ReadRequest& request) const {
  ResolvedQuery q = request.versions ? plan_aggregate(txn, dbs_, request.versions->aggregate, request.versions->from,
                                                      request.versions->to, options_)
                                     : plan_query(txn, dbs_, request.query, options_);
  if (const auto cap = gate_.read_cap(txn)) q.max_sequence = *cap;
  return q;
}

std::unique_ptr<EventCursor::Impl> ReadPath::open_cursor(std::shared_ptr<Store::Impl> owner,
                                                         const ReadRequest& request) const {
  const auto start = std::chrono::steady_clock::now();
  tracing::Span span;
  if (options_.tracing.sink && !tracing::UntracedScope::active()) span = start_read_span(request);
  try {
    auto lock = env_.use();
    auto read = env_.begin_read();
    auto cursor = std::make_unique<EventCursor::Impl>(std::move(owner), *this, plan(read->get(), request));
    cursor->add_time(start);
    if (span.recording()) {
      span.set("lighthouse.query.plan", std::string(to_string(cursor->plan().source)));
      span.set("lighthouse.query.plan_description", cursor->plan().description);
      span.set("lighthouse.query.estimate", static_cast<std::int64_t>(cursor->plan().estimate));
      cursor->trace(std::move(span));
    }
    return cursor;
  } catch (const Error& error) {
    span.set_error(to_string(error.code()), error.what());
    throw;
  }
}

tracing::Span ReadPath::start_read_span(const ReadRequest& request) const {
  const char* operation = request.versions ? "read_aggregate" : "query";
  tracing::Span span(options_.tracing, operation, tracing::SpanKind::internal);
  if (!span.recording()) return span;
  describe_db_operation(span, operation, &env_.path());
  if (request.versions) {
    span.set("lighthouse.aggregate", request.versions->aggregate);
    span.set("lighthouse.from_version", static_cast<std::int64_t>(request.versions->from));
  } else {
    const Query& q = request.query;
    if (!q.types.empty()) {
      std::string types;
      for (const auto& t : q.types) types += (types.empty() ? "" : ",") + t;
      span.set("lighthouse.query.types", types);
    }
    if (q.aggregate) span.set("lighthouse.aggregate", *q.aggregate);
  }
  return span;
}

QueryPlan ReadPath::explain(const ReadRequest& request) const {
  auto lock = env_.use();
  auto read = env_.begin_read();
  return plan(read->get(), request).plan;
}

std::optional<EventId> ReadPath::last_event_id() const {
  auto read = env_.begin_read();
  return last_event_id(read->get(), dbs_);
}

std::optional<EventId> ReadPath::last_event_id(MDB_txn* txn, const Databases& dbs) {
  lmdb::Cursor cursor(txn, dbs.events);
  MDB_val k, v;
  if (!cursor.seek(k, v, MDB_LAST)) return std::nullopt;
  return schema::decode_event_key(lmdb::view(k), "the last event");
}

std::optional<EventId> ReadPath::checkpoint(const std::string& consumer) const {
  auto lock = env_.use();
  auto read = env_.begin_read();
  return schema::read_checkpoint(read->get(), dbs_, consumer);
}

}  // namespace lighthouse
