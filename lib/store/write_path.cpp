#include "store/write_path.h"

#include <algorithm>
#include <chrono>

#include "monitor/prometheus.h"
#include "files.h"
#include "store/damage_mark.h"
#include "store/clock.h"
#include "store/validation.h"
#include "store/write_txn.h"
#include "task_span.h"

namespace lighthouse {
namespace {

// A request's own error (a conflict, a refusal): it fails alone. LMDB's
// errors and a lost transaction fail the whole group.
bool is_request_error(const Error& error) {
  return dynamic_cast<const lmdb::LmdbError*>(&error) == nullptr &&
         dynamic_cast<const TransactionLost*>(&error) == nullptr;
}

// Calls `f` with the lighthouse::Error `error` holds (nothing for another kind).
template <typename F>
void with_error(const std::exception_ptr& error, F&& f) {
  try {
    std::rethrow_exception(error);
  } catch (const Error& e) {
    f(e);
  } catch (...) {
  }
}

}  // namespace

const char* to_string(ExclusiveTask task) noexcept {
  switch (task) {
    case ExclusiveTask::repair: return "repair";
    case ExclusiveTask::import: return "import";
    case ExclusiveTask::truncation: return "truncation";
    case ExclusiveTask::checkpoint: return "checkpoint";
    case ExclusiveTask::replication: return "replication";
    case ExclusiveTask::health: return "health";
  }
  return "task";
}

WritePath::WritePath(Environment& env, const Databases& dbs, const Options& options, std::uint32_t node_id,
                     monitor::SlaMonitor* monitor, HealthController& health, ReplicationGate& gate,
                     std::function<void()> committed)
    : env_(env),
      dbs_(dbs),
      options_(options),
      node_id_(node_id),
      monitor_(monitor),
      health_(health),
      gate_(gate),
      committed_(std::move(committed)) {}

void WritePath::start() {
  Committer::ObserveBacklog observe;
  if (monitor_) {
    observe = [this](std::size_t queued, std::uint64_t oldest) { monitor_->sample_backlog(queued, oldest); };
  }
  const auto window = std::chrono::nanoseconds(static_cast<std::int64_t>(
      options_.health.enabled ? std::max(0.0, options_.health.window_seconds) * 1e9 : 0.0));
  committer_ = std::make_unique<Committer>(
      CommitterLimits{options_.max_group_events, options_.max_group_bytes},
      [this](std::vector<std::unique_ptr<AppendRequest>>& group) { commit_group(group); }, std::move(observe),
      [this] { health_.tick(); }, window);
}

WritePath::~WritePath() { stop(); }

void WritePath::stop() noexcept {
  if (!committer_) return;
  // Queued appends are committed (or failed) first.
  committer_->stop();
  // The monitor's last report, for other processes (best effort: a store
  // that failed keeps the previous one). Only a process that appended: one
  // whose appends all failed, or that only recorded a health transition,
  // leaves the previous report.
  if (monitor_ && !env_.closed() && env_.failure().empty() && appended_.exchange(false) &&
      !damage_mark::get(env_.path())) {
    try {
      env_.with_write_txn([this](MDB_txn* txn) { persist_sla(txn); });
    } catch (const std::exception&) {
    }
  }
}

std::uint64_t WritePath::now_ns() const { return wall_clock_ns(options_); }

// --- Submission (the caller's thread) --------------------------------------

void WritePath::enqueue(std::unique_ptr<AppendRequest> request) {
  try {
    for (std::size_t i = 0; i < request->batches.size(); ++i) {
      try {
        request->bytes += validation::check_batch(request->batches[i], options_.limits, request->allow_reserved);
      } catch (Error& error) {
        if (!request->one_batch) throw error.with_index(i);
        throw;
      }
      request->events += request->batches[i].events.size();
    }
    validation::check_totals(request->events, request->bytes, options_.limits);
    // The events without a context of their own carry the append's
    // (start_append_span): held once in the request, not copied into each
    // event, and written into each record by the committer.
    const TraceContext* stamp = request->stamp().context;
    // The SHA-256 over each event's content, in this thread: the committer
    // only hashes a fixed number of bytes per event.
    request->hashes.reserve(request->events);
    // The events of a traced append share one trace context: without an
    // idempotency key their extras hash is one, taken once.
    const TraceContext* shared = nullptr;
    Sha256 shared_extras{};
    for (const Batch& batch : request->batches) {
      for (const EventData& e : batch.events) {
        codec::RecordFields fields = codec::RecordFields::of(e, 0);
        if (fields.trace_context == nullptr) fields.trace_context = stamp;
        codec::ContentHashes h;
        h.content = codec::content_hash(fields);
        const TraceContext* context = fields.trace_context;
        const bool plain = !e.idempotency_key && context != nullptr;
        if (plain && shared != nullptr && (context == shared || *context == *shared)) {
          h.extras = shared_extras;
        } else {
          h.extras = codec::extras_hash(fields);
          if (plain) {
            shared = context;
            shared_extras = h.extras;
          }
        }
        request->hashes.push_back(h);
      }
    }
    if (auto failed = env_.failed_error()) throw *failed;
    auto lock = env_.use();  // refuses a closed store
    health_.admit(request->priority);
    if (!committer_) throw Error(ErrorCode::closed, "store '" + env_.path().string() + "' is not open for appends yet");
    committer_->submit(std::move(request));
  } catch (const Error& error) {
    if (request) request->span.set_error(to_string(error.code()), error.what());  // ended as the request goes
    throw;
  }
}

std::future<AppendResult> WritePath::submit(Batch batch, bool allow_reserved) {
  auto request = std::make_unique<AppendRequest>();
  request->priority = batch.priority;
  request->batches.push_back(std::move(batch));
  request->allow_reserved = allow_reserved;
  if (options_.tracing.sink) start_append_span(*request, "append");
  auto future = request->single.emplace().get_future();
  enqueue(std::move(request));
  return future;
}

std::future<std::vector<AppendResult>> WritePath::submit(std::vector<Batch> batches, bool allow_reserved) {
  auto request = std::make_unique<AppendRequest>();
  request->priority = Priority::critical;
  for (const Batch& b : batches) request->priority = std::min(request->priority, b.priority);
  request->batches = std::move(batches);
  request->allow_reserved = allow_reserved;
  request->one_batch = false;
  if (options_.tracing.sink) start_append_span(*request, "append_batches");
  auto future = request->several.emplace().get_future();
  enqueue(std::move(request));
  return future;
}

// --- Exclusive tasks ---------------------------------------------------------

void WritePath::refuse_on_committer_thread(const char* what) const {
  if (on_committer_thread()) {
    throw Error(ErrorCode::invalid_argument,
                std::string(what) +
                    " cannot be called from a store callback (on_sla_breach, on_health_change): they run on the "
                    "committer thread, which it would wait for; use append_async, or hand the work to another "
                    "thread");
  }
}

void WritePath::run_exclusive(ExclusiveTask task, std::function<void()> work, bool even_if_failed) {
  refuse_on_committer_thread(to_string(task));
  if (auto failed = env_.failed_error(); failed && !even_if_failed) throw *failed;
  auto request = std::make_unique<AppendRequest>();
  request->task = std::move(work);
  auto done = request->task_done.emplace().get_future();
  {
    auto lock = env_.use();
    if (!committer_) throw Error(ErrorCode::closed, "store '" + env_.path().string() + "' is not open for writes yet");
    committer_->submit(std::move(request));
  }
  done.get();
}

void WritePath::refuse_if_damaged() const {
  if (auto marked = damage_mark::refusal(env_.path())) throw Error(ErrorCode::corruption, *marked);
}

void WritePath::write_exclusive(const std::function<void(MDB_txn*)>& body) {
  refuse_if_damaged();
  env_.with_write_txn(body);
  if (committed_) committed_();  // health events and imports are events too
}

std::string WritePath::write_health(const monitor::HealthRecord& record, const HealthTransition& t) {
  Batch batch;
  EventData event;
  event.type = "$health." + std::string(to_string(t.to));
  event.aggregate = "$health";
  event.content_type = ContentType::json;
  event.data = monitor::transition_json(t, record.pid);
  batch.events.push_back(std::move(event));
  std::string id;
  write_exclusive([&](MDB_txn* txn) {
    if (schema::read_replica_of(txn, dbs_)) {
      // A read replica's log is its primary's: its state is recorded, no event.
      lmdb::put(txn, dbs_.meta, schema::meta::kHealth, monitor::encode_health(record));
      return;
    }
    WriteTxn write(txn, dbs_, options_, node_id_, now_ns());
    const AppendResult result = write.write(batch);
    write.finish();
    write.close_cursors();
    lmdb::put(txn, dbs_.meta, schema::meta::kHealth, monitor::encode_health(record));
    id = result.events.front().id.to_string();
  });
  commits_.fetch_add(1, std::memory_order_relaxed);
  return id;
}

// --- The committer's group ---------------------------------------------------

void WritePath::persist_sla(MDB_txn* txn) {
  const SlaReport report = monitor_->report();
  const std::string json = monitor::measures_json(report, monitor_->since_open(), monitor_->error_counts(), now_ns());
  lmdb::put(txn, dbs_.meta, schema::meta::kSlaReport, json);
}

void WritePath::commit_group(std::vector<std::unique_ptr<AppendRequest>>& group) {
  const auto taken = std::chrono::steady_clock::now();
  tracing::Span commit;
  if (options_.tracing.sink) commit = start_commit_span(group);
  if (monitor_) {
    for (const auto& request : group) {
      monitor_->record_queue_wait(static_cast<std::uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(taken - request->enqueued).count()));
    }
  }
  if (group_results_.size() < group.size()) group_results_.resize(group.size());
  GroupOutcome out;
  out.taken = taken;
  out.errors.resize(group.size());
  if (auto failed = env_.failed_error()) {
    out.group_error = std::make_exception_ptr(*failed);
  } else if (auto marked = damage_mark::refusal(env_.path())) {
    out.group_error = std::make_exception_ptr(Error(ErrorCode::corruption, *marked));
  } else {
    write_group(group, out);
  }
  // An I/O failure is an emergency at once: recorded before any caller
  // hears of the failure, so that what they see next agrees with it.
  if (out.group_error && options_.health.enabled && !env_.failure().empty() &&
      health_.cached_state() != HealthState::emergency) {
    health_.tick();
  }
  if (options_.tracing.sink) end_commit_span(commit, group, out);
  measure(group, out);
  complete(group, out);
  if (monitor_) {
    // Breaches are looked for at most once a second, off the callers' path.
    const std::uint64_t t = steady_ns();
    if (t - last_evaluation_ns_ >= 1'000'000'000ull) {
      last_evaluation_ns_ = t;
      monitor_->evaluate();
    }
  }
}

