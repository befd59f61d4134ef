// Every method of Store, each handing its work to the part of Store::Impl
// that owns it (store/store_impl.h lists them) — except truncate_before(),
// which needs an archive: lib/archive/truncation.cpp.
#include "lighthouse/store.h"

#include "monitor/prometheus.h"
#include "store/backup.h"
#include "store/damage_mark.h"
#include "store/salvage.h"
#include "store/upgrade.h"
#include "store/event_cursor.h"
#include "store/repair.h"
#include "store/retention.h"
#include "store/store_impl.h"
#include "store/validation.h"
#include "store/verify.h"
#include "task_span.h"

namespace lighthouse {

Store Store::open(const std::filesystem::path& path, const Options& options) {
  return Store(Impl::open(path, options), options.read_only);
}

Store::Store(std::shared_ptr<Impl> impl, bool read_only_handle)
    : impl_(std::move(impl)), read_only_handle_(read_only_handle) {}

Store::~Store() = default;
Store::Store(const Store&) = default;
Store& Store::operator=(const Store&) = default;
Store::Store(Store&&) noexcept = default;
Store& Store::operator=(Store&&) noexcept = default;

Store::Impl& Store::impl() const {
  if (!impl_) throw Error(ErrorCode::closed, "this Store handle was moved from: it has no store");
  return *impl_;
}

// A moved-from handle has no store: an empty path and default options.
const std::filesystem::path& Store::path() const noexcept {
  static const std::filesystem::path kNone;
  return impl_ ? impl_->path() : kNone;
}

const Options& Store::options() const noexcept {
  static const Options kNone;
  return impl_ ? impl_->options() : kNone;
}

void Store::close() {
  if (!impl_) return;
  impl().refuse_on_committer_thread("close()");
  impl().shutdown();
}

// --- Appends: WritePath ----------------------------------------------------------

namespace {

Batch single_event_batch(EventData event, ExpectedVersion expected, Priority priority) {
  Batch batch;
  batch.priority = priority;
  if (expected.kind() != ExpectedVersion::Kind::any) {
    if (event.aggregate.empty()) {
      throw Error(ErrorCode::invalid_argument,
                  "expected version " + expected.to_string() + " given for an event without aggregate");
    }
    batch.expectations.push_back({event.aggregate, expected});
  }
  batch.events.push_back(std::move(event));
  return batch;
}

}  // namespace

AppendResult Store::append(EventData event, ExpectedVersion expected, Priority priority) {
  return append_batch(single_event_batch(std::move(event), expected, priority));
}

AppendResult Store::append_batch(Batch batch) {
  impl().refuse_read_only(read_only_handle_);
  impl().refuse_on_committer_thread("append (which waits for its commit)");
  return impl().writer().submit(std::move(batch), false).get();
}

AppendResult Store::append_batch(std::vector<EventData> events, std::vector<AggregateExpectation> expectations) {
  Batch batch;
  batch.events = std::move(events);
  batch.expectations = std::move(expectations);
  return append_batch(std::move(batch));
}

std::vector<AppendResult> Store::append_batches(std::vector<Batch> batches) {
  impl().refuse_read_only(read_only_handle_);
  if (batches.empty()) return {};
  impl().refuse_on_committer_thread("append_batches (which waits for its commit)");
  return impl().writer().submit(std::move(batches), false).get();
}

std::future<AppendResult> Store::append_async(EventData event, ExpectedVersion expected, Priority priority) {
  return append_batch_async(single_event_batch(std::move(event), expected, priority));
}

std::future<AppendResult> Store::append_batch_async(Batch batch) {
  impl().refuse_read_only(read_only_handle_);
  return impl().writer().submit(std::move(batch), false);
}

// --- Reads: ReadPath ---------------------------------------------------------------

RecordedEvent Store::get(const EventId& id) const { return impl().reader().get(id); }

EventCursor Store::query(const Query& query) const {
  return EventCursor(impl().reader().open_cursor(impl_, ReadRequest::of(query)));
}

QueryPlan Store::explain(const Query& query) const { return impl().reader().explain(ReadRequest::of(query)); }

EventCursor Store::read_aggregate(const std::string& aggregate, std::uint64_t from_version,
                                  std::uint64_t to_version) const {
  return EventCursor(impl().reader().open_cursor(impl_, ReadRequest::aggregate(aggregate, from_version, to_version)));
}

StoreStats Store::stats() const {
  StoreStats s = impl().stats();
  s.read_only = s.read_only || read_only_handle_;
  return s;
}

// --- Monitoring: SlaMonitor, metrics ---------------------------------------------

SlaReport Store::sla_report() const {
  auto lock = impl().env().use();
  if (!impl().monitor()) return {};
  SlaReport r = impl().monitor()->report();
  r.backlog = impl().backlog();
  return r;
}

void Store::on_sla_breach(SlaBreachCallback callback) {
  auto lock = impl().env().use();
  if (impl().monitor()) impl().monitor()->on_breach(std::move(callback));
}

std::string Store::metrics_text() const {
  const StoreStats s = stats();
  const HealthStatus status = health();
  auto lock = impl().env().use();
  monitor::MeasuresSnapshot measures;
  std::map<std::string, std::uint64_t> errors;
  if (impl().monitor()) {
    measures = impl().monitor()->since_open();
    errors = impl().monitor()->error_counts();
  }
  std::string text = monitor::prometheus_text(s, measures, errors, impl().env().readers_in_use(), status);
  Store self(impl_, true);
  return text + impl().hub().metrics(self, impl().reader().last_event_id());
}

std::string Store::persisted_sla() const {
  auto lock = impl().env().use();
  auto read = impl().env().begin_read();
  std::string_view json;
  if (!lmdb::get(read->get(), impl().dbs().meta, schema::meta::kSlaReport, json)) return "";
  return std::string(json);
}

std::string Store::persisted_metrics_text() const {
  const StoreStats s = stats();
  monitor::MeasuresSnapshot measures;
  std::map<std::string, std::uint64_t> errors;
  const std::string json = persisted_sla();
  if (!json.empty()) monitor::parse_measures_json(json, measures, errors);
  const HealthStatus status = health();
  auto lock = impl().env().use();
  return monitor::prometheus_text(s, measures, errors, impl().env().readers_in_use(), status);
}

// --- Integrity: verify, repair, backup ----------------------------------------

VerifyReport Store::verify(const VerifyOptions& options) const {
  return traced_task(impl().options(), "verify", impl().path(), [&](tracing::Span* span) {
    auto lock = impl().env().use();
    VerifyReport report = verify_store(impl().env(), impl().dbs(), options);
    // A clean store ends the corruption trigger of the health state.
    if (report.ok()) impl().health().clear_corruption();
    if (span) {
      span->set("lighthouse.events", static_cast<std::int64_t>(report.events_checked));
      span->set("lighthouse.pages", static_cast<std::int64_t>(report.pages_checked));
      span->set("lighthouse.problems", static_cast<std::int64_t>(report.problem_count));
      if (!report.ok()) span->set_error("corruption", std::to_string(report.problem_count) + " problems found");
    }
    return report;
  });
}

VerifyReport Store::check_file(const std::filesystem::path& path) { return check_store_file(path); }

RepairReport Store::repair() {
  impl().refuse_read_only(read_only_handle_);
  return traced_task(impl().options(), "repair", impl().path(), [&](tracing::Span* span) {
    RepairReport report = repair_untraced();
    if (span) {
      span->set("lighthouse.events", static_cast<std::int64_t>(report.events_indexed));
      if (!report.refused.empty()) span->set_error("corruption", report.refused);
    }
    return report;
  });
}

RepairReport Store::repair_untraced() {
  RepairReport report;
  report.before = verify();  // the structural check first
  if (structure_damaged(report.before)) {
    report.after = report.before;
    report.refused = "the LMDB file's own structure is damaged: rebuilding the indexes would write through it (LMDB "
                     "would reuse live pages); copy out what can be read with `lighthouse salvage " +
                     impl().path().string() + " DEST` and use the new store";
    return report;
  }
  // The structure is whole: a mark an earlier verify left no longer holds.
  damage_mark::clear(impl().path());
  WritePath& writer = impl().writer();
  writer.run_exclusive(ExclusiveTask::repair, [&] { rebuild_indexes(writer, impl().dbs(), report); });
  report.after = verify();
  return report;
}

BackupReport Store::backup(const std::filesystem::path& destination) const {
  return traced_task(impl().options(), "backup", impl().path(), [&](tracing::Span* span) {
    BackupReport report = backup_store(impl().env(), impl().options(), destination);
    if (span) {
      span->set("lighthouse.destination", destination.string());
      span->set("lighthouse.events", static_cast<std::int64_t>(report.events));
      span->set("lighthouse.bytes", static_cast<std::int64_t>(report.bytes));
    }
    return report;
  });
}

CompactReport Store::compact(const std::filesystem::path& path) { return compact_store(path); }

UpgradeReport Store::upgrade(const std::filesystem::path& path) { return upgrade_store(path); }

SalvageReport Store::salvage(const std::filesystem::path& damaged, const std::filesystem::path& destination) {
  return salvage_store(damaged, destination);
}

// --- Subscriptions and checkpoints: SubscriptionHub, Checkpoints ------------------

Subscription Store::subscribe(const Query& filter, SubscriptionStart start, EventHandler handler,
                              const SubscribeOptions& options) {
  return impl().hub().subscribe(impl_, read_only_handle_, filter, start, std::move(handler), options);
}

std::optional<EventId> Store::checkpoint(const std::string& consumer) const {
  validation::check_consumer(consumer);
  return impl().reader().checkpoint(consumer);
}

void Store::set_checkpoint(const std::string& consumer, const EventId& position) {
  validation::check_consumer(consumer);
  impl().refuse_read_only(read_only_handle_);
  impl().checkpoints().write(consumer, position, true);
}

// --- Health: HealthController --------------------------------------------------

HealthStatus Store::health() const {
  auto lock = impl().env().use();
  return impl().health().status();
}

void Store::enter_emergency(const std::string& reason) {
  impl().refuse_read_only(read_only_handle_);
  if (reason.empty()) {
    throw Error(ErrorCode::invalid_argument, "enter_emergency needs a reason (it is recorded for operators)");
  }
  if (reason.size() > 1024 || !validation::is_valid_utf8(reason)) {
    throw Error(ErrorCode::invalid_argument, "an emergency reason must be 1 to 1024 bytes of UTF-8");
  }
  impl().writer().refuse_if_damaged();  // it could not be recorded
  impl().writer().run_exclusive(ExclusiveTask::health, [&] { impl().health().enter_emergency(reason); });
}

void Store::clear_emergency() {
  impl().refuse_read_only(read_only_handle_);
  impl().writer().refuse_if_damaged();
  impl().writer().run_exclusive(ExclusiveTask::health, [&] { impl().health().clear_emergency(); });
}

HealthStatus Store::evaluate_health() {
  impl().refuse_read_only(read_only_handle_);
  HealthStatus status;
  impl().writer().run_exclusive(ExclusiveTask::health, [&] { status = impl().health().evaluate(); }, true);
  return status;
}

void Store::on_health_change(HealthCallback callback) { impl().health().on_change(std::move(callback)); }

}  // namespace lighthouse
