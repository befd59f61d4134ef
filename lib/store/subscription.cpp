// Subscriptions: a thread per subscription that reads the store after its
// position in chunks, calls the handler, and waits for commits (woken by
// this process's commits, or by a bounded poll for other processes').
#include <pthread.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <thread>

#include "lighthouse/store.h"
#include "monitor/log.h"
#include "store/schema.h"
#include "store/store_impl.h"
#include "store/validation.h"

namespace lighthouse {

struct Subscription::State {
  // Set once, before the thread starts.
  std::weak_ptr<Store::Impl> store;
  Query filter;
  SubscriptionStart start;
  EventHandler handler;
  SubscribeOptions options;
  std::thread thread;
  std::mutex join_mutex;                // one joiner at a time; guards `thread`
  std::atomic<std::thread::id> runner;  // the subscription's own thread

  mutable std::mutex mutex;  // below
  std::condition_variable wake;
  bool stop = false;
  bool stopped = false;
  bool commit_seen = false;  // a commit happened since the last read
  std::exception_ptr error;
  std::optional<EventId> position;
  std::optional<EventId> checkpointed;  // the last checkpoint stored
  std::uint64_t delivered = 0;

  ~State() {
    // The last owner may be the subscription's own thread (cancelled from
    // its handler, or its store closed on it): it cannot join itself.
    if (thread.joinable()) {
      if (thread.get_id() == std::this_thread::get_id()) thread.detach();
      else thread.join();
    }
  }

