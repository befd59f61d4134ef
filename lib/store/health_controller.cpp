#include "store/health_controller.h"

#include <signal.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>

#include "monitor/log.h"

namespace lighthouse {
namespace {

// Whether another process `pid` runs (this process counts as not running:
// its earlier open of the store is gone).
bool process_alive(std::int64_t pid) {
  if (pid <= 0 || pid == ::getpid()) return false;
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno == EPERM;
}

}  // namespace

HealthController::HealthController(const Environment& env, const Databases& dbs, const Options& options,
                                   monitor::SlaMonitor* monitor, Effects effects)
    : env_(env), dbs_(dbs), options_(options), monitor_(monitor), effects_(std::move(effects)) {}

monitor::HealthRecord HealthController::read_health(MDB_txn* txn) const {
  std::string_view bytes;
  if (!lmdb::get(txn, dbs_.meta, schema::meta::kHealth, bytes)) return {};
  // Read in every write transaction: decoded once per change.
  std::lock_guard lock(record_mutex_);
  if (bytes != record_bytes_) {
    record_bytes_ = bytes;
    // A damaged record must not stop the store: it reads as healthy.
    record_ = monitor::decode_health(bytes).value_or(monitor::HealthRecord{});
  }
  return record_;
}

monitor::HealthRecord HealthController::read_and_adopt(MDB_txn* txn) const {
  monitor::HealthRecord record = read_health(txn);
  adopt(record);
  return record;
}

monitor::HealthRecord HealthController::recorded() const {
  auto read = env_.begin_read();
  return read_health(read->get());
}

monitor::HealthRecord HealthController::current() const {
  try {
    return recorded();
  } catch (const Error&) {
    std::lock_guard lock(mutex_);
    if (unrecorded_) return *unrecorded_;
    throw;
  }
}

std::size_t HealthController::group_bound(HealthState state) const {
  return state == HealthState::degraded ? options_.health.degraded_max_group_events : options_.max_group_events;
}

void HealthController::adopt(const monitor::HealthRecord& record) const {
  const auto state = static_cast<std::uint8_t>(record.state);
  // Called for every group: no lock while the state stays what it was.
  if (cache_.load(std::memory_order_relaxed) == state) return;
  // The cache and the group bound change together.
  std::lock_guard lock(adopt_mutex_);
  if (cache_.exchange(state, std::memory_order_relaxed) == state) return;
  if (effects_.bound_groups) effects_.bound_groups(group_bound(record.state));
}

monitor::HealthRecord HealthController::with_unrecorded(monitor::HealthRecord record) const {
  std::lock_guard lock(mutex_);
  if (unrecorded_ && unrecorded_->state > record.state) return *unrecorded_;
  return record;
}

std::optional<Error> HealthController::refusal(const monitor::HealthRecord& record, Priority priority) const {
  const std::string why = record.reason.empty() ? "" : " (" + record.reason + ")";
  const std::string store = "store '" + env_.path().string() + "'";
  if (record.state == HealthState::emergency) {
    return Error(ErrorCode::emergency, store + " is in emergency" + why + ": appends are refused until it clears");
  }
  if (record.state == HealthState::degraded && priority < options_.health.degraded_min_priority) {
    return Error(ErrorCode::degraded, store + " is degraded" + why + ": appends of priority '" +
                                          std::string(to_string(priority)) + "' are shed (it admits '" +
                                          std::string(to_string(options_.health.degraded_min_priority)) +
                                          "' and above)");
  }
  return std::nullopt;
}

void HealthController::admit(Priority priority) const {
  // The cached state is cheap; a state that refuses is confirmed from the
  // store, since another process may have cleared it meanwhile. A state set
  // by another process after this is caught inside the write transaction.
  if (cache_.load(std::memory_order_relaxed) < static_cast<std::uint8_t>(HealthState::degraded)) return;
  const monitor::HealthRecord record = current();
  adopt(record);
  if (auto error = refusal(record, priority)) {
    if (monitor_) monitor_->record_error(std::string(to_string(error->code())));
    throw *error;
  }
}

void HealthController::start() {
  {
    std::lock_guard lock(mutex_);
    hysteresis_ = monitor::Hysteresis(options_.health.enter_after, options_.health.leave_after);
  }
  monitor::HealthRecord record = recorded();
  if (!options_.read_only && record.failure && !process_alive(record.pid)) {
    // The process whose store failed has ended (or this process reopened
    // the store): its failure no longer holds.
    record_transition(record, HealthState::healthy, "the store was reopened after: " + record.reason, {}, false);
    record = recorded();
  }
  // A state this process inherits is left only after leave_after windows.
  if (!record.manual) {
    std::lock_guard lock(mutex_);
    hysteresis_.reset(record.state);
  }
  adopt(record);
}

void HealthController::note_corruption(const std::string& detail) const {
  if (options_.read_only) return;
  std::lock_guard lock(mutex_);
  if (corruption_.empty()) corruption_ = detail;
}

void HealthController::clear_corruption() const {
  std::lock_guard lock(mutex_);
  corruption_.clear();
}

void HealthController::note_replication_lag(std::optional<ReplicationLag> lag) {
  std::lock_guard lock(mutex_);
  replication_lag_ = std::move(lag);
}

monitor::HealthInputs HealthController::inputs() {
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
    in.map_usage = static_cast<double>(env_.map_used_bytes()) / static_cast<double>(options_.max_map_size);
  }
  struct statvfs fs;
  if (::statvfs(env_.path().c_str(), &fs) == 0 && fs.f_blocks != 0) {
    in.disk_free = static_cast<double>(fs.f_bavail) / static_cast<double>(fs.f_blocks);
    in.disk_free_bytes = static_cast<std::uint64_t>(fs.f_bavail) * fs.f_frsize;
  }
  in.failure = env_.failure();
  std::lock_guard lock(mutex_);
  in.corruption = corruption_;
  if (replication_lag_) {
    in.replication_stream = replication_lag_->stream;
    in.replication_lag_events = replication_lag_->events;
    in.replication_lag_seconds = replication_lag_->seconds;
  }
  return in;
}

