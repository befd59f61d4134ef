// Subscriptions: follow a store from a starting point — catch up from the
// store in chunks, then deliver live — in event order, at least once, with
// durable checkpoints for named consumers.
//
// Delivery reads the store, always: a subscription remembers the last event
// it delivered and reads what follows in chunks (a read snapshot per chunk,
// none held between chunks). "Live" is the same read, woken by every commit
// of this process at once and by a bounded poll (SubscribeOptions::
// poll_seconds, 50 ms) for commits of other processes. So the switch from
// catch-up to live has no gap and no duplicate, a slow consumer never blocks
// a writer and is never dropped (it reads further behind, that is all), and
// only committed — durable — events are delivered.
#pragma once

#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "lighthouse/event.h"
#include "lighthouse/event_id.h"
#include "lighthouse/export.h"

namespace lighthouse {

// Where a subscription starts. A named consumer with a stored checkpoint
// starts after its checkpoint instead (see SubscribeOptions::consumer).
struct SubscriptionStart {
  enum class Kind : std::uint8_t { beginning, after_id, from_sequence, since_time, now };
  Kind kind = Kind::beginning;
  EventId id{};             // after_id: deliver events after this one
  std::uint64_t value = 0;  // from_sequence: the first sequence; since_time: ns since the epoch

  static SubscriptionStart beginning() { return {}; }
  static SubscriptionStart after(const EventId& id) { return {Kind::after_id, id, 0}; }
  static SubscriptionStart from_sequence(std::uint64_t sequence) { return {Kind::from_sequence, {}, sequence}; }
  static SubscriptionStart since(std::uint64_t ns) { return {Kind::since_time, {}, ns}; }
  // Only events appended after subscribe() returns.
  static SubscriptionStart now() { return {Kind::now, {}, 0}; }
};

struct SubscribeOptions {
  // A named consumer keeps a durable checkpoint in the store: the ID of the
  // last event its handler returned from. It starts after its checkpoint
  // when it has one (the start given applies the first time only), and
  // stores the checkpoint after a chunk it handled when 100 ms have passed
  // since the last one (at most ten a second), and when it stops: a
  // consumer killed in between gets the events after its checkpoint again.
  // Names: 1–128 bytes of UTF-8. Needs a store open for writing. One live
  // subscription per name in a process (a second is invalid_argument until
  // the first stops); across processes, running one is the host's job.
  std::string consumer;
  // Store the checkpoint by itself (as above). Turn it off when the
  // handler stores it with the events it appends (Batch::checkpoint): then
  // the projection is exactly-once with respect to the store.
  bool auto_checkpoint = true;
  // Events read per chunk (one read snapshot each).
  std::size_t chunk_events = 512;
  // The longest a subscriber waits before looking for commits made by other
  // processes (commits of this process wake it at once). The delivery
  // delay bound for other processes' appends is this plus one chunk read.
  double poll_seconds = 0.05;
  // Stop (successfully) once caught up, instead of delivering live.
  bool stop_when_caught_up = false;
  // With a tracing sink (Options::tracing): a span per delivery, linked to
  // the append that stored the event. Off for a subscription that only
  // relays events to consumers of its own (a server's live tail).
  bool trace_deliveries = true;
};

// How far behind the store's last event a subscription is.
struct SubscriptionLag {
  std::uint64_t events = 0;  // store events after its position (all types)
  double seconds = 0;        // age of the oldest of them; 0 when caught up
};

using EventHandler = std::function<void(const RecordedEvent&)>;

class LIGHTHOUSE_API Subscription {
 public:
  Subscription();  // an empty handle
  ~Subscription();  // cancel()
  Subscription(Subscription&&) noexcept;
  Subscription& operator=(Subscription&&) noexcept;
  Subscription(const Subscription&) = delete;
  Subscription& operator=(const Subscription&) = delete;

  // Stops delivery. When it returns, the handler is not running and will
  // not be called again — except when cancel() is called from inside the
  // handler: then no call follows the one in progress. Stores a named
  // consumer's checkpoint. Idempotent. From a store callback (on_sla_breach,
  // on_health_change) it raises Error(invalid_argument): its checkpoint
  // waits for the committer those run on. Dropping the handle there instead
  // asks the subscription to stop without waiting for it.
  // Errors: invalid_argument (from a store callback).
  void cancel();

  // Blocks until the subscription stops (cancel, close of the store, a
  // handler that threw, stop_when_caught_up). Rethrows what stopped it, if
  // that was an error. From its own handler or a store callback:
  // Error(invalid_argument).
  // Errors: invalid_argument (from its own handler or a store callback), and
  // whatever stopped the subscription.
  void wait();

  bool running() const;
  // What stopped it: the handler's exception, or a lighthouse::Error of the
  // store (closed, io_error); null while running or after a clean stop.
  std::exception_ptr error() const;
  // The last event delivered (and returned from), if any.
  std::optional<EventId> position() const;
  // How far behind the store's last event it is. Errors: closed (the store
  // was closed or dropped), io_error.
  SubscriptionLag lag() const;
  std::uint64_t delivered() const;

  struct State;

 private:
  friend class SubscriptionHub;  // the library's own: it starts subscriptions
  explicit Subscription(std::shared_ptr<State> state);
  std::shared_ptr<State> state_;
};

}  // namespace lighthouse