void WritePath::write_group(std::vector<std::unique_ptr<AppendRequest>>& group, GroupOutcome& out) {
  const auto started = std::chrono::steady_clock::now();
  for (int attempt = 0;; ++attempt) {
    try {
      auto txn = env_.begin_write();
      if (!write_requests(txn->get(), group, out)) return;  // nothing new: nothing to commit
      if (monitor_) {
        // At most once per 10 s window of the monitor's clock, the report
        // rides on this commit (the first commit carries one).
        const std::uint64_t t = monitor_->now();
        if (!last_persist_ns_ || t - *last_persist_ns_ >= 10'000'000'000ull) {
          persist_sla(txn->get());
          last_persist_ns_ = t;
        }
      }
      out.transaction_ns = ns_since(started);
      const auto committing = std::chrono::steady_clock::now();
      txn->commit();
      out.commit_ns = ns_since(committing);
      commits_.fetch_add(1, std::memory_order_relaxed);
      appended_.store(true, std::memory_order_relaxed);
      if (committed_) committed_();
      return;
    } catch (const lmdb::LmdbError& error) {
      if (error.rc() == MDB_MAP_FULL && attempt < 16) {
        try {
          env_.grow_map();
          continue;
        } catch (const Error& grow_error) {
          out.group_error = std::make_exception_ptr(Error(grow_error.code(), grow_error.what()));
          return;
        }
      }
      // An I/O error or MDB_PANIC: the store refuses writes from now on.
      const bool fatal = error.rc() == MDB_PANIC || error.rc() > 0;
      std::string reason = error.what();
      if (error.rc() > 0) {
        // A full disk says so (LMDB reports a short write as EIO).
        const auto colon = reason.find(": ");
        reason = (colon == std::string::npos ? std::string("writing") : reason.substr(0, colon)) + ": " +
                 write_failure(error.rc(), env_.path(), env_.path() / "data.mdb");
      }
      if (fatal) env_.record_failure(reason);
      out.group_error = std::make_exception_ptr(
          fatal ? Error(ErrorCode::store_failed, reason + "; the store refuses writes until it is reopened")
                : Error(error.code(), reason));
      return;
    } catch (const Error& error) {
      out.group_error = std::make_exception_ptr(Error(error.code(), error.what()));
      return;
    } catch (const std::exception& error) {
      out.group_error = std::make_exception_ptr(Error(ErrorCode::internal, std::string("append failed: ") + error.what()));
      return;
    }
  }
}