  bool stopping() const {
    std::lock_guard lock(mutex);
    return stop;
  }
  void request_stop() {
    {
      std::lock_guard lock(mutex);
      stop = true;
    }
    wake.notify_all();
  }
  void notify_commit() {
    {
      std::lock_guard lock(mutex);
      commit_seen = true;
    }
    wake.notify_all();
  }
  // Stops the thread and waits for it — unless called from the thread
  // itself (cancel() inside the handler, or the store closed from it): then
  // it ends after the current handler call.
  void stop_and_join() {
    request_stop();
    join();
  }
  void join() {
    if (runner.load() == std::this_thread::get_id()) return;  // before any lock: no self-wait
    std::lock_guard lock(join_mutex);
    if (thread.joinable()) thread.join();
  }
};

namespace {

std::string consumer_key(const std::string& consumer) {
  return std::string(schema::meta::kConsumerPrefix) + consumer;
}


bool has_bounds(const Query& q) {
  return q.after_id || q.before_id || q.from_sequence || q.to_sequence || q.since_ns || q.until_ns ||
         q.limit != 0 || q.direction != Direction::forward;
}

}  // namespace

// --- Store::Impl: the registry and the commit notification -------------

void Store::Impl::register_subscription(const std::shared_ptr<Subscription::State>& state) {
  std::lock_guard lock(subscriptions_mutex_);
  // Forget the ones that ended.
  std::erase_if(subscriptions_, [](const auto& weak) { return weak.expired(); });
  subscriptions_.push_back(state);
}

void Store::Impl::claim_consumer(const std::string& consumer) {
  std::lock_guard lock(subscriptions_mutex_);
  if (!consumers_.insert(consumer).second) {
    throw Error(ErrorCode::invalid_argument,
                "consumer '" + consumer + "' already has a live subscription in this process: two would "
                "overwrite each other's checkpoint");
  }
}

void Store::Impl::release_consumer(const std::string& consumer) noexcept {
  std::lock_guard lock(subscriptions_mutex_);
  consumers_.erase(consumer);
}

void Store::Impl::notify_subscribers() {
  std::lock_guard lock(subscriptions_mutex_);
  for (const auto& weak : subscriptions_) {
    if (auto state = weak.lock()) state->notify_commit();
  }
}

void Store::Impl::stop_subscriptions() noexcept {
  std::vector<std::shared_ptr<Subscription::State>> states;
  {
    std::lock_guard lock(subscriptions_mutex_);
    for (const auto& weak : subscriptions_) {
      if (auto state = weak.lock()) states.push_back(std::move(state));
    }
    subscriptions_.clear();
  }
  for (const auto& state : states) {
    state->stop_and_join();
    // The store may be closing because its last handle was dropped: the
    // thread could not reach it for its final checkpoint, so it is stored
    // here, while the committer still runs.
    if (!committer_) continue;
    try {
      store_checkpoint(*state);
    } catch (const std::exception& error) {
      monitor::log().warn("lighthouse subscription: final checkpoint of '{}' not stored: {}",
                          state->options.consumer, error.what());
    }
  }
}

bool Store::Impl::store_checkpoint(Subscription::State& state) {
  if (state.options.consumer.empty() || !state.options.auto_checkpoint) return false;
  std::optional<EventId> at;
  {
    std::lock_guard lock(state.mutex);
    if (state.position == state.checkpointed) return false;
    at = state.position;
  }
  write_checkpoint(state.options.consumer, *at);
  std::lock_guard lock(state.mutex);
  state.checkpointed = at;
  return true;
}

void Store::Impl::write_checkpoint(const std::string& consumer, const EventId& position, bool caller_given) {
  run_exclusive([&] {
    with_write_txn([&](MDB_txn* txn) {
      const auto key = position.to_key();
      if (caller_given) {
        // The last event appended: the last key, or with none stored (all
        // truncated) the meta counter, compared by sequence.
        bool past;
        if (const auto last = last_event_id(txn)) {
          past = *last < position;  // IDs order as their keys do
        } else {
          std::string_view counter;
          const bool known =
              lmdb::get(txn, dbs_.meta, schema::meta::kLastSequence, counter) && counter.size() == 8;
          past = position.sequence > (known ? schema::read_be(counter, 8) : 0);
        }
        if (past) {
          throw Error(ErrorCode::invalid_argument,
                      "checkpoint " + position.to_string() + " of consumer '" + consumer +
                          "' is after the last event appended: the consumer would skip what is appended "
                          "up to it");
        }
      }
      lmdb::put(txn, dbs_.meta, consumer_key(consumer),
                std::string_view(reinterpret_cast<const char*>(key.data()), key.size()));
    });
  });
}

std::optional<EventId> Store::Impl::last_event_id() const {
  auto read = begin_read();
  return last_event_id(read->txn.get());
}

std::optional<EventId> Store::Impl::last_event_id(MDB_txn* txn) const {
  lmdb::Cursor cursor(txn, dbs_.events);
  MDB_val k, v;
  if (!cursor.seek(k, v, MDB_LAST)) return std::nullopt;
  return EventId::from_key(lmdb::view(k));
}

// --- Store: checkpoints and subscribe ----------------------------------

std::optional<EventId> Store::checkpoint(const std::string& consumer) const {
  validation::check_consumer(consumer);
  auto lock = impl().use();
  auto read = impl().begin_read();
  std::string_view value;
  if (!lmdb::get(read->txn.get(), impl().dbs_.meta, consumer_key(consumer), value)) return std::nullopt;
  if (value.size() != 20) {
    throw Error(ErrorCode::corruption, "checkpoint of consumer '" + consumer + "' is " +
                                           std::to_string(value.size()) + " bytes, not an event key");
  }
  return EventId::from_key(value);
}

void Store::set_checkpoint(const std::string& consumer, const EventId& position) {
  validation::check_consumer(consumer);
  impl().refuse_read_only(read_only_handle_);
  impl().write_checkpoint(consumer, position, true);
}

Subscription Store::subscribe(const Query& filter, SubscriptionStart start, EventHandler handler,
                              const SubscribeOptions& options) {
  if (has_bounds(filter)) {
    throw Error(ErrorCode::invalid_argument,
                "a subscription's filter takes types, a type prefix and an aggregate; its start gives "
                "the position (no ID, sequence or time bounds, limit or direction)");
  }
  if (!handler) throw Error(ErrorCode::invalid_argument, "a subscription needs a handler");
  if (static_cast<unsigned>(start.kind) > static_cast<unsigned>(SubscriptionStart::Kind::now)) {
    throw Error(ErrorCode::invalid_argument,
                "subscription start kind " + std::to_string(static_cast<unsigned>(start.kind)) + " is unknown");
  }
  if (options.chunk_events == 0) throw Error(ErrorCode::invalid_argument, "chunk_events must be at least 1");
  if (!(options.poll_seconds > 0) || options.poll_seconds > 3600) {
    throw Error(ErrorCode::invalid_argument, "poll_seconds must be in (0, 3600]");
  }
  if (!options.consumer.empty()) {
    validation::check_consumer(options.consumer);
    impl().refuse_read_only(read_only_handle_);
  }
  explain(filter);  // a malformed filter fails here, on the caller's thread
  // The consumer's name is this subscription's until its thread ends.
  struct Claim {
    std::shared_ptr<Impl> impl;
    std::string consumer;
    ~Claim() {
      if (impl) impl->release_consumer(consumer);
    }
  } claim;
  if (!options.consumer.empty()) {
    impl().claim_consumer(options.consumer);
    claim.impl = impl_;
    claim.consumer = options.consumer;
  }

  auto state = std::make_shared<Subscription::State>();
  state->store = impl_;
  state->filter = filter;
  state->start = start;
  state->handler = std::move(handler);
  state->options = options;
  if (!options.consumer.empty()) {
    if (auto stored = checkpoint(options.consumer)) state->start = SubscriptionStart::after(*stored);
  }
  if (state->start.kind == SubscriptionStart::Kind::now) {
    auto lock = impl().use();
    auto last = impl().last_event_id();
    state->start = last ? SubscriptionStart::after(*last) : SubscriptionStart::beginning();
  }
  // The thread holds the store only while it reads (a weak reference
  // otherwise): dropping every Store handle closes the store, which stops
  // the subscription.
  const bool read_only_handle = read_only_handle_;
  Subscription::State* s = state.get();
  std::unique_lock join_lock(state->join_mutex);
  state->thread = std::thread([s, keep = state, read_only_handle] {
    pthread_setname_np(pthread_self(), "lh-subscriber");
    s->runner = std::this_thread::get_id();
    auto store_of = [&]() -> std::optional<Store> {
      auto impl = s->store.lock();
      if (!impl) return std::nullopt;
      return Store(std::move(impl), read_only_handle);
    };
    const auto checkpoint_interval = std::chrono::milliseconds(100);
    auto last_checkpoint = std::chrono::steady_clock::now();
    auto store_checkpoint = [&](Store& store, bool force) {
      if (!force && std::chrono::steady_clock::now() - last_checkpoint < checkpoint_interval) return;
      if (store.impl().store_checkpoint(*s)) last_checkpoint = std::chrono::steady_clock::now();
    };
    std::exception_ptr error;
    try {
      for (;;) {
        if (s->stopping()) break;
        std::size_t read = 0;
        {
          auto store = store_of();
          if (!store) break;
          std::optional<EventId> position;
          {
            std::lock_guard lock(s->mutex);
            s->commit_seen = false;  // commits after this point wake the next wait
            position = s->position;
          }
          Query q = s->filter;
          q.limit = s->options.chunk_events;
          if (position) {
            q.after_id = *position;
          } else {
            switch (s->start.kind) {
              case SubscriptionStart::Kind::after_id: q.after_id = s->start.id; break;
              case SubscriptionStart::Kind::from_sequence: q.from_sequence = s->start.value; break;
              case SubscriptionStart::Kind::since_time: q.since_ns = s->start.value; break;
              default: break;
            }
          }
          // The chunk is read first (one snapshot per cursor chunk), then
          // handled: the handler never runs inside a read transaction.
          std::vector<RecordedEvent> chunk;
          {
            auto cursor = store->query(q);
            while (auto e = cursor.next()) chunk.push_back(std::move(*e));
          }
          read = chunk.size();
          for (auto& e : chunk) {
            if (s->stopping()) break;
            try {
              s->handler(e);
            } catch (...) {
              error = std::current_exception();
              break;
            }
            std::lock_guard lock(s->mutex);
            s->position = e.id;
            ++s->delivered;
          }
          if (error) {
            store_checkpoint(*store, true);
            break;
          }
          // At most ten checkpoints a second: a consumer killed in between
          // gets the events after its checkpoint again (at least once).
          store_checkpoint(*store, false);
          if (read == s->options.chunk_events) continue;  // more to catch up
          // Caught up with this snapshot.
          if (s->options.stop_when_caught_up) {
            store_checkpoint(*store, true);
            break;
          }
        }
        std::unique_lock lock(s->mutex);
        s->wake.wait_for(lock, std::chrono::duration<double>(s->options.poll_seconds),
                         [s] { return s->stop || s->commit_seen; });
      }
      if (!error) {
        if (auto store = store_of()) store_checkpoint(*store, true);
      }
    } catch (const Error& e) {
      // Closing the store under a live subscription ends it cleanly.
      if (e.code() != ErrorCode::closed) error = std::current_exception();
    } catch (...) {
      error = std::current_exception();
    }
    if (error) {
      try {
        std::rethrow_exception(error);
      } catch (const std::exception& e) {
        monitor::log().warn("lighthouse subscription stopped: {}", e.what());
      } catch (...) {
        monitor::log().warn("lighthouse subscription stopped by a non-standard exception");
      }
    }
    if (!s->options.consumer.empty()) {
      if (auto impl = s->store.lock()) impl->release_consumer(s->options.consumer);
    }
    {
      std::lock_guard lock(s->mutex);
      s->error = error;
      s->stopped = true;
      s->stop = true;
    }
    s->wake.notify_all();
    s->runner = std::thread::id();  // a later thread may get the same id
  });
  claim.impl = nullptr;  // the thread releases the name when it ends
  join_lock.unlock();  // (the thread sets `runner` itself, and clears it when it ends)
  // Registered once its thread exists, so that close() can always join it.
  impl().register_subscription(state);
  return Subscription(std::move(state));
}

// --- Subscription ----------------------------------------------------------

Subscription::Subscription() = default;
Subscription::Subscription(std::shared_ptr<State> state) : state_(std::move(state)) {}
namespace {

// True on the committer thread of the subscription's store (in a store
// callback): there, waiting for the subscription's thread could wait for the
// committer through its last checkpoint.
bool on_store_committer(const Subscription::State& state) {
  auto impl = state.store.lock();
  return impl && impl->on_committer_thread();
}

// A handle dropped: stops the subscription and waits for it, except on the
// committer thread, where it only asks it to stop (it ends by itself).
void release(const std::shared_ptr<Subscription::State>& state) noexcept {
  if (!state) return;
  if (on_store_committer(*state)) {
    state->request_stop();
    return;
  }
  state->stop_and_join();
}

}  // namespace

Subscription::~Subscription() { release(state_); }
Subscription::Subscription(Subscription&&) noexcept = default;
Subscription& Subscription::operator=(Subscription&& other) noexcept {
  if (this != &other) {
    release(state_);
    state_ = std::move(other.state_);
  }
  return *this;
}

void Subscription::cancel() {
  if (!state_) return;
  if (on_store_committer(*state_)) {
    throw Error(ErrorCode::invalid_argument,
                "Subscription::cancel() cannot wait from a store callback (on_sla_breach, "
                "on_health_change): its last checkpoint waits for the committer, on whose thread "
                "the callback runs; drop the handle there instead (it stops without waiting)");
  }
  state_->stop_and_join();
}

void Subscription::wait() {
  if (!state_) return;
  if (state_->runner.load() == std::this_thread::get_id()) {
    throw Error(ErrorCode::invalid_argument,
                "Subscription::wait() called from its own handler would wait for itself forever");
  }
  if (on_store_committer(*state_)) {
    throw Error(ErrorCode::invalid_argument,
                "Subscription::wait() cannot wait from a store callback: the subscription may be "
                "waiting for the committer, on whose thread the callback runs");
  }
  std::exception_ptr error;
  {
    std::unique_lock lock(state_->mutex);
    state_->wake.wait(lock, [this] { return state_->stopped; });
    error = state_->error;
  }
  state_->join();
  if (error) std::rethrow_exception(error);
}

bool Subscription::running() const {
  if (!state_) return false;
  std::lock_guard lock(state_->mutex);
  return !state_->stopped;
}

std::exception_ptr Subscription::error() const {
  if (!state_) return nullptr;
  std::lock_guard lock(state_->mutex);
  return state_->error;
}

std::optional<EventId> Subscription::position() const {
  if (!state_) return std::nullopt;
  std::lock_guard lock(state_->mutex);
  return state_->position;
}

std::uint64_t Subscription::delivered() const {
  if (!state_) return 0;
  std::lock_guard lock(state_->mutex);
  return state_->delivered;
}

namespace {

// How far `state` is behind the store's last event.
SubscriptionLag lag_of(Subscription::State& state, Store& store, const std::optional<EventId>& last) {
  SubscriptionLag lag;
  std::optional<EventId> position;
  {
    std::lock_guard lock(state.mutex);
    position = state.position;
  }
  Query after;
  after.limit = 1;
  if (position) after.after_id = *position;
  auto next = store.query(after).next();
  if (!next) return lag;
  if (last) lag.events = last->sequence >= next->id.sequence ? last->sequence - next->id.sequence + 1 : 0;
  const auto now = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                  std::chrono::system_clock::now().time_since_epoch())
                                                  .count());
  lag.seconds = now > next->id.timestamp_ns ? static_cast<double>(now - next->id.timestamp_ns) / 1e9 : 0;
  return lag;
}

