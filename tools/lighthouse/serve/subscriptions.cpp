// The subscription hub: the shared live tail, the pool of catch-up readers,
// the consumers' checkpoints (subscriptions.h).
#include "serve/subscriptions.h"

#include <algorithm>
#include <sstream>

#include "json_event.h"
#include "lighthouse/error.h"
#include "parse.h"

namespace lighthouse::serve {
namespace {

using tool::Json;

using tool::shown;

}  // namespace

// ---------------------------------------------------------------------------
// SubscriptionHub

SubscriptionHub::SubscriptionHub(Store& store, HubOptions options, bool writable)
    : store_(store), options_(options), writable_(writable) {
  Query last;
  last.direction = Direction::reverse;
  last.limit = 1;
  const tracing::UntracedScope untraced;
  for (const RecordedEvent& e : store_.query(last)) base_ = e.id;
  start_tail(base_);  // first: if it cannot start, no thread is left running
  for (std::size_t i = 0; i < std::max<std::size_t>(1, options_.catch_up_readers); ++i) {
    readers_.emplace_back([this] { read_loop(); });
  }
  checkpointer_ = std::thread([this] { checkpoint_loop(); });
}

SubscriptionHub::~SubscriptionHub() { stop(); }

void SubscriptionHub::start_tail(const std::optional<EventId>& after) {
  SubscribeOptions tail;
  tail.chunk_events = 512;
  tail.trace_deliveries = false;  // a relay: the clients' streams are what it serves
  tail_ = store_.subscribe({}, after ? SubscriptionStart::after(*after) : SubscriptionStart::beginning(),
                           [this](const RecordedEvent& e) { on_tail_event(e); }, tail);
}

std::vector<std::shared_ptr<Subscriber>> SubscriptionHub::all_subscribers() const {
  std::vector<std::shared_ptr<Subscriber>> all;
  std::lock_guard lock(mutex_);
  for (const auto& [raw, weak] : subscribers_) {
    if (auto s = weak.lock()) all.push_back(std::move(s));
  }
  return all;
}

void SubscriptionHub::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && readers_.empty()) return;
    stopping_ = true;
  }
  work_.notify_all();
  tick_.notify_all();
  // The checkpointer first (it may restart the tail), then the tail: no
  // thread of the hub wakes a connection after this returns.
  if (checkpointer_.joinable()) checkpointer_.join();
  tail_.cancel();
  for (auto& t : readers_) t.join();
  readers_.clear();
  if (writable_) store_due(true);  // the acknowledgements not stored yet
}

std::optional<EventId> SubscriptionHub::head() const { return ring_.empty() ? base_ : ring_.back()->id; }

std::size_t SubscriptionHub::ring_index_after(const std::optional<EventId>& position) const {
  if (!position) return 0;
  auto it = std::upper_bound(ring_.begin(), ring_.end(), *position,
                             [](const EventId& p, const EventRef& e) { return p < e->id; });
  return static_cast<std::size_t>(it - ring_.begin());
}

void SubscriptionHub::on_tail_event(const RecordedEvent& event) {
  {
    // Nobody to serve: the tail only moves on (an event is encoded only
    // for subscribers; one that comes later starts from the store).
    std::lock_guard lock(mutex_);
    if (const auto h = head(); h && event.id <= *h) return;
    if (subscribers_.empty()) {
      ring_.clear();
      ring_bytes_ = 0;
      base_ = event.id;
      ++tail_events_;
      return;
    }
  }
  EventRef shared = shared_event(event);
  std::vector<std::shared_ptr<Subscriber>> wake;
  {
    std::lock_guard lock(mutex_);
    if (const auto h = head(); h && event.id <= *h) return;  // delivered again (at least once)
    ring_bytes_ += shared->bytes();
    ring_.push_back(std::move(shared));
    ++tail_events_;
    while (ring_.size() > 1 && (ring_.size() > options_.tail_events || ring_bytes_ > options_.tail_bytes)) {
      base_ = ring_.front()->id;
      ring_bytes_ -= ring_.front()->bytes();
      ring_.pop_front();
    }
    for (auto& [raw, weak] : subscribers_) {
      auto s = weak.lock();
      if (!s) continue;
      std::lock_guard sub(s->mutex_);
      if (s->waiting_ && s->mode_ == Subscriber::Mode::live) {
        s->waiting_ = false;
        wake.push_back(std::move(s));
      }
    }
  }
  for (auto& s : wake) s->wake_();
}

