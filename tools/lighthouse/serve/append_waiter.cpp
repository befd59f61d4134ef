// The thread that waits for the server's asynchronous appends (api.h).
#include "serve/api.h"

namespace lighthouse::serve {

AppendWaiter::AppendWaiter() : thread_([this] { run(); }) {}

AppendWaiter::~AppendWaiter() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  ready_.notify_all();
  thread_.join();
}

void AppendWaiter::add(std::future<AppendResult> future, std::function<void(std::future<AppendResult>&)> done) {
  {
    std::lock_guard lock(mutex_);
    queue_.push_back({std::move(future), std::move(done)});
  }
  ready_.notify_one();
}

void AppendWaiter::run() {
  for (;;) {
    Pending next;
    {
      std::unique_lock lock(mutex_);
      busy_ = false;
      if (queue_.empty()) idle_.notify_all();
      ready_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) return;  // stopping, and everything completed
      next = std::move(queue_.front());
      queue_.pop_front();
      busy_ = true;
    }
    next.future.wait();
    next.done(next.future);
  }
}

void AppendWaiter::drain() {
  std::unique_lock lock(mutex_);
  idle_.wait(lock, [&] { return queue_.empty() && !busy_; });
}

}  // namespace lighthouse::serve