bool WritePath::write_requests(MDB_txn* txn, std::vector<std::unique_ptr<AppendRequest>>& group, GroupOutcome& out) {
  // The health state, as every process on the store sees it now.
  const monitor::HealthRecord health = health_.read_and_adopt(txn);
  // A read replica (lib/replication) takes its events from its primary only.
  std::optional<Error> replica;
  if (const std::optional<std::string_view> replica_of = schema::read_replica_of(txn, dbs_)) {
    replica.emplace(ErrorCode::read_only, "store '" + env_.path().string() + "' is a read replica of " +
                                              std::string(*replica_of) +
                                              ": append to the primary, or promote this store (`lighthouse promote`)");
  } else {
    out.quorum = gate_.quorum_mode(txn);
  }
  WriteTxn write(txn, dbs_, options_, node_id_, now_ns());
  for (std::size_t i = 0; i < group.size(); ++i) {
    AppendRequest& request = *group[i];
    group_results_[i].clear();
    out.errors[i] = nullptr;
    if (replica) {
      out.errors[i] = std::make_exception_ptr(*replica);
      continue;
    }
    if (auto refused = health_.refusal(health, request.priority)) {
      out.errors[i] = std::make_exception_ptr(*refused);
      continue;
    }
    if (!request.one_batch) {
      write_several(txn, write, request, i, out);
      continue;
    }
    // Checks precede writes, so a failing batch has written nothing.
    try {
      group_results_[i].push_back(write.write(request.batches.front(), request.hashes.data(), request.stamp()));
    } catch (const Error& error) {
      if (!is_request_error(error)) throw;
      out.errors[i] = std::current_exception();
    }
  }
  return write.finish();  // the cursors close when `write` goes, before the commit
}

