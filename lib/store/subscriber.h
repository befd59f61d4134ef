// The state of one subscription, shared by its handle, its thread and the
// hub; and Subscriber, the body of its thread: read a chunk after the
// position (one snapshot), deliver it to the handler outside any
// transaction, checkpoint at most every 100 ms, and wait for the next commit
// (of this process, or a bounded poll for other processes').
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

#include "lighthouse/store.h"
#include "lighthouse/subscription.h"
#include "lighthouse/tracing.h"

namespace lighthouse {

struct Subscription::State {
  // Set once, before the thread starts.
  std::weak_ptr<Store::Impl> store;
  Query filter;
  SubscriptionStart start;
  EventHandler handler;
  SubscribeOptions options;
  bool read_only_handle = false;
  std::thread thread;
  std::mutex join_mutex;                // one joiner at a time; guards `thread`
  std::atomic<std::thread::id> runner;  // the subscription's own thread

  mutable std::mutex mutex;  // guards everything below
  std::condition_variable wake;
  bool stop = false;
  bool stopped = false;
  bool commit_seen = false;  // a commit happened since the last read
  std::exception_ptr error;
  std::optional<EventId> position;
  std::optional<EventId> checkpointed;  // the last checkpoint stored
  std::uint64_t delivered = 0;

  ~State();
  bool stopping() const;
  void request_stop();
  void notify_commit();
  // Stops the thread and waits for it — unless called from the thread
  // itself (cancel() inside the handler, or the store closed from it): then
  // it ends after the current handler call.
  void stop_and_join();
  void join();
};

class Subscriber {
 public:
  // Starts the thread of `state` (which it keeps alive until it ends).
  static void start(const std::shared_ptr<Subscription::State>& state);

 private:
  explicit Subscriber(std::shared_ptr<Subscription::State> state) : keep_(std::move(state)), s_(*keep_) {}
  void run();
  // A handle on the store while it is open (the thread holds only a weak
  // reference between reads: dropping every Store closes the store).
  std::optional<Store> store() const;
  // The query of the next chunk: the filter, after the position or from the start.
  Query next_query() const;
  // Reads one chunk, then delivers it; returns the events read. Sets
  // `error_` when the handler throws.
  std::size_t read_and_deliver(Store& store);
  tracing::Span delivery_span(const tracing::TracingOptions& tracing, const RecordedEvent& e) const;
  void checkpoint(Store& store, bool force);
  void wait_for_commit();
  void end() noexcept;

  std::shared_ptr<Subscription::State> keep_;
  Subscription::State& s_;
  std::exception_ptr error_;
  std::chrono::steady_clock::time_point last_checkpoint_ = std::chrono::steady_clock::now();
};

// How far `state` is behind `last`, the store's last event.
SubscriptionLag lag_of(Subscription::State& state, Store& store, const std::optional<EventId>& last);

}  // namespace lighthouse
