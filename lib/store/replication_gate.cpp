#include "store/replication_gate.h"

#include <cstdio>
#include <utility>

#include "lighthouse/error.h"

namespace lighthouse {

namespace {

thread_local bool reads_past_mark = false;  // ReplicationGate::read_past_mark

// While appends wait and no replicator of this process moves the mark.
constexpr auto kPollInterval = std::chrono::milliseconds(2);

std::chrono::steady_clock::duration timeout_of(const Options& options) {
  const double seconds = options.quorum_timeout_seconds > 0 ? options.quorum_timeout_seconds : 0.0;
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
}

}  // namespace

ReplicationGate::ReplicationGate(const Environment& env, const Databases& dbs, const Options& options,
                                 std::function<void()> advanced)
    : env_(env), dbs_(dbs), options_(options), advanced_(std::move(advanced)) {}

ReplicationGate::~ReplicationGate() { stop(); }

void ReplicationGate::attach(std::uint64_t mark, std::function<void()> wake) {
  {
    std::lock_guard lock(mutex_);
    attached_ = true;
    wake_ = std::move(wake);
  }
  advance(mark);
}

void ReplicationGate::detach() noexcept {
  std::lock_guard lock(mutex_);
  attached_ = false;
  wake_ = nullptr;
  changed_.notify_all();  // the thread polls `meta` from now on
}

bool ReplicationGate::raise_mark(std::uint64_t mark) {
  std::uint64_t current = mark_.load(std::memory_order_relaxed);
  while (mark > current) {
    if (mark_.compare_exchange_weak(current, mark, std::memory_order_acq_rel)) return true;
  }
  return false;
}

void ReplicationGate::advance(std::uint64_t mark) {
  if (!raise_mark(mark)) return;
  std::vector<Held> done;
  {
    std::lock_guard lock(mutex_);
    release_up_to(mark, done);
  }
  for (Held& held : done) release(held);
  if (advanced_) advanced_();
}

void ReplicationGate::release_up_to(std::uint64_t mark, std::vector<Held>& done) {
  while (!held_.empty() && held_.begin()->first <= mark) {
    done.push_back(std::move(held_.begin()->second));
    held_.erase(held_.begin());
  }
}

void ReplicationGate::release(Held& held) {
  if (held.one_batch) {
    held.single->set_value(std::move(held.results.front()));
  } else {
    held.several->set_value(std::move(held.results));
  }
}

void ReplicationGate::fail(Held& held, const std::string& why) {
  const std::uint64_t last = held.last;
  std::string first_id;
  for (const AppendResult& r : held.results) {
    if (!r.events.empty()) {
      first_id = r.events.front().id.to_string();
      break;
    }
  }
  const std::string events = held.first == last ? "event " + std::to_string(last)
                                                : "events " + std::to_string(held.first) + " to " + std::to_string(last);
  auto error = std::make_exception_ptr(Error(
      ErrorCode::replication_pending,
      "the append of " + events + " (first ID " + first_id + ") is durable in store '" + env_.path().string() +
          "', but " + why + " (replication high-water mark: " + std::to_string(mark()) +
          "): it stays and will be replicated; retry it with the same idempotency key to get its events"));
  if (held.one_batch) {
    held.single->set_exception(error);
  } else {
    held.several->set_exception(error);
  }
}

std::optional<std::uint64_t> ReplicationGate::read_cap(MDB_txn* txn) const {
  if (reads_past_mark) return std::nullopt;
  const std::optional<std::uint64_t> stored = schema::read_high_water(txn, dbs_);
  if (!stored) return std::nullopt;
  // This process's replicator may know of later acknowledgements than
  // `meta` holds; never the other way round.
  return std::max(*stored, mark());
}

bool ReplicationGate::quorum_mode(MDB_txn* txn) {
  const std::optional<std::uint64_t> stored = schema::read_high_water(txn, dbs_);
  if (!stored) return false;
  if (*stored > mark()) advance(*stored);
  return true;
}

void ReplicationGate::complete_or_hold(AppendRequest& request, std::vector<AppendResult>& results) {
  std::uint64_t first = UINT64_MAX, last = 0;
  for (const AppendResult& r : results) {
    for (const AppendedEvent& e : r.events) {
      first = std::min(first, e.id.sequence);
      last = std::max(last, e.id.sequence);
    }
  }
  if (last <= mark()) {
    request.complete(&results, nullptr);
    return;
  }
  Held held;
  held.deadline = std::chrono::steady_clock::now() + timeout_of(options_);
  held.one_batch = request.one_batch;
  held.single = std::move(request.single);
  held.several = std::move(request.several);
  held.results = std::move(results);
  held.first = first;
  held.last = last;
  std::function<void()> wake;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) {
      fail(held, "the store closed before the stream acknowledged it");
      return;
    }
    held_.emplace(last, std::move(held));
    // The mark may have moved since it was read above.
    std::vector<Held> done;
    release_up_to(mark(), done);
    for (Held& h : done) release(h);
    if (!thread_.joinable()) thread_ = std::thread([this] { run(); });
    wake = wake_;
    changed_.notify_all();
  }
  if (wake) wake();
}

std::optional<std::uint64_t> ReplicationGate::read_meta_mark() const {
  try {
    auto lock = env_.use();
    auto read = env_.begin_read();
    return schema::read_high_water(read->get(), dbs_);
  } catch (const std::exception&) {
    return std::nullopt;  // closing, or a damaged value: the deadline decides
  }
}

void ReplicationGate::run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    auto until = std::chrono::steady_clock::time_point::max();
    for (const auto& entry : held_) until = std::min(until, entry.second.deadline);
    const bool polling = !attached_ && !held_.empty();
    if (polling) until = std::min(until, std::chrono::steady_clock::now() + kPollInterval);
    if (held_.empty()) {
      changed_.wait(lock);
    } else {
      changed_.wait_until(lock, until);
    }
    if (stopping_) break;
    if (!attached_ && !held_.empty()) {
      lock.unlock();
      if (const auto stored = read_meta_mark()) advance(*stored);
      lock.lock();
    }
    const auto now = std::chrono::steady_clock::now();
    std::vector<Held> expired;
    for (auto it = held_.begin(); it != held_.end();) {
      if (it->second.deadline <= now) {
        expired.push_back(std::move(it->second));
        it = held_.erase(it);
      } else {
        ++it;
      }
    }
    if (!expired.empty()) {
      char seconds[32];
      std::snprintf(seconds, sizeof seconds, "%g", options_.quorum_timeout_seconds);
      const std::string why = "the stream did not acknowledge it within " + std::string(seconds) + " s" +
                              (attached_ ? "" : " (no replicator of this process: the mark is read from the store)");
      lock.unlock();
      for (Held& held : expired) fail(held, why);
      lock.lock();
    }
  }
}

void ReplicationGate::stop() noexcept {
  std::multimap<std::uint64_t, Held> left;
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
    left.swap(held_);
    changed_.notify_all();
  }
  if (thread_.joinable()) thread_.join();
  for (auto& entry : left) fail(entry.second, "the store closed before the stream acknowledged it");
}

void ReplicationGate::read_past_mark() noexcept { reads_past_mark = true; }

std::size_t ReplicationGate::held() const {
  std::lock_guard lock(mutex_);
  return held_.size();
}

}  // namespace lighthouse
