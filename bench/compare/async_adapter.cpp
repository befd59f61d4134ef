#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>

#include "system.h"

namespace compare {

struct AsyncAdapter::State {
  std::function<void(const std::vector<BenchEvent>&)> commit;
  std::mutex mutex;
  std::condition_variable wake;
  std::deque<std::pair<BenchEvent, std::promise<void>>> queue;
  bool stopping = false;
  std::thread thread;

  void run() {
    std::vector<BenchEvent> events;
    std::vector<std::promise<void>> promises;
    for (;;) {
      {
        std::unique_lock lock(mutex);
        wake.wait(lock, [&] { return stopping || !queue.empty(); });
        if (queue.empty()) return;
        while (!queue.empty() && events.size() < 16384) {
          events.push_back(std::move(queue.front().first));
          promises.push_back(std::move(queue.front().second));
          queue.pop_front();
        }
      }
      try {
        commit(events);
        for (auto& p : promises) p.set_value();
      } catch (...) {
        for (auto& p : promises) p.set_exception(std::current_exception());
      }
      events.clear();
      promises.clear();
    }
  }
};

AsyncAdapter::AsyncAdapter(std::function<void(const std::vector<BenchEvent>&)> commit)
    : state_(std::make_unique<State>()) {
  state_->commit = std::move(commit);
  state_->thread = std::thread([s = state_.get()] { s->run(); });
}

AsyncAdapter::~AsyncAdapter() {
  {
    std::lock_guard lock(state_->mutex);
    state_->stopping = true;
  }
  state_->wake.notify_one();
  state_->thread.join();
}

std::future<void> AsyncAdapter::submit(BenchEvent event) {
  std::promise<void> promise;
  auto future = promise.get_future();
  {
    std::lock_guard lock(state_->mutex);
    state_->queue.emplace_back(std::move(event), std::move(promise));
  }
  state_->wake.notify_one();
  return future;
}

Ticket AdaptedSystem::append_async(BenchEvent event) {
  std::lock_guard lock(adapter_mutex_);
  if (!adapter_) {
    adapter_ = std::make_unique<AsyncAdapter>(
        [this](const std::vector<BenchEvent>& events) { append_batch(events); });
  }
  return {adapter_->submit(std::move(event)), {}};
}

void AdaptedSystem::stop_adapter() {
  std::lock_guard lock(adapter_mutex_);
  adapter_.reset();
}

}  // namespace compare