// Several batches, all or nothing: a nested transaction undoes the earlier
// batches when a later one fails.
void WritePath::write_several(MDB_txn* txn, WriteTxn& write, AppendRequest& request, std::size_t index,
                              GroupOutcome& out) {
  const schema::Counters saved = write.state();
  write.close_cursors();
  lmdb::Txn child(env_.get(), false, txn);
  write.use_txn(child.get());
  try {
    std::size_t offset = 0;
    for (std::size_t k = 0; k < request.batches.size(); ++k) {
      try {
        group_results_[index].push_back(
            write.write(request.batches[k], request.hashes.data() + offset, request.stamp()));
        offset += request.batches[k].events.size();
      } catch (Error& error) {
        if (!is_request_error(error)) throw;
        throw error.with_index(k);
      }
    }
    write.close_cursors();
    child.commit();
  } catch (const Error& error) {
    write.close_cursors();
    child.abort();
    write.use_txn(txn);
    if (!is_request_error(error)) throw;
    write.restore(saved);
    group_results_[index].clear();
    out.errors[index] = std::current_exception();
  }
  write.use_txn(txn);
}

WritePath::GroupTotals WritePath::committed_totals(const std::vector<std::unique_ptr<AppendRequest>>& group,
                                                   const GroupOutcome& out) const {
  GroupTotals t;
  if (out.group_error) return t;
  for (std::size_t i = 0; i < group.size(); ++i) {
    if (out.errors[i]) continue;
    for (const auto& r : group_results_[i]) {
      if (!r.replayed) t.events += r.events.size();
    }
    t.bytes += group[i]->bytes;
  }
  return t;
}