std::string label(const std::string& text) {
  std::string out;
  for (char c : text) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

SubscriptionLag Subscription::lag() const {
  if (!state_) return {};
  auto impl = state_->store.lock();
  if (!impl) return {};
  Store store(impl, true);
  std::optional<EventId> last;
  {
    auto lock = impl->use();
    last = impl->last_event_id();
  }
  return lag_of(*state_, store, last);
}

std::string Store::Impl::subscription_metrics(Store& store) {
  std::vector<std::shared_ptr<Subscription::State>> states;
  {
    std::lock_guard lock(subscriptions_mutex_);
    for (const auto& weak : subscriptions_) {
      if (auto state = weak.lock()) states.push_back(std::move(state));
    }
  }
  std::string out =
      "# HELP lighthouse_subscriptions Subscriptions running in this process.\n"
      "# TYPE lighthouse_subscriptions gauge\n";
  std::size_t running = 0;
  std::string lags, seconds;
  std::size_t anonymous = 0;
  const std::optional<EventId> last = last_event_id();
  for (const auto& state : states) {
    {
      std::lock_guard lock(state->mutex);
      if (state->stopped) continue;
    }
    ++running;
    const std::string name = state->options.consumer.empty() ? "anonymous-" + std::to_string(++anonymous)
                                                              : state->options.consumer;
    const SubscriptionLag lag = lag_of(*state, store, last);
    lags += "lighthouse_subscription_lag_events{subscription=\"" + label(name) + "\"} " +
            std::to_string(lag.events) + "\n";
    seconds += "lighthouse_subscription_lag_seconds{subscription=\"" + label(name) + "\"} " +
               std::to_string(lag.seconds) + "\n";
  }
  out += "lighthouse_subscriptions " + std::to_string(running) + "\n";
  out += "# HELP lighthouse_subscription_lag_events Store events after the subscription's position.\n"
         "# TYPE lighthouse_subscription_lag_events gauge\n" + lags;
  out += "# HELP lighthouse_subscription_lag_seconds Age of the oldest event the subscription has not delivered.\n"
         "# TYPE lighthouse_subscription_lag_seconds gauge\n" + seconds;
  return out;
}

}  // namespace lighthouse
