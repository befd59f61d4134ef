// Live subscriptions of `lighthouse serve` (docs/http-api.md,
// "Subscriptions"), without the network: the WebSocket and Server-Sent
// Events sides (http_server.cpp, websocket.cpp) only move what a Subscriber
// hands them.
//
// No subscriber costs a thread or an LMDB reader of its own:
// - One shared live tail: a single store subscription follows the store and
//   keeps its latest events in a ring (bounded in events and bytes), each
//   encoded to JSON once for every subscriber. A subscriber that is caught
//   up takes the events that follow its position from the ring.
// - Catch-up reads go through a bounded pool of readers (--catch-up-readers,
//   within LMDB's reader table): a subscriber that starts in the past, or
//   that fell behind the ring's oldest event while its client was slow, asks
//   the pool for its next chunk from the store, and joins the ring again
//   once it reaches it. The store is the buffer: nothing is dropped, and a
//   slow client holds at most one chunk in the server.
// - Flow control: a subscriber hands out events only as its connection asks
//   for them (the connection's bounded send queue), and, once the client
//   grants credit, only as many events as granted.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

#include "lighthouse/store.h"
#include "output.h"

namespace lighthouse::serve {

// One event as every subscriber sends it: read and encoded once.
struct SharedEvent {
  EventId id;
  std::string type;
  std::string aggregate;
  std::string json;  // the `lighthouse get` form, without a newline
  std::size_t bytes() const { return sizeof(SharedEvent) + type.size() + aggregate.size() + json.size(); }
};
using EventRef = std::shared_ptr<const SharedEvent>;

// What a client asks for (the WebSocket's first message, or the SSE query).
struct SubscriptionRequest {
  std::vector<std::string> types;
  std::string type_prefix;
  std::optional<std::string> aggregate;
  enum class Start : std::uint8_t { beginning, end, after, time };
  Start start = Start::beginning;
  EventId after{};
  std::uint64_t time_ns = 0;
  std::string consumer;  // empty: none
  std::string token;     // the WebSocket's way to authenticate (a browser cannot set a header)
  std::optional<std::uint64_t> credit;  // a first grant (Subscriber::grant)
};

// A subscription the server refuses for a reason of its own (not a store
// error): its HTTP status and error code.
class Refused : public std::runtime_error {
 public:
  Refused(int status, std::string code, const std::string& message)
      : std::runtime_error(message), status(status), code(std::move(code)) {}
  int status;
  std::string code;
};

// Whether `a` is a position after `b` (nothing is before everything).
bool later(const std::optional<EventId>& a, const std::optional<EventId>& b);

// Parses the first message of a WebSocket subscription. Errors:
// invalid_argument naming the field.
SubscriptionRequest parse_subscription(const tool::Json& message);

// A message for the client: an event, or a control message (its JSON).
struct Outgoing {
  EventRef event;            // set: an event
  std::string control;       // otherwise: {"kind": KIND, ...}
  const char* kind = "event";  // "caught_up", "checkpoint", "closing" for a control message
  bool final = false;        // the `closing` message: nothing follows, close the connection

  static Outgoing of(EventRef event) { return {std::move(event), {}, "event", false}; }
  static Outgoing message(const char* kind, std::string json, bool final = false) {
    return {nullptr, std::move(json), kind, final};
  }
};

// An event as the subscribers send it, encoded once.
EventRef shared_event(const RecordedEvent& event);
// A control message {"kind": KIND, "position": ID or null}.
Outgoing control_message(const char* kind, const std::optional<EventId>& position);

struct HubOptions {
  std::size_t catch_up_readers = 4;         // threads reading for subscribers behind the live tail
  std::size_t chunk_events = 256;           // events per catch-up read
  std::size_t tail_events = 16384;          // the ring's bound in events ...
  std::size_t tail_bytes = 64u << 20;       // ... and in bytes
  std::size_t max_subscriptions = 1024;
  std::chrono::milliseconds checkpoint_interval{100};  // acknowledged positions stored at most this often
};

class SubscriptionHub;

class Subscriber : public std::enable_shared_from_this<Subscriber> {
 public:
  // Up to `max` messages ready to send, without blocking; none when there
  // is nothing to send yet, and then `wake` (given to open()) is called once
  // there may be. Never more events than the client's credit allows.
  std::vector<Outgoing> take(std::size_t max);
  // The client grants `n` more events. The first grant switches the
  // subscription to credit: from then on it sends only what was granted.
  void grant(std::uint64_t n);
  // The client acknowledges everything up to `position`; a consumer's
  // checkpoint is stored from it. Errors: invalid_argument (no consumer, or
  // a position after the last event sent).
  void acknowledge(const EventId& position);
  // Where a client resumes: a consumer's last stored checkpoint, or the
  // position after everything sent. Stores a pending acknowledgement first.
  std::optional<EventId> close();
  const std::string& consumer() const { return request_.consumer; }

