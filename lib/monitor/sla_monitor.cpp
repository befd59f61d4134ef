#include "monitor/sla_monitor.h"

#include "monitor/log.h"
#include <unistd.h>

#include <algorithm>
#include <new>

namespace lighthouse::monitor {

void Measures::clear() noexcept {
  for (Histogram* h : {&append, &queue_wait, &transaction, &commit, &query, &group_events}) h->clear();
  for (auto* c : {&events, &bytes, &transactions, &queries, &query_results}) c->store(0, std::memory_order_relaxed);
}

void MeasuresSnapshot::add(const Measures& m) {
  m.append.add_to(append);
  m.queue_wait.add_to(queue_wait);
  m.transaction.add_to(transaction);
  m.commit.add_to(commit);
  m.query.add_to(query);
  m.group_events.add_to(group_events);
  events += m.events.load(std::memory_order_relaxed);
  bytes += m.bytes.load(std::memory_order_relaxed);
  transactions += m.transactions.load(std::memory_order_relaxed);
  queries += m.queries.load(std::memory_order_relaxed);
  query_results += m.query_results.load(std::memory_order_relaxed);
}

LatencySummary summarize(const Histogram::Snapshot& s) {
  LatencySummary out;
  out.count = s.count;
  if (s.count == 0) return out;
  out.p50 = s.quantile(0.50) / 1e9;
  out.p90 = s.quantile(0.90) / 1e9;
  out.p99 = s.quantile(0.99) / 1e9;
  out.p999 = s.quantile(0.999) / 1e9;
  out.max = static_cast<double>(s.max) / 1e9;
  return out;
}

SlaMonitor::SlaMonitor(SlaTargets targets, NowNs now)
    : targets_(targets), now_(std::move(now)), opened_ns_(now_()) {}

SlaMonitor::~SlaMonitor() = default;

SlaMonitor::Ring::~Ring() {
  for (auto& cell : slots) delete cell.load(std::memory_order_relaxed);
}

// The slot for time `t`, allocated on first use and cleared first when it
// last held an older period. Lock-free unless the slot must be allocated or
// recycled, at most once per slot period.
Measures* SlaMonitor::slot(Ring& ring, std::uint64_t t) noexcept {
  const std::uint64_t epoch = t / ring.slot_ns;
  std::atomic<Slot*>& cell = ring.slots[epoch % ring.slots.size()];
  Slot* s = cell.load(std::memory_order_acquire);
  if (s == nullptr || s->epoch.load(std::memory_order_acquire) != epoch) {
    std::lock_guard lock(rotate_mutex_);
    s = cell.load(std::memory_order_relaxed);
    if (s == nullptr) {
      s = new (std::nothrow) Slot;
      if (s == nullptr) return nullptr;
      s->epoch.store(epoch, std::memory_order_relaxed);
      cell.store(s, std::memory_order_release);
    } else if (s->epoch.load(std::memory_order_relaxed) != epoch) {
      s->m.clear();
      s->epoch.store(epoch, std::memory_order_release);
    }
  }
  return &s->m;
}

template <typename F>
void SlaMonitor::each(F&& record) noexcept {
  const std::uint64_t t = now_();
  if (Measures* m = slot(ten_, t)) record(*m);
  if (Measures* m = slot(sixty_, t)) record(*m);
  record(total_);
}

void SlaMonitor::record_append(std::uint64_t ns) noexcept {
  each([&](Measures& m) { m.append.record(ns); });
}
void SlaMonitor::record_queue_wait(std::uint64_t ns) noexcept {
  each([&](Measures& m) { m.queue_wait.record(ns); });
}
void SlaMonitor::record_group(std::uint64_t txn_ns, std::uint64_t commit_ns, std::uint64_t events,
                              std::uint64_t bytes) noexcept {
  each([&](Measures& m) {
    m.transaction.record(txn_ns);
    m.commit.record(commit_ns);
    m.group_events.record(events);
    m.events.fetch_add(events, std::memory_order_relaxed);
    m.bytes.fetch_add(bytes, std::memory_order_relaxed);
    m.transactions.fetch_add(1, std::memory_order_relaxed);
  });
}
void SlaMonitor::record_query(std::uint64_t ns, std::uint64_t results) noexcept {
  each([&](Measures& m) {
    m.query.record(ns);
    m.queries.fetch_add(1, std::memory_order_relaxed);
    m.query_results.fetch_add(results, std::memory_order_relaxed);
  });
}

void SlaMonitor::sample_backlog(std::uint64_t queued, std::uint64_t oldest_age_ns) {
  std::lock_guard lock(mutex_);
  const std::uint64_t t = now_();
  backlog_now_ = queued;
  backlog_oldest_ns_ = oldest_age_ns;
  // One sample a second, the last six kept.
  if (backlog_.empty() || t - backlog_.back().first >= 1'000'000'000ull) {
    backlog_.emplace_back(t, queued);
    if (backlog_.size() > 6) backlog_.erase(backlog_.begin());
  } else {
    backlog_.back().second = std::max(backlog_.back().second, queued);
  }
}

MeasuresSnapshot SlaMonitor::window(const Ring& ring, std::uint64_t t) const {
  MeasuresSnapshot s;
  const std::uint64_t now_epoch = t / ring.slot_ns;
  for (const auto& cell : ring.slots) {
    const Slot* slot = cell.load(std::memory_order_acquire);
    if (slot == nullptr) continue;
    const std::uint64_t epoch = slot->epoch.load(std::memory_order_acquire);
    if (epoch <= now_epoch && now_epoch - epoch < ring.slots.size()) s.add(slot->m);
  }
  return s;
}

MeasuresSnapshot SlaMonitor::since_open() const {
  MeasuresSnapshot s;
  s.add(total_);
  return s;
}

SlaReport SlaMonitor::report() {
  const std::uint64_t t = now_();
  SlaReport r;
  r.targets = targets_;
  r.pid = ::getpid();
  auto fill = [](double seconds, const MeasuresSnapshot& s) {
    SlaWindow w;
    w.seconds = seconds;
    w.append = summarize(s.append);
    w.queue_wait = summarize(s.queue_wait);
    w.transaction = summarize(s.transaction);
    w.commit = summarize(s.commit);
    w.query = summarize(s.query);
    w.events = s.events;
    w.bytes = s.bytes;
    w.transactions = s.transactions;
    w.queries = s.queries;
    w.query_results = s.query_results;
    w.events_per_second = seconds > 0 ? static_cast<double>(s.events) / seconds : 0;
    return w;
  };
  const double open_seconds = std::max(1e-9, static_cast<double>(t - opened_ns_) / 1e9);
  const double ten = std::min(10.0, open_seconds), sixty = std::min(60.0, open_seconds);
  r.windows.push_back(fill(ten, window(ten_, t)));
  r.windows.push_back(fill(sixty, window(sixty_, t)));
  r.windows.push_back(fill(open_seconds, since_open()));

  const SlaWindow& recent = r.windows.front();
  r.breaches = breaches(recent.append, recent.seconds, recent.events_per_second, t);
  {
    std::lock_guard lock(mutex_);
    r.backlog = backlog_now_;
    r.backlog_oldest_seconds = static_cast<double>(backlog_oldest_ns_) / 1e9;
  }
  r.written_ns = t;
  return r;
}

SlaMonitor::Evaluation SlaMonitor::evaluate() {
  const std::uint64_t t = now_();
  Histogram::Snapshot append;
  double events = 0;
  const std::uint64_t now_epoch = t / ten_.slot_ns;
  for (const auto& cell : ten_.slots) {
    const Slot* slot = cell.load(std::memory_order_acquire);
    if (slot == nullptr) continue;
    const std::uint64_t epoch = slot->epoch.load(std::memory_order_acquire);
    if (epoch <= now_epoch && now_epoch - epoch < ten_.slots.size()) {
      slot->m.append.add_to(append);
      events += static_cast<double>(slot->m.events.load(std::memory_order_relaxed));
    }
  }
  const double seconds = std::min(10.0, std::max(1e-9, static_cast<double>(t - opened_ns_) / 1e9));
  Evaluation e;
  e.append = summarize(append);
  e.breaches = breaches(e.append, seconds, events / seconds, t);
  return e;
}

std::vector<SlaBreach> SlaMonitor::breaches(const LatencySummary& recent, double seconds, double rate,
                                            std::uint64_t t) {
  std::vector<SlaBreach> found;
  if (recent.count >= targets_.min_samples && recent.p99 > targets_.append_p99_seconds) {
    found.push_back({"append_latency", "append p99 " + std::to_string(recent.p99 * 1000) + " ms over the last " +
                                           std::to_string(seconds) + " s (" + std::to_string(recent.count) +
                                           " appends) is over the target " +
                                           std::to_string(targets_.append_p99_seconds * 1000) + " ms"});
  }
  std::vector<SlaBreachCallback> callbacks;
  std::vector<SlaBreach> started;
  {
    std::lock_guard lock(mutex_);
    // A backlog that grew at each of the last five one-second samples while
    // its oldest append waited longer than the latency target: the store
    // does not keep up with what is offered. A low rate alone is no breach.
    bool growing = backlog_.size() >= 6;
    for (std::size_t i = 1; growing && i < backlog_.size(); ++i) {
      growing = backlog_[i].second > backlog_[i - 1].second;
    }
    const double oldest = static_cast<double>(backlog_oldest_ns_) / 1e9;
    if (growing && oldest > targets_.append_p99_seconds) {
      found.push_back({"backlog", "the append backlog grew for 5 s to " + std::to_string(backlog_now_) +
                                      " (oldest waiting " + std::to_string(oldest) + " s) at " +
                                      std::to_string(rate) + " events/s"});
    }
    std::vector<std::string> now_active;
    for (const auto& b : found) {
      now_active.push_back(b.kind);
      if (std::find(active_.begin(), active_.end(), b.kind) == active_.end()) {
        started.push_back(b);
        auto& logged = last_logged_[b.kind];
        if (logged == 0 || t - logged >= 10'000'000'000ull) {
          logged = t;
          log().warn("lighthouse SLA breach ({}): {}", b.kind, b.detail);
        }
      }
    }
    active_ = std::move(now_active);
    callbacks = callbacks_;
  }
  for (const auto& b : started) {
    for (const auto& cb : callbacks) {
      // A host's callback must not take the committer (or the process) down.
      try {
        cb(b);
      } catch (const std::exception& error) {
        log().error("lighthouse SLA: a breach callback threw: {}", error.what());
      } catch (...) {
        log().error("lighthouse SLA: a breach callback threw");
      }
    }
  }
  return found;
}

void SlaMonitor::on_breach(SlaBreachCallback callback) {
  std::lock_guard lock(mutex_);
  callbacks_.push_back(std::move(callback));
}

void SlaMonitor::record_error(const std::string& code) {
  std::lock_guard lock(mutex_);
  ++errors_[code];
}

std::uint64_t SlaMonitor::errors(const std::string& code) const {
  std::lock_guard lock(mutex_);
  auto it = errors_.find(code);
  return it == errors_.end() ? 0 : it->second;
}

std::map<std::string, std::uint64_t> SlaMonitor::error_counts() const {
  std::lock_guard lock(mutex_);
  return errors_;
}

}  // namespace lighthouse::monitor
