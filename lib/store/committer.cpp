#include "store/committer.h"

#include <pthread.h>

#include <algorithm>

namespace lighthouse {

Committer::Committer(CommitterLimits limits, CommitGroup commit_group, ObserveBacklog observe,
                     Tick tick, std::chrono::nanoseconds tick_interval)
    : limits_(limits),
      commit_group_(std::move(commit_group)),
      observe_(std::move(observe)),
      tick_(std::move(tick)),
      tick_interval_(tick_interval),
      configured_max_events_(limits.max_group_events),
      thread_([this] { run(); }) {}

void Committer::bound_group_events(std::size_t events) {
  std::lock_guard lock(mutex_);
  limits_.max_group_events = std::max<std::size_t>(1, std::min(events, configured_max_events_));
}

Committer::~Committer() { stop(); }

void Committer::submit(std::unique_ptr<AppendRequest> request) {
  request->enqueued = std::chrono::steady_clock::now();
  std::vector<std::unique_ptr<AppendRequest>> retired;  // freed on return, unlocked
  {
    std::lock_guard lock(mutex_);
    if (stopping_) throw Error(ErrorCode::closed, "the store is closing");
    queue_.push_back(std::move(request));
    queued_.store(queue_.size(), std::memory_order_relaxed);
    retired.swap(retired_);
  }
  wake_.notify_one();
}

void Committer::stop() noexcept {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_one();
  if (thread_.joinable()) thread_.join();
  std::vector<std::unique_ptr<AppendRequest>> retired;
  {
    std::lock_guard lock(mutex_);
    retired.swap(retired_);
  }
  retired.clear();  // their spans end now, while the store's sink is there
}

std::size_t Committer::backlog() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

void Committer::run() {
  thread_id_.store(std::this_thread::get_id());
  struct Forget {  // a later thread may get the same id
    std::atomic<std::thread::id>& id;
    ~Forget() { id.store(std::thread::id()); }
  } forget{thread_id_};
  pthread_setname_np(pthread_self(), "lh-committer");  // as top and gdb show it
  std::vector<std::unique_ptr<AppendRequest>> group;
  const bool ticking = tick_ && tick_interval_.count() > 0;
  auto next_tick = std::chrono::steady_clock::now() + tick_interval_;
  for (;;) {
    if (ticking && std::chrono::steady_clock::now() >= next_tick) {
      tick_();  // must not throw
      next_tick = std::chrono::steady_clock::now() + tick_interval_;
    }
    std::vector<std::unique_ptr<AppendRequest>> idle_retired;
    {
      std::unique_lock lock(mutex_);
      if (queue_.empty() && !retired_.empty()) {
        // Nothing to commit and nobody submitting: free them here, unlocked
        // (ending their append spans), until an append comes; what is left
        // then goes back for the submitters to free.
        idle_retired.swap(retired_);
        lock.unlock();
        std::size_t freed = 0;
        while (freed < idle_retired.size()) {
          idle_retired[freed++].reset();
          if (freed % 16 == 0 && queued_.load(std::memory_order_relaxed) != 0) break;
        }
        if (freed < idle_retired.size()) {
          lock.lock();
          for (std::size_t i = freed; i < idle_retired.size(); ++i) retired_.push_back(std::move(idle_retired[i]));
        }
        continue;
      }
      auto ready = [this] { return stopping_ || !queue_.empty(); };
      if (ticking) {
        if (!wake_.wait_until(lock, next_tick, ready)) continue;  // time for a tick
      } else {
        wake_.wait(lock, ready);
      }
      if (queue_.empty()) return;  // stopping, and everything is committed
      // Take what is queued, up to the group bounds; a request is never split.
      std::size_t events = 0, bytes = 0;
      while (!queue_.empty()) {
        const AppendRequest& next = *queue_.front();
        // A task runs alone.
        if (!group.empty() && (next.task || group.front()->task ||
                               events + next.events > limits_.max_group_events ||
                               bytes + next.bytes > limits_.max_group_bytes)) {
          break;
        }
        events += next.events;
        bytes += next.bytes;
        group.push_back(std::move(queue_.front()));
        queue_.pop_front();
      }
      queued_.store(queue_.size(), std::memory_order_relaxed);
      if (observe_) {
        const auto oldest = queue_.empty() ? group.front()->enqueued : queue_.front()->enqueued;
        observe_(queue_.size(), static_cast<std::uint64_t>(
                                    std::chrono::duration_cast<std::chrono::nanoseconds>(
                                        std::chrono::steady_clock::now() - oldest)
                                        .count()));
      }
    }
    if (group.front()->task) {
      try {
        group.front()->task();
        group.front()->task_done->set_value();
      } catch (...) {
        group.front()->task_done->set_exception(std::current_exception());
      }
    } else {
      commit_group_(group);
    }
    std::lock_guard lock(mutex_);
    if (retired_.empty()) {
      retired_.swap(group);
    } else {
      for (auto& request : group) retired_.push_back(std::move(request));
    }
    group.clear();
  }
}

}  // namespace lighthouse