 private:
  friend class SubscriptionHub;
  enum class Mode : std::uint8_t { catch_up, live };
  Subscriber(SubscriptionHub& hub, SubscriptionRequest request, std::function<void()> wake);
  bool matches(const SharedEvent& e) const;
  // Tells it to close (`why`: an error; empty: the server stops) and wakes it.
  void close_with(const std::string& why);
  void take_live(std::vector<Outgoing>& out, std::size_t& room);  // the hub's lock held
  void read_chunk();  // on a pool thread
  // Stores `position` as the consumer's checkpoint, one store at a time per
  // subscriber: `forward` skips one that is not after the stored one (an
  // acknowledgement); POST /consumers/{name}/checkpoint may move it back.
  // True when stored. Errors: the store's.
  bool store_checkpoint(const EventId& position, bool forward);

  SubscriptionHub& hub_;
  const SubscriptionRequest request_;
  const std::function<void()> wake_;
  mutable std::mutex mutex_;  // below; taken after the hub's lock, never before
  Mode mode_ = Mode::catch_up;
  bool started_ = false;        // the first chunk was read (a time start reads by time)
  bool reading_ = false;        // a chunk is queued for the pool or being read
  bool waiting_ = false;        // wake_ is owed when the ring grows
  bool closed_ = false;
  bool closing_ = false;  // the server asks it to close
  bool released_ = false;  // close() ran
  std::deque<Outgoing> controls_;  // control messages sent before anything else
  std::optional<EventId> scanned_;    // every matching event up to here is handed out or ready
  std::deque<Outgoing> ready_;        // read from the store, not taken yet
  std::optional<EventId> through_;    // the client has every matching event up to here
  bool credit_mode_ = false;
  std::uint64_t credit_ = 0;
  std::optional<EventId> acknowledged_;  // not stored yet
  std::optional<EventId> stored_;        // the consumer's checkpoint as stored
  std::string error_;                    // a read that failed: sent as an error, then closed
  std::mutex store_mutex_;               // held while its checkpoint is stored; before mutex_
};

class SubscriptionHub {
 public:
  SubscriptionHub(Store& store, HubOptions options, bool writable);
  ~SubscriptionHub();  // stop()
  SubscriptionHub(const SubscriptionHub&) = delete;
  SubscriptionHub& operator=(const SubscriptionHub&) = delete;

  // A subscriber for `request`, its start resolved (a consumer resumes after
  // its checkpoint). `wake` is called from other threads, at most once per
  // take() that came back empty. Errors: Error invalid_argument (a bad
  // consumer name), read_only (a consumer on a read-only server), closed;
  // Refused: 409 consumer_busy (the consumer is connected already), 503
  // busy (--max-subscriptions).
  std::shared_ptr<Subscriber> open(SubscriptionRequest request, std::function<void()> wake);
  void release(Subscriber& subscriber);  // Subscriber::close calls it
  // POST /consumers/{name}/checkpoint: through the consumer's subscriber
  // when it is connected (so that its checkpoint moves on from there),
  // stored at once either way. Errors: as Subscriber::acknowledge, and the
  // store's (invalid_argument for a bad name, read_only).
  void acknowledge(const std::string& consumer, const EventId& position);
  // Asks every subscriber to close (its next take() says so): SIGTERM.
  void close_all();
  std::size_t size() const;
  // Stops the live tail, the pool and the checkpoints (stored first).
  void stop();
  std::string metrics_text() const;
  Store& store() { return store_; }

 private:
  friend class Subscriber;
  void on_tail_event(const RecordedEvent& event);
  void submit(std::shared_ptr<Subscriber> subscriber);
  void read_loop();
  void checkpoint_loop();
  void store_due(bool all);  // the checkpoint loop's work; `all`: every pending one (stop)
  void watch_tail();         // a live tail that stopped is started again from its head
  void start_tail(const std::optional<EventId>& after);  // Errors: the store's
  std::vector<std::shared_ptr<Subscriber>> all_subscribers() const;
  std::optional<EventId> head() const;  // the newest event the tail has seen (the lock held)
  std::size_t ring_index_after(const std::optional<EventId>& position) const;  // the lock held

  Store& store_;
  const HubOptions options_;
  const bool writable_;
  mutable std::mutex mutex_;
  std::condition_variable work_;  // the readers'
  std::condition_variable tick_;  // the checkpointer's
  std::deque<EventRef> ring_;
  std::size_t ring_bytes_ = 0;
  std::optional<EventId> base_;  // the newest event not in the ring (all after it are)
  std::map<Subscriber*, std::weak_ptr<Subscriber>> subscribers_;
  // A consumer is connected while its subscriber lives (one whose
  // connection went without close() frees its name and slot by expiring).
  std::map<std::string, std::weak_ptr<Subscriber>> consumers_;
  std::deque<std::weak_ptr<Subscriber>> reads_;
  bool stopping_ = false;
  bool closing_all_ = false;  // SIGTERM: a subscription opened now is told to close at once
  std::uint64_t tail_events_ = 0, catch_up_reads_ = 0, catch_up_events_ = 0, fell_behind_ = 0, tail_restarts_ = 0;
  std::atomic<std::uint64_t> checkpoints_{0};
  std::vector<std::thread> readers_;
  std::thread checkpointer_;
  Subscription tail_;
};

}  // namespace lighthouse::serve