std::shared_ptr<Subscriber> SubscriptionHub::open(SubscriptionRequest request, std::function<void()> wake) {
  std::optional<EventId> checkpoint;
  if (!request.consumer.empty()) {
    if (!writable_) {
      throw Error(ErrorCode::read_only, "a consumer's checkpoint cannot be stored by a read-only server: "
                                        "subscribe without 'consumer'");
    }
    checkpoint = store_.checkpoint(request.consumer);  // checks the name
  }
  const auto start = request.start;
  const EventId start_after = request.after;
  auto s = std::shared_ptr<Subscriber>(new Subscriber(*this, std::move(request), std::move(wake)));
  std::lock_guard lock(mutex_);
  if (stopping_) throw Error(ErrorCode::closed, "the server is stopping");
  std::erase_if(subscribers_, [](const auto& entry) { return entry.second.expired(); });
  if (subscribers_.size() >= options_.max_subscriptions) {
    throw Refused(503, "busy", "this server has its maximum of subscriptions open (--max-subscriptions)");
  }
  if (!s->request_.consumer.empty()) {
    auto& holder = consumers_[s->request_.consumer];
    if (!holder.expired()) {
      throw Refused(409, "consumer_busy", "consumer '" + shown(s->request_.consumer) + "' is connected already");
    }
    holder = s;
  }
  std::lock_guard sub(s->mutex_);
  s->closing_ = closing_all_;  // after SIGTERM: told to close at once
  s->stored_ = checkpoint;
  if (checkpoint) {
    s->scanned_ = checkpoint;
    s->started_ = true;
  } else if (start == SubscriptionRequest::Start::end) {
    s->scanned_ = head();
    s->mode_ = Subscriber::Mode::live;
    s->ready_.push_back(control_message("caught_up", s->scanned_));
  } else if (start == SubscriptionRequest::Start::after) {
    s->scanned_ = start_after;
  }
  s->through_ = s->scanned_;
  if (s->request_.credit) {
    s->credit_mode_ = true;
    s->credit_ = *s->request_.credit;
  }
  subscribers_.emplace(s.get(), s);
  return s;
}

void SubscriptionHub::release(Subscriber& subscriber) {
  std::lock_guard lock(mutex_);
  subscribers_.erase(&subscriber);
  if (auto it = consumers_.find(subscriber.request_.consumer); it != consumers_.end()) {
    if (auto holder = it->second.lock(); !holder || holder.get() == &subscriber) consumers_.erase(it);
  }
}

std::size_t SubscriptionHub::size() const {
  std::lock_guard lock(mutex_);
  return subscribers_.size();
}

void SubscriptionHub::acknowledge(const std::string& consumer, const EventId& position) {
  std::shared_ptr<Subscriber> connected;
  {
    std::lock_guard lock(mutex_);
    if (auto it = consumers_.find(consumer); it != consumers_.end()) connected = it->second.lock();
  }
  if (!connected) {
    store_.set_checkpoint(consumer, position);
    ++checkpoints_;
    return;
  }
  connected->acknowledge(position);  // refuses a position after what it sent
  connected->store_checkpoint(position, false);
}

void SubscriptionHub::close_all() {
  {
    std::lock_guard lock(mutex_);
    closing_all_ = true;
  }
  for (auto& s : all_subscribers()) s->close_with("");
}

void SubscriptionHub::submit(std::shared_ptr<Subscriber> subscriber) {
  {
    std::lock_guard lock(mutex_);
    reads_.push_back(subscriber);
  }
  work_.notify_one();
}

void SubscriptionHub::read_loop() {
  for (;;) {
    std::shared_ptr<Subscriber> next;
    {
      std::unique_lock lock(mutex_);
      work_.wait(lock, [&] { return stopping_ || !reads_.empty(); });
      if (stopping_) return;
      next = reads_.front().lock();
      reads_.pop_front();
    }
    if (next) next->read_chunk();
  }
}