void HealthController::record_transition(const monitor::HealthRecord& from, HealthState to, const std::string& reason,
                                         const std::map<std::string, double>& figures, bool manual, bool failure) {
  HealthTransition t;
  t.from = from.state;
  t.to = to;
  t.reason = reason;
  t.figures = figures;
  t.manual = manual;
  t.at_ns = effects_.now_ns();
  monitor::HealthRecord record;
  record.state = to;
  record.reason = reason;
  record.since_ns = t.at_ns;
  record.manual = manual;
  record.failure = failure;
  record.pid = ::getpid();
  const std::string& path = env_.path().string();
  try {
    t.event_id = effects_.write(record, t);
    std::lock_guard lock(mutex_);
    unrecorded_.reset();
  } catch (const std::exception& error) {
    {
      std::lock_guard lock(mutex_);
      unrecorded_ = record;
      unrecorded_transition_ = t;
    }
    // The state holds in this process even when it cannot be recorded (a
    // failed store): other processes see it once a later window writes it.
    monitor::log().error("lighthouse health: cannot record the transition {} -> {} in '{}': {}", to_string(t.from),
                         to_string(to), path, error.what());
  }
  adopt(record);
  if (to > t.from) {
    monitor::log().warn("lighthouse health: store '{}' {} -> {}: {}", path, to_string(t.from), to_string(to), reason);
  } else {
    monitor::log().info("lighthouse health: store '{}' {} -> {}: {}", path, to_string(t.from), to_string(to), reason);
  }
  std::vector<HealthCallback> callbacks;
  {
    std::lock_guard lock(mutex_);
    callbacks = callbacks_;
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

// A transition this process could not write counts as recorded here: it is
// not announced again; each window tries to write it, silently.
void HealthController::retry_unrecorded(const monitor::HealthRecord& stored) {
  if (with_unrecorded(stored).state == stored.state) return;
  std::optional<monitor::HealthRecord> held;
  HealthTransition transition;
  {
    std::lock_guard lock(mutex_);
    held = unrecorded_;
    transition = unrecorded_transition_;
  }
  if (!held) return;
  try {
    effects_.write(*held, transition);
    std::lock_guard lock(mutex_);
    unrecorded_.reset();
  } catch (const std::exception&) {
  }
}

HealthStatus HealthController::evaluate() {
  monitor::HealthRecord record;
  try {
    record = current();
  } catch (const Error&) {
    // Unreadable (MDB_PANIC): judge from healthy; the transition will not
    // be written, and holds in this process.
  }
  retry_unrecorded(record);
  record = with_unrecorded(record);
  if (options_.health.enabled) {
    const monitor::Proposal proposal = monitor::propose(inputs(), options_.health);
    HealthState level;
    {
      std::lock_guard lock(mutex_);
      level = hysteresis_.feed(proposal.state, proposal.immediate);
      proposal_ = proposal;
    }
    // A manual emergency is left only by hand. A process raises the state
    // when its triggers call for more; it lowers a state only when it
    // recorded it itself or the process that did has ended — a state another
    // live process holds is that process's to leave.
    if (!record.manual && level != record.state && (level > record.state || !process_alive(record.pid))) {
      std::string reason = level > HealthState::healthy ? proposal.reason : "";
      if (level < record.state) {
        reason = "cleared after " + std::to_string(options_.health.leave_after) + " windows" +
                 (record.reason.empty() ? "" : " (was: " + record.reason + ")") +
                 (reason.empty() ? "" : "; now: " + reason);
      }
      record_transition(record, level, reason, proposal.figures, false,
                        level == HealthState::emergency && proposal.immediate);
      record = with_unrecorded(current());
    }
  }
  adopt(record);
  return status_of(record);
}

HealthStatus HealthController::status_of(monitor::HealthRecord record) const {
  // A transition this process could not write still holds here.
  record = with_unrecorded(record);
  std::lock_guard lock(mutex_);
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

void HealthController::tick() noexcept {
  try {
    evaluate();
  } catch (const std::exception& error) {
    monitor::log().error("lighthouse health: evaluation failed for '{}': {}", env_.path().string(), error.what());
  }
}

HealthStatus HealthController::status() const {
  monitor::HealthRecord record = current();
  adopt(record);
  return status_of(record);
}

void HealthController::enter_emergency(const std::string& reason) {
  const monitor::HealthRecord record = recorded();
  if (record.manual && record.reason == reason) return;
  record_transition(record, HealthState::emergency, reason, {}, true);
}

void HealthController::clear_emergency() {
  const monitor::HealthRecord record = recorded();
  if (!record.manual) return;
  HealthState to = HealthState::healthy;
  std::string now;
  {
    std::lock_guard guard(mutex_);
    if (options_.health.enabled) {
      to = hysteresis_.level();
      now = proposal_.reason;
    }
  }
  record_transition(record, to,
                    "manual emergency cleared (was: " + record.reason + ")" +
                        (to > HealthState::healthy && !now.empty() ? "; now: " + now : ""),
                    {}, false);
}

void HealthController::on_change(HealthCallback callback) {
  std::lock_guard lock(mutex_);
  callbacks_.push_back(std::move(callback));
}

}  // namespace lighthouse
