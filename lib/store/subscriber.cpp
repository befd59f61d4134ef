#include "store/subscriber.h"

#include <pthread.h>

#include "monitor/log.h"
#include "store/read_path.h"
#include "store/store_impl.h"

namespace lighthouse {

// --- Subscription::State -----------------------------------------------------

Subscription::State::~State() {
  // The last owner may be the subscription's own thread (cancelled from its
  // handler, or its store closed on it): it cannot join itself.
  if (thread.joinable()) {
    if (thread.get_id() == std::this_thread::get_id()) thread.detach();
    else thread.join();
  }
}

bool Subscription::State::stopping() const {
  std::lock_guard lock(mutex);
  return stop;
}

void Subscription::State::request_stop() {
  {
    std::lock_guard lock(mutex);
    stop = true;
  }
  wake.notify_all();
}

void Subscription::State::notify_commit() {
  {
    std::lock_guard lock(mutex);
    commit_seen = true;
  }
  wake.notify_all();
}

void Subscription::State::stop_and_join() {
  request_stop();
  join();
}

void Subscription::State::join() {
  if (runner.load() == std::this_thread::get_id()) return;  // before any lock: no self-wait
  std::lock_guard lock(join_mutex);
  if (thread.joinable()) thread.join();
}

// --- Subscriber ----------------------------------------------------------------

void Subscriber::start(const std::shared_ptr<Subscription::State>& state) {
  // `thread` is assigned under the join lock: a joiner waits for it.
  std::unique_lock join_lock(state->join_mutex);
  state->thread = std::thread([keep = state]() mutable { Subscriber(std::move(keep)).run(); });
}

std::optional<Store> Subscriber::store() const {
  auto impl = s_.store.lock();
  if (!impl) return std::nullopt;
  return StoreAccess::handle(std::move(impl), s_.read_only_handle);
}

Query Subscriber::next_query() const {
  std::optional<EventId> position;
  {
    std::lock_guard lock(s_.mutex);
    s_.commit_seen = false;  // commits after this point wake the next wait
    position = s_.position;
  }
  Query q = s_.filter;
  q.limit = s_.options.chunk_events;
  if (position) {
    q.after_id = *position;
    return q;
  }
  switch (s_.start.kind) {
    case SubscriptionStart::Kind::after_id: q.after_id = s_.start.id; break;
    case SubscriptionStart::Kind::from_sequence: q.from_sequence = s_.start.value; break;
    case SubscriptionStart::Kind::since_time: q.since_ns = s_.start.value; break;
    default: break;
  }
  return q;
}

std::size_t Subscriber::read_and_deliver(Store& store) {
  // The chunk is read first (one snapshot per cursor chunk), then handled:
  // the handler never runs inside a read transaction.
  std::vector<RecordedEvent> chunk;
  {
    const UntracedReads untraced;  // the deliveries' spans say what was read
    auto cursor = store.query(next_query());
    while (auto e = cursor.next()) chunk.push_back(std::move(*e));
  }
  const tracing::TracingOptions& tracing = StoreAccess::impl(store).options().tracing;
  for (auto& e : chunk) {
    if (s_.stopping()) break;
    tracing::Span span;
    if (tracing.sink && s_.options.trace_deliveries) span = delivery_span(tracing, e);
    try {
      // What the handler appends is a child of its delivery.
      const tracing::ContextScope scope(span.context());
      s_.handler(e);
    } catch (...) {
      error_ = std::current_exception();
      span.set_error("handler", "the subscription's handler threw");
      break;
    }
    std::lock_guard lock(s_.mutex);
    s_.position = e.id;
    ++s_.delivered;
  }
  return chunk.size();
}

// A delivery's span: its own trace, linked to the append that stored the
// event — or, for a live delivery when TracingOptions says so, a child of it.
tracing::Span Subscriber::delivery_span(const tracing::TracingOptions& tracing, const RecordedEvent& e) const {
  std::optional<tracing::SpanContext> producer;
  if (e.trace_context) producer = tracing::SpanContext::of(*e.trace_context);
  const double age = (static_cast<double>(tracing::now_ns()) - static_cast<double>(e.id.timestamp_ns)) / 1e9;
  const bool child = producer && tracing.live_delivery_as_child && age <= tracing.child_within_seconds;
  tracing::Span span(tracing, "deliver", tracing::SpanKind::consumer, child ? &*producer : tracing::Span::root);
  if (!span.recording()) return span;
  span.set("messaging.system", std::string("lighthouse"));
  span.set("messaging.operation.type", std::string("process"));
  span.set("messaging.message.id", e.id.to_string());
  if (!s_.options.consumer.empty()) span.set("messaging.consumer.group.name", s_.options.consumer);
  span.set("lighthouse.event.type", e.type);
  if (!e.aggregate.empty()) span.set("lighthouse.aggregate", e.aggregate);
  span.set("lighthouse.sequence", static_cast<std::int64_t>(e.id.sequence));
  span.set("lighthouse.delivery.age_ns", static_cast<std::int64_t>(age * 1e9));
  if (producer && !child) span.add_link(*producer);
  return span;
}

// At most ten checkpoints a second: a consumer killed in between gets the
// events after its checkpoint again (at least once).
void Subscriber::checkpoint(Store& store, bool force) {
  constexpr auto kInterval = std::chrono::milliseconds(100);
  if (s_.options.consumer.empty() || !s_.options.auto_checkpoint) return;  // nothing to store (read-only stores too)
  if (!force && std::chrono::steady_clock::now() - last_checkpoint_ < kInterval) return;
  if (StoreAccess::impl(store).checkpoints().store_auto(s_)) last_checkpoint_ = std::chrono::steady_clock::now();
}

void Subscriber::wait_for_commit() {
  std::unique_lock lock(s_.mutex);
  s_.wake.wait_for(lock, std::chrono::duration<double>(s_.options.poll_seconds),
                   [this] { return s_.stop || s_.commit_seen; });
}

void Subscriber::run() {
  pthread_setname_np(pthread_self(), "lh-subscriber");  // as top and gdb show it
  s_.runner = std::this_thread::get_id();
  try {
    for (;;) {
      if (s_.stopping()) break;
      {
        auto store = this->store();
        if (!store) break;
        const std::size_t read = read_and_deliver(*store);
        if (error_) {
          checkpoint(*store, true);
          break;
        }
        checkpoint(*store, false);
        if (read == s_.options.chunk_events) continue;  // more to catch up
        // Caught up with this snapshot.
        if (s_.options.stop_when_caught_up) {
          checkpoint(*store, true);
          break;
        }
      }
      wait_for_commit();
    }
    if (!error_) {
      if (auto store = this->store()) checkpoint(*store, true);
    }
  } catch (const Error& e) {
    // Closing the store under a live subscription ends it cleanly.
    if (e.code() != ErrorCode::closed) error_ = std::current_exception();
  } catch (...) {
    error_ = std::current_exception();
  }
  end();
}

void Subscriber::end() noexcept {
  if (error_) {
    try {
      std::rethrow_exception(error_);
    } catch (const std::exception& e) {
      monitor::log().warn("lighthouse subscription stopped: {}", e.what());
    } catch (...) {
      monitor::log().warn("lighthouse subscription stopped by a non-standard exception");
    }
  }
  if (!s_.options.consumer.empty()) {
    if (auto impl = s_.store.lock()) impl->hub().release_consumer(s_.options.consumer);
  }
  {
    std::lock_guard lock(s_.mutex);
    s_.error = error_;
    s_.stopped = true;
    s_.stop = true;
  }
  s_.wake.notify_all();
  s_.runner = std::thread::id();  // a later thread may get the same id
}

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
  const auto now = static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch())
          .count());
  lag.seconds = now > next->id.timestamp_ns ? static_cast<double>(now - next->id.timestamp_ns) / 1e9 : 0;
  return lag;
}

}  // namespace lighthouse