// Acknowledged positions are stored at most once per interval each, and a
// `checkpoint` message tells the client once its position is durable. The
// same loop watches the live tail.
void SubscriptionHub::checkpoint_loop() {
  for (;;) {
    {
      std::unique_lock lock(mutex_);
      tick_.wait_for(lock, options_.checkpoint_interval);
      if (stopping_) return;
    }
    watch_tail();
    if (writable_) store_due(false);
  }
}

void SubscriptionHub::store_due(bool all) {
  std::vector<std::shared_ptr<Subscriber>> due;
  {
    std::lock_guard lock(mutex_);
    for (auto& [raw, weak] : subscribers_) {
      auto s = weak.lock();
      if (!s) continue;
      std::lock_guard sub(s->mutex_);
      if (s->acknowledged_ && (all || !s->released_)) due.push_back(std::move(s));
    }
  }
  for (auto& s : due) {
    std::optional<EventId> position;
    {
      std::lock_guard sub(s->mutex_);
      position = s->acknowledged_;
    }
    if (!position) continue;
    bool wake = false;
    try {
      if (s->store_checkpoint(*position, true)) {
        Json c;
        c["kind"] = "checkpoint";
        c["consumer"] = s->request_.consumer;
        c["position"] = position->to_string();
        std::lock_guard sub(s->mutex_);
        s->controls_.push_back(Outgoing::message("checkpoint", tool::dump(c)));
        wake = std::exchange(s->waiting_, false);
      }
    } catch (const Error& e) {
      std::lock_guard sub(s->mutex_);
      s->error_ = "the checkpoint could not be stored: " + std::string(e.what());
      wake = std::exchange(s->waiting_, false);
    }
    if (wake) s->wake_();
  }
  // `due` goes here, without the hub's lock held.
}

void SubscriptionHub::watch_tail() {
  if (tail_.running()) return;
  std::string why = "the store's live tail stopped";
  if (auto error = tail_.error()) {
    try {
      std::rethrow_exception(error);
    } catch (const std::exception& e) {
      why += std::string(": ") + e.what();
    }
  }
  std::optional<EventId> from;
  {
    std::lock_guard lock(mutex_);
    from = head();
    ++tail_restarts_;
  }
  try {
    start_tail(from);
    return;
  } catch (const Error& e) {
    why += std::string("; it cannot start again: ") + e.what();
  }
  // No tail: every subscriber is told so and closed (clients resume later).
  for (auto& s : all_subscribers()) s->close_with(why);
}

std::string SubscriptionHub::metrics_text() const {
  std::lock_guard lock(mutex_);
  std::size_t live = 0;
  for (const auto& [raw, weak] : subscribers_) {
    if (auto s = weak.lock()) {
      std::lock_guard sub(s->mutex_);
      live += s->mode_ == Subscriber::Mode::live;
    }
  }
  std::ostringstream out;
  auto metric = [&](const char* name, const char* type, const char* help, auto value) {
    out << "# HELP " << name << ' ' << help << "\n# TYPE " << name << ' ' << type << '\n' << name << ' ' << value << '\n';
  };
  metric("lighthouse_http_subscriptions", "gauge", "Subscriptions open (WebSocket and SSE).", subscribers_.size());
  metric("lighthouse_http_subscriptions_live", "gauge", "Subscriptions served from the shared live tail.", live);
  metric("lighthouse_http_live_tail_events", "gauge", "Events held by the shared live tail.", ring_.size());
  metric("lighthouse_http_live_tail_bytes", "gauge", "Bytes held by the shared live tail.", ring_bytes_);
  metric("lighthouse_http_live_tail_events_total", "counter", "Events the live tail read from the store.", tail_events_);
  metric("lighthouse_http_catch_up_reads_total", "counter", "Chunks read from the store for subscribers behind the tail.",
         catch_up_reads_);
  metric("lighthouse_http_catch_up_events_total", "counter", "Events read from the store for subscribers behind the tail.",
         catch_up_events_);
  metric("lighthouse_http_subscriptions_fell_behind_total", "counter",
         "Times a slow subscriber fell behind the live tail and was served from the store again.", fell_behind_);
  metric("lighthouse_http_consumer_checkpoints_total", "counter", "Consumer checkpoints stored from acknowledgements.",
         checkpoints_.load());
  metric("lighthouse_http_live_tail_restarts_total", "counter", "Times the live tail stopped and was started again.",
         tail_restarts_);
  return out.str();
}

}  // namespace lighthouse::serve