void WritePath::measure(const std::vector<std::unique_ptr<AppendRequest>>& group, const GroupOutcome& out) {
  if (!monitor_ || out.group_error || out.commit_ns == 0) return;
  const GroupTotals t = committed_totals(group, out);
  monitor_->record_group(out.transaction_ns, out.commit_ns, t.events, t.bytes);
}

void WritePath::complete(std::vector<std::unique_ptr<AppendRequest>>& group, const GroupOutcome& out) {
  std::uint64_t ended_ns = 0;
  for (std::size_t i = 0; i < group.size(); ++i) {
    std::exception_ptr error = out.errors[i];
    // Corruption met while checking a request is a health trigger: looked at
    // before its caller gets the exception (theirs to free afterwards).
    if (error) {
      with_error(error, [&](const Error& e) {
        if (e.code() == ErrorCode::corruption) health_.note_corruption(e.what());
      });
    }
    if (out.group_error) {
      // Each caller gets an exception object of its own: callers on other
      // threads must not share one (its message is reference-counted).
      with_error(out.group_error, [&](const Error& e) { error = std::make_exception_ptr(Error(e.code(), e.what())); });
    }
    if (monitor_) {
      if (error) with_error(error, [&](const Error& e) { monitor_->record_error(std::string(to_string(e.code()))); });
      monitor_->record_append(ns_since(group[i]->enqueued));
    }
    if (group[i]->span.recording()) {
      if (ended_ns == 0) ended_ns = tracing::now_ns();  // the group's append spans end together
      record_span_outcome(*group[i], error ? nullptr : &group_results_[i], error, out, ended_ns);
    }
    if (out.quorum && !error) {
      gate_.complete_or_hold(*group[i], group_results_[i]);  // once the stream acknowledged it
    } else {
      group[i]->complete(error ? nullptr : &group_results_[i], error);
    }
  }
}

// --- Tracing (Options::tracing.sink set) ----------------------------------------

void WritePath::start_append_span(AppendRequest& request, std::string_view operation) {
  const bool in_trace = tracing::current_context() != nullptr;
  // This thread only decides, and takes the IDs and the start; the
  // committer records the outcome (record_span_outcome) and the span is
  // described and ended when its request is freed (~AppendRequest).
  request.span = tracing::Span::deferred(options_.tracing, "append", tracing::SpanKind::producer);
  request.operation = operation;
  // The events carry the append's context (unless they carry their own),
  // for the deliveries that link to it: held in the request, hashed with
  // each event by enqueue and written into each record by the committer.
  if (request.span.recording() || in_trace) {
    request.trace_context = request.span.context().to_trace_context();
    codec::store_traceparent(request.span.context(), request.traceparent_bytes);
  }
  if (request.span.recording() && request.batches.size() == 1 && request.batches.front().events.size() == 1) {
    request.span_aggregate = request.batches.front().events.front().aggregate;
  }
}

tracing::Span WritePath::start_commit_span(const std::vector<std::unique_ptr<AppendRequest>>& group) {
  // The append spans' data is not made here: each is made, described and
  // ended in turn when its request is freed, one span's data at a time.
  const bool any = std::any_of(group.begin(), group.end(), [](const auto& r) { return r->span.recording(); });
  if (!any) return {};
  tracing::Span span = tracing::Span::recorded(options_.tracing, "commit", tracing::SpanKind::internal,
                                               tracing::Span::root);
  describe_db_operation(span, "commit", &env_.path());
  return span;
}

