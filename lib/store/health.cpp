// Health states: evaluation of the triggers in the committer thread, the
// state in `meta` obeyed by every process, and `$health.<to>` events.
#include <signal.h>
#include "monitor/log.h"
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>

#include "store/schema.h"
#include "store/store_impl.h"
#include "store/validation.h"
#include "store/write_txn.h"

namespace lighthouse {

namespace {

// Whether another process `pid` runs (this process counts as not running:
// its earlier Impl of the store is gone).
bool process_alive(std::int64_t pid) {
  if (pid <= 0 || pid == ::getpid()) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace

monitor::HealthRecord Store::Impl::read_health(MDB_txn* txn) const {
  std::string_view bytes;
  if (!lmdb::get(txn, dbs_.meta, schema::meta::kHealth, bytes)) return {};
  // Read in every write transaction: decoded once per change.
  std::lock_guard lock(health_record_mutex_);
  if (bytes != health_record_bytes_) {
    health_record_bytes_ = bytes;
    // A damaged record must not stop the store: it reads as healthy.
    health_record_ = monitor::decode_health(bytes).value_or(monitor::HealthRecord{});
  }
  return health_record_;
}

// The recorded state, or — when the store cannot be read any more (after
// MDB_PANIC) — the state this process holds but could not record.
monitor::HealthRecord Store::Impl::recorded_health() const {
  auto read = begin_read();
  return read_health(read->txn.get());
}

monitor::HealthRecord Store::Impl::current_health() const {
  try {
    return recorded_health();
  } catch (const Error&) {
    std::lock_guard lock(health_mutex_);
    if (unrecorded_) return *unrecorded_;
    throw;
  }
}

std::size_t Store::Impl::group_bound(HealthState state) const {
  return state == HealthState::degraded ? options_.health.degraded_max_group_events : options_.max_group_events;
}

void Store::Impl::adopt_health(const monitor::HealthRecord& record) const {
  const auto state = static_cast<std::uint8_t>(record.state);
  // Called for every group: no lock while the state stays what it was.
  if (health_cache_.load(std::memory_order_relaxed) == state) return;
  // The cache and the group bound change together.
  std::lock_guard lock(adopt_mutex_);
  if (health_cache_.exchange(state, std::memory_order_relaxed) == state) return;
  if (committer_) committer_->bound_group_events(group_bound(record.state));
}

monitor::HealthRecord Store::Impl::with_unrecorded(monitor::HealthRecord record) const {
  std::lock_guard lock(health_mutex_);
  if (unrecorded_ && unrecorded_->state > record.state) return *unrecorded_;
  return record;
}

std::optional<Error> Store::Impl::refusal(const monitor::HealthRecord& record, Priority priority) const {
  const std::string why = record.reason.empty() ? "" : " (" + record.reason + ")";
  if (record.state == HealthState::emergency) {
    return Error(ErrorCode::emergency, "store '" + path_.string() + "' is in emergency" + why +
                                           ": appends are refused until it clears");
  }
  if (record.state == HealthState::degraded && priority < options_.health.degraded_min_priority) {
    return Error(ErrorCode::degraded,
                 "store '" + path_.string() + "' is degraded" + why + ": appends of priority '" +
                     std::string(to_string(priority)) + "' are shed (it admits '" +
                     std::string(to_string(options_.health.degraded_min_priority)) + "' and above)");
  }
  return std::nullopt;
}

void Store::Impl::admit(const AppendRequest& request) const {
  // The cached state is cheap; a state that refuses is confirmed from the
  // store, since another process may have cleared it meanwhile. A state set
  // by another process after this is caught inside the write transaction.
  if (health_cache_.load(std::memory_order_relaxed) < static_cast<std::uint8_t>(HealthState::degraded)) return;
  const monitor::HealthRecord record = current_health();
  adopt_health(record);
  if (auto error = refusal(record, request.priority)) {
    if (monitor_) monitor_->record_error(std::string(to_string(error->code())));
    throw *error;
  }
}

void Store::Impl::start_health() {
  hysteresis_ = monitor::Hysteresis(options_.health.enter_after, options_.health.leave_after);
  monitor::HealthRecord record = recorded_health();
  if (!options_.read_only && record.failure && !process_alive(record.pid)) {
    // The process whose store failed has ended (or this process reopened
    // the store): its failure no longer holds.
    record_transition(record, HealthState::healthy, "the store was reopened after: " + record.reason, {}, false);
    record = recorded_health();
  }
  // A state this process inherits is left only after leave_after windows.
  if (!record.manual) hysteresis_.reset(record.state);
  adopt_health(record);
}

void Store::Impl::note_corruption(const std::string& detail) const {
  if (options_.read_only) return;
  std::lock_guard lock(health_mutex_);
  if (corruption_.empty()) corruption_ = detail;
}

void Store::Impl::clear_corruption() const {
  std::lock_guard lock(health_mutex_);
  corruption_.clear();
}

monitor::HealthInputs Store::Impl::health_inputs() {
  monitor::HealthInputs in;
  if (monitor_) {
    const auto evaluation = monitor_->evaluate();
    in.sla = true;
    in.append = evaluation.append;
    in.append_target_seconds = monitor_->targets().append_p99_seconds;
    in.min_samples = monitor_->targets().min_samples;
    for (const auto& breach : evaluation.breaches) {
      if (breach.kind == "append_latency") in.latency_breach = true;
      if (breach.kind == "backlog") {
        in.backlog_breach = true;
        in.backlog_detail = breach.detail;
      }
    }
  }
  if (options_.max_map_size != 0) {
    in.map_usage = static_cast<double>(map_used_bytes()) / static_cast<double>(options_.max_map_size);
  }
  struct statvfs fs;
  if (::statvfs(path_.c_str(), &fs) == 0 && fs.f_blocks != 0) {
    in.disk_free = static_cast<double>(fs.f_bavail) / static_cast<double>(fs.f_blocks);
    in.disk_free_bytes = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  }
  in.failure = failure();
  std::lock_guard lock(health_mutex_);
  in.corruption = corruption_;
  return in;
}

std::string Store::Impl::write_transition(const monitor::HealthRecord& record, const HealthTransition& t) {
  Batch batch;
  EventData event;
  event.type = "$health." + std::string(to_string(t.to));
  event.aggregate = "$health";
  event.content_type = ContentType::json;
  event.data = monitor::transition_json(t, record.pid);
  batch.events.push_back(std::move(event));
  std::string id;
  with_write_txn([&](MDB_txn* txn) {
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

void Store::Impl::record_transition(const monitor::HealthRecord& from, HealthState to, const std::string& reason,
                                    const std::map<std::string, double>& figures, bool manual, bool failure) {
  HealthTransition t;
  t.from = from.state;
  t.to = to;
  t.reason = reason;
  t.figures = figures;
  t.manual = manual;
  t.at_ns = now_ns();
  monitor::HealthRecord record;
  record.state = to;
  record.reason = reason;
  record.since_ns = t.at_ns;
  record.manual = manual;
  record.failure = failure;
  record.pid = ::getpid();

  try {
    t.event_id = write_transition(record, t);
    std::lock_guard lock(health_mutex_);
    unrecorded_.reset();
  } catch (const std::exception& error) {
    {
      std::lock_guard lock(health_mutex_);
      unrecorded_ = record;
      unrecorded_transition_ = t;
    }
    // The state holds in this process even when it cannot be recorded (a
    // failed store): other processes see it once a later window writes it.
    monitor::log().error("lighthouse health: cannot record the transition {} -> {} in '{}': {}",
                  to_string(t.from), to_string(to), path_.string(), error.what());
  }
  adopt_health(record);
  if (to > t.from) {
    monitor::log().warn("lighthouse health: store '{}' {} -> {}: {}", path_.string(), to_string(t.from), to_string(to),
                 reason);
  } else {
    monitor::log().info("lighthouse health: store '{}' {} -> {}: {}", path_.string(), to_string(t.from), to_string(to),
                 reason);
  }
  std::vector<HealthCallback> callbacks;
  {
    std::lock_guard lock(health_mutex_);
    callbacks = health_callbacks_;
  }
  for (const auto& callback : callbacks) {
    try {
      callback(t);
    } catch (const std::exception& error) {
      monitor::log().error("lighthouse health: a health callback threw: {}", error.what());
    } catch (...) {
      monitor::log().error("lighthouse health: a health callback threw");
    }
  }
}

HealthStatus Store::Impl::evaluate_health_in_committer() {
  monitor::HealthRecord record;
  try {
    record = current_health();
  } catch (const Error&) {
    // Unreadable (MDB_PANIC): judge from healthy; the transition will not
    // be written, and holds in this process.
  }
  // A transition this process could not write counts as recorded here: it
  // is not announced again; each window tries to write it, silently.
  const HealthState stored = record.state;
  record = with_unrecorded(record);
  if (record.state != stored) {
    std::optional<monitor::HealthRecord> held;
    HealthTransition transition;
    {
      std::lock_guard lock(health_mutex_);
      held = unrecorded_;
      transition = unrecorded_transition_;
    }
    if (held) {
      try {
        write_transition(*held, transition);
        std::lock_guard lock(health_mutex_);
        unrecorded_.reset();
      } catch (const std::exception&) {
      }
    }
  }
  if (options_.health.enabled) {
    const monitor::Proposal proposal = monitor::propose(health_inputs(), options_.health);
    HealthState level;
    {
      std::lock_guard lock(health_mutex_);
      level = hysteresis_.feed(proposal.state, proposal.immediate);
      proposal_ = proposal;
    }
    // A manual emergency is left only by hand. A process raises the state
    // when its triggers call for more; it lowers a state only when it
    // recorded it itself or the process that did has ended — a state another
    // live process holds is that process's to leave.
    if (!record.manual && level != record.state &&
        (level > record.state || !process_alive(record.pid))) {
      std::string reason = level > HealthState::healthy ? proposal.reason : "";
      if (level < record.state) {
        reason = "cleared after " + std::to_string(options_.health.leave_after) + " windows" +
                 (record.reason.empty() ? "" : " (was: " + record.reason + ")") +
                 (reason.empty() ? "" : "; now: " + reason);
      }
      record_transition(record, level, reason, proposal.figures, false,
                        level == HealthState::emergency && proposal.immediate);
      record = with_unrecorded(current_health());
    }
  }
  adopt_health(record);
  return status_of(record);
}

HealthStatus Store::Impl::status_of(monitor::HealthRecord record) const {
  // A transition this process could not write still holds here.
  record = with_unrecorded(record);
  std::lock_guard lock(health_mutex_);
  HealthStatus status;
  status.state = record.state;
  status.reason = record.reason;
  status.since_ns = record.since_ns;
  status.manual = record.manual;
  status.pid = record.pid;
  status.proposed = proposal_.state;
  status.proposed_reason = proposal_.reason;
  return status;
}

void Store::Impl::health_tick() noexcept {
  try {
    evaluate_health_in_committer();
  } catch (const std::exception& error) {
    monitor::log().error("lighthouse health: evaluation failed for '{}': {}", path_.string(), error.what());
  }
}

HealthStatus Store::Impl::health() const {
  auto lock = use();
  monitor::HealthRecord record = current_health();
  adopt_health(record);
  return status_of(record);
}

HealthStatus Store::Impl::evaluate_health() {
  refuse_read_only(false);
  HealthStatus status;
  run_exclusive([&] { status = evaluate_health_in_committer(); }, true);
  return status;
}

void Store::Impl::enter_emergency(const std::string& reason) {
  if (reason.empty()) {
    throw Error(ErrorCode::invalid_argument, "enter_emergency needs a reason (it is recorded for operators)");
  }
  if (reason.size() > 1024 || !validation::is_valid_utf8(reason)) {
    throw Error(ErrorCode::invalid_argument, "an emergency reason must be 1 to 1024 bytes of UTF-8");
  }
  refuse_read_only(false);
  run_exclusive([&] {
    const monitor::HealthRecord record = recorded_health();
    if (record.manual && record.reason == reason) return;
    std::map<std::string, double> figures;
    record_transition(record, HealthState::emergency, reason, figures, true);
  });
}

void Store::Impl::clear_emergency() {
  refuse_read_only(false);
  run_exclusive([&] {
    const monitor::HealthRecord record = recorded_health();
    if (!record.manual) return;
    HealthState to = HealthState::healthy;
    std::string now;
    {
      std::lock_guard guard(health_mutex_);
      if (options_.health.enabled) {
        to = hysteresis_.level();
        now = proposal_.reason;
      }
    }
    record_transition(record, to,
                      "manual emergency cleared (was: " + record.reason + ")" +
                          (to > HealthState::healthy && !now.empty() ? "; now: " + now : ""),
                      {}, false);
  });
}

void Store::Impl::on_health_change(HealthCallback callback) {
  std::lock_guard lock(health_mutex_);
  health_callbacks_.push_back(std::move(callback));
}

// Store's public health methods.

HealthStatus Store::health() const { return impl().health(); }

void Store::enter_emergency(const std::string& reason) {
  impl().refuse_read_only(read_only_handle_);
  impl().enter_emergency(reason);
}

void Store::clear_emergency() {
  impl().refuse_read_only(read_only_handle_);
  impl().clear_emergency();
}

HealthStatus Store::evaluate_health() {
  impl().refuse_read_only(read_only_handle_);
  return impl().evaluate_health();
}

void Store::on_health_change(HealthCallback callback) { impl().on_health_change(std::move(callback)); }

}  // namespace lighthouse