void WritePath::end_commit_span(tracing::Span& span, const std::vector<std::unique_ptr<AppendRequest>>& group,
                                GroupOutcome& out) {
  if (!span.recording()) return;
  const GroupTotals t = committed_totals(group, out);
  span.set("lighthouse.commit.appends", static_cast<std::int64_t>(group.size()));
  span.set("lighthouse.commit.events", static_cast<std::int64_t>(t.events));
  span.set("lighthouse.commit.bytes", static_cast<std::int64_t>(t.bytes));
  span.set("lighthouse.commit.transaction_ns", static_cast<std::int64_t>(out.transaction_ns));
  span.set("lighthouse.commit.sync_ns", static_cast<std::int64_t>(out.commit_ns));
  span.set("lighthouse.durability",
           std::string(options_.durability == Durability::sync ? "sync" : "no_meta_sync"));
  if (out.group_error) {
    with_error(out.group_error, [&](const Error& e) { span.set_error(to_string(e.code()), e.what()); });
  }
  out.commit_span = span.context();
  span.end();
}

void WritePath::record_span_outcome(AppendRequest& request, const std::vector<AppendResult>* results,
                                    const std::exception_ptr& error, const GroupOutcome& out, std::uint64_t end_ns) {
  AppendRequest::SpanOutcome& o = request.span_outcome.emplace();
  o.end_ns = end_ns;
  o.queue_ns = static_cast<std::int64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(out.taken - request.enqueued).count());
  o.commit = out.commit_span;  // invalid when the commit was not traced
  o.error = error;
  if (!error && results != nullptr) {
    for (const AppendResult& r : *results) {
      if (!o.first_sequence && !r.events.empty()) o.first_sequence = r.events.front().id.sequence;
      o.events += static_cast<std::int64_t>(r.events.size());
      o.replayed = o.replayed || r.replayed;
    }
  }
}

AppendRequest::~AppendRequest() {
  if (!span_outcome || !span.recording()) return;  // any other span ends as a member
  const SpanOutcome& o = *span_outcome;
  try {
    if (!o.error) {
      // Committed (or replayed): the few words of an AppendSpan, which the
      // sink may queue as they are and describe on its own thread.
      tracing::AppendSpan a;
      a.operation = operation;
      a.batch_events = static_cast<std::int64_t>(events);
      a.queue_ns = o.queue_ns;
      a.aggregate = std::move(span_aggregate);
      if (o.commit.valid()) {
        a.commit_trace_id = o.commit.trace_id;
        a.commit_span_id = o.commit.span_id;
        a.commit_flags = o.commit.flags;
      }
      a.has_first_sequence = o.first_sequence.has_value();
      a.first_sequence = o.first_sequence.value_or(0);
      a.events = o.events;
      a.replayed = o.replayed;
      span.end_append(o.end_ns, std::move(a));
      return;
    }
    // Failed: written straight into the data the sink gets
    // (Span::end_described), each key once, so pushed, not looked up.
    span.end_described(o.end_ns, [&](tracing::SpanData& d) {
      auto& a = d.attributes;
      describe_db_operation(d, operation);
      a.emplace_back("lighthouse.batch.events", static_cast<std::int64_t>(events));
      a.emplace_back("lighthouse.queue_time_ns", o.queue_ns);
      const bool aggregate = !span_aggregate.empty();
      if (aggregate) a.emplace_back("lighthouse.aggregate", std::move(span_aggregate));
      if (o.commit.valid()) d.links.emplace_back(tracing::SpanLink{o.commit, {}});
      with_error(o.error, [&](const Error& e) {
        d.status = tracing::StatusCode::error;
        d.status_message = e.what();
        a.emplace_back("error.type", std::string(to_string(e.code())));
        if (e.code() == ErrorCode::wrong_expected_version) {
          if (!aggregate) a.emplace_back("lighthouse.aggregate", e.aggregate());
          if (e.actual_version()) {
            a.emplace_back("lighthouse.actual_version", static_cast<std::int64_t>(*e.actual_version()));
          }
        }
      });
    });
  } catch (...) {
    // Out of memory while describing it: the span ends (as a member) undescribed.
  }
}

}  // namespace lighthouse
