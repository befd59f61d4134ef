#include "serve/subscriptions.h"

#include <algorithm>
#include <sstream>

#include "json_event.h"
#include "lighthouse/error.h"
#include "lighthouse/time.h"

namespace lighthouse::serve {
namespace {

using tool::Json;

[[noreturn]] void invalid(const std::string& message) { throw Error(ErrorCode::invalid_argument, message); }

std::string shown(std::string_view text) {
  std::string out(text.substr(0, 64));
  return out.size() < text.size() ? out + "..." : out;
}

const std::string& string_field(const Json& value, const char* name) {
  if (!value.is_string()) invalid(std::string("subscription field '") + name + "' is not a string");
  return value.get_ref<const std::string&>();
}

void parse_filter(const Json& filter, SubscriptionRequest& r) {
  if (!filter.is_object()) invalid("subscription field 'filter' is not an object");
  for (const auto& [name, value] : filter.items()) {
    if (name == "types") {
      if (!value.is_array()) invalid("subscription field 'filter.types' is not an array of strings");
      for (const Json& t : value) r.types.push_back(string_field(t, "filter.types"));
    } else if (name == "type_prefix") {
      r.type_prefix = string_field(value, "filter.type_prefix");
    } else if (name == "aggregate") {
      r.aggregate = string_field(value, "filter.aggregate");
    } else {
      invalid("unknown subscription field 'filter." + shown(name) + "' (types, type_prefix, aggregate)");
    }
  }
}

void parse_start(const Json& start, SubscriptionRequest& r) {
  const char* expected = "subscription field 'start' is \"beginning\", \"end\", {\"after\": ID} or {\"time\": T}";
  if (start.is_string()) {
    if (start == "beginning") {
      r.start = SubscriptionRequest::Start::beginning;
    } else if (start == "end") {
      r.start = SubscriptionRequest::Start::end;
    } else {
      invalid(expected);
    }
    return;
  }
  if (!start.is_object() || start.size() != 1) invalid(expected);
  if (auto it = start.find("after"); it != start.end()) {
    r.start = SubscriptionRequest::Start::after;
    r.after = EventId::parse(string_field(*it, "start.after"));
  } else if (auto t = start.find("time"); t != start.end()) {
    r.start = SubscriptionRequest::Start::time;
    if (t->is_number_unsigned()) {
      r.time_ns = t->get<std::uint64_t>();
    } else {
      r.time_ns = parse_time(string_field(*t, "start.time"));
    }
  } else {
    invalid(expected);
  }
}

std::string control(const char* kind, const std::optional<EventId>& position) {
  Json c;
  c["kind"] = kind;
  c["position"] = position ? Json(position->to_string()) : Json(nullptr);
  return tool::dump(c);
}

bool after(const std::optional<EventId>& a, const std::optional<EventId>& b) {
  return a && (!b || *a > *b);
}

}  // namespace

SubscriptionRequest parse_subscription(const Json& message) {
  if (!message.is_object()) invalid("a subscription's first message is a JSON object: {\"filter\", \"start\", \"consumer\"}");
  SubscriptionRequest r;
  for (const auto& [name, value] : message.items()) {
    if (name == "filter") {
      parse_filter(value, r);
    } else if (name == "start") {
      parse_start(value, r);
    } else if (name == "consumer") {
      r.consumer = string_field(value, "consumer");
      if (r.consumer.empty()) invalid("subscription field 'consumer' is empty");
    } else if (name == "token") {
      r.token = string_field(value, "token");
    } else if (name == "credit") {
      if (!value.is_number_unsigned()) invalid("subscription field 'credit' is not a number of events");
      r.credit = value.get<std::uint64_t>();
    } else {
      invalid("unknown subscription field '" + shown(name) + "' (filter, start, consumer, token, credit)");
    }
  }
  return r;
}

// ---------------------------------------------------------------------------
// Subscriber

Subscriber::Subscriber(SubscriptionHub& hub, SubscriptionRequest request, std::function<void()> wake)
    : hub_(hub), request_(std::move(request)), wake_(std::move(wake)) {}

bool Subscriber::matches(const SharedEvent& e) const {
  if (request_.aggregate && e.aggregate != *request_.aggregate) return false;
  if (!request_.type_prefix.empty() && e.type.compare(0, request_.type_prefix.size(), request_.type_prefix) != 0) {
    return false;
  }
  if (!request_.types.empty() && std::find(request_.types.begin(), request_.types.end(), e.type) == request_.types.end()) {
    return false;
  }
  return true;
}

std::uint64_t Subscriber::sent() const {
  std::lock_guard lock(mutex_);
  return sent_;
}

void Subscriber::take_live(std::vector<Outgoing>& out, std::size_t& room) {
  if (hub_.base_ && !(scanned_ && *scanned_ >= *hub_.base_)) {
    // The ring moved on past it while its client was slow: the store again.
    mode_ = Mode::catch_up;
    ++hub_.fell_behind_;
    return;
  }
  for (std::size_t i = hub_.ring_index_after(scanned_); i < hub_.ring_.size() && room > 0; ++i) {
    const EventRef& e = hub_.ring_[i];
    scanned_ = e->id;
    if (!matches(*e)) continue;
    out.push_back({e, {}, false});
    last_sent_ = e->id;
    --room;
  }
  through_ = scanned_;
}

std::vector<Outgoing> Subscriber::take(std::size_t max) {
  std::vector<Outgoing> out;
  bool read = false;
  {
    std::lock_guard hub_lock(hub_.mutex_);
    std::lock_guard lock(mutex_);
    if (closed_) return out;
    while (!controls_.empty()) {
      out.push_back({nullptr, std::move(controls_.front()), false});
      controls_.pop_front();
    }
    if (!error_.empty() || closing_) {
      Json c;
      c["kind"] = "closing";
      c["reason"] = error_.empty() ? "the server is stopping" : error_;
      c["resume_after"] = through_ ? Json(through_->to_string()) : Json(nullptr);
      if (!request_.consumer.empty()) c["consumer"] = request_.consumer;
      out.push_back({nullptr, tool::dump(c), true});
      closed_ = true;  // nothing follows
      return out;
    }
    std::size_t room = credit_mode_ ? static_cast<std::size_t>(std::min<std::uint64_t>(credit_, max)) : max;
    const std::size_t granted = room;
    while (!ready_.empty() && (ready_.front().event == nullptr || room > 0)) {
      Outgoing& next = ready_.front();
      if (next.event) {
        last_sent_ = next.event->id;
        through_ = last_sent_;
        --room;
      }
      out.push_back(std::move(next));
      ready_.pop_front();
    }
    if (ready_.empty() && reading_ == false) {
      if (scanned_ && (!through_ || *scanned_ > *through_)) through_ = scanned_;
      if (mode_ == Mode::live && room > 0) take_live(out, room);
      if (mode_ == Mode::catch_up && room > 0) read = reading_ = true;
    }
    // Control messages (caught_up) carry no event and use no credit.
    std::size_t events = granted - room;
    sent_ += events;
    if (credit_mode_) credit_ -= events;
    if (out.empty()) waiting_ = true;
  }
  if (read) hub_.submit(shared_from_this());
  return out;
}

void Subscriber::grant(std::uint64_t n) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    credit_ = !credit_mode_ ? n : credit_ + std::min<std::uint64_t>(n, UINT64_MAX - credit_);
    credit_mode_ = true;
    wake = std::exchange(waiting_, false);
  }
  if (wake) wake_();
}

void Subscriber::acknowledge(const EventId& position) {
  std::lock_guard lock(mutex_);
  if (request_.consumer.empty()) invalid("an acknowledgement needs a subscription with a consumer");
  if (!through_ || position > *through_) {
    invalid("acknowledged position " + position.to_string() + " is after the last event sent");
  }
  if (after(position, acknowledged_) && after(position, stored_)) acknowledged_ = position;
}

void Subscriber::read_chunk() {
  std::optional<EventId> from;
  bool by_time = false;
  {
    std::lock_guard lock(mutex_);
    if (closed_) {
      reading_ = false;
      return;
    }
    from = scanned_;
    by_time = !started_ && request_.start == SubscriptionRequest::Start::time;
  }
  std::optional<EventId> head;
  {
    std::lock_guard hub_lock(hub_.mutex_);
    head = hub_.head();
  }
  Query q;
  q.types = request_.types;
  q.type_prefix = request_.type_prefix;
  q.aggregate = request_.aggregate;
  if (from) q.after_id = from;
  if (by_time) q.since_ns = request_.time_ns;
  q.limit = hub_.options_.chunk_events;
  std::vector<Outgoing> got;
  std::string error;
  try {
    EventCursor cursor = hub_.store_.query(q);
    RecordedEvent e;
    while (cursor.next(e)) {
      auto shared = std::make_shared<SharedEvent>();
      shared->id = e.id;
      shared->type = e.type;
      shared->aggregate = e.aggregate;
      shared->json = tool::recorded_event_json(e);
      got.push_back({std::move(shared), {}, false});
    }
  } catch (const Error& e) {
    error = std::string(to_string(e.code())) + ": " + e.what();
  }
  bool wake = false;
  {
    std::lock_guard hub_lock(hub_.mutex_);
    std::lock_guard lock(mutex_);
    ++hub_.catch_up_reads_;
    hub_.catch_up_events_ += got.size();
    reading_ = false;
    started_ = true;
    if (!error.empty()) {
      error_ = error;
    } else {
      const bool full = got.size() >= hub_.options_.chunk_events;
      std::optional<EventId> last = got.empty() ? from : std::optional<EventId>(got.back().event->id);
      // A chunk that ended before its limit saw every matching event up to
      // the snapshot's end, which is at or after the tail's head read before.
      scanned_ = full || !after(head, last) ? last : head;
      for (auto& o : got) ready_.push_back(std::move(o));
      if (!full && (!hub_.base_ || (scanned_ && *scanned_ >= *hub_.base_))) {
        mode_ = Mode::live;
        ready_.push_back({nullptr, control("caught_up", scanned_), false});
      }
    }
    wake = std::exchange(waiting_, false);
  }
  if (wake) wake_();
}

std::optional<EventId> Subscriber::close() {
  std::optional<EventId> pending;
  {
    std::lock_guard lock(mutex_);
    closed_ = true;
    pending = acknowledged_;
    acknowledged_.reset();
  }
  hub_.release(*this);
  if (request_.consumer.empty()) {
    std::lock_guard lock(mutex_);
    return through_;
  }
  if (pending) {
    try {
      hub_.store_.set_checkpoint(request_.consumer, *pending);
      std::lock_guard lock(mutex_);
      stored_ = pending;
      ++hub_.checkpoints_;
    } catch (const Error&) {
      // The store closed or failed: the checkpoint stays where it was.
    }
  }
  std::lock_guard lock(mutex_);
  return stored_;
}

// ---------------------------------------------------------------------------
// SubscriptionHub

SubscriptionHub::SubscriptionHub(Store& store, HubOptions options, bool writable)
    : store_(store), options_(options), writable_(writable) {
  Query last;
  last.direction = Direction::reverse;
  last.limit = 1;
  for (const RecordedEvent& e : store_.query(last)) base_ = e.id;
  for (std::size_t i = 0; i < std::max<std::size_t>(1, options_.catch_up_readers); ++i) {
    readers_.emplace_back([this] { read_loop(); });
  }
  if (writable_) checkpointer_ = std::thread([this] { checkpoint_loop(); });
  SubscribeOptions tail;
  tail.chunk_events = 512;
  tail_ = store_.subscribe({}, base_ ? SubscriptionStart::after(*base_) : SubscriptionStart::beginning(),
                           [this](const RecordedEvent& e) { on_tail_event(e); }, tail);
}

SubscriptionHub::~SubscriptionHub() { stop(); }

void SubscriptionHub::stop() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && readers_.empty()) return;
    stopping_ = true;
  }
  work_.notify_all();
  tick_.notify_all();
  tail_.cancel();
  for (auto& t : readers_) t.join();
  readers_.clear();
  if (checkpointer_.joinable()) checkpointer_.join();
}

std::optional<EventId> SubscriptionHub::head() const { return ring_.empty() ? base_ : ring_.back()->id; }

std::size_t SubscriptionHub::ring_index_after(const std::optional<EventId>& position) const {
  if (!position) return 0;
  auto it = std::upper_bound(ring_.begin(), ring_.end(), *position,
                             [](const EventId& p, const EventRef& e) { return p < e->id; });
  return static_cast<std::size_t>(it - ring_.begin());
}

void SubscriptionHub::on_tail_event(const RecordedEvent& event) {
  auto shared = std::make_shared<SharedEvent>();
  shared->id = event.id;
  shared->type = event.type;
  shared->aggregate = event.aggregate;
  shared->json = tool::recorded_event_json(event);
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
  if (subscribers_.size() >= options_.max_subscriptions) {
    throw Refused(503, "busy", "this server has its maximum of subscriptions open (--max-subscriptions)");
  }
  if (!s->request_.consumer.empty() && !consumers_.insert(s->request_.consumer).second) {
    throw Refused(409, "consumer_busy", "consumer '" + shown(s->request_.consumer) + "' is connected already");
  }
  std::lock_guard sub(s->mutex_);
  s->stored_ = checkpoint;
  if (checkpoint) {
    s->scanned_ = checkpoint;
    s->started_ = true;
  } else if (start == SubscriptionRequest::Start::end) {
    s->scanned_ = head();
    s->mode_ = Subscriber::Mode::live;
    s->ready_.push_back({nullptr, control("caught_up", s->scanned_), false});
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
  if (subscribers_.erase(&subscriber) != 0 && !subscriber.request_.consumer.empty()) {
    consumers_.erase(subscriber.request_.consumer);
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
    for (auto& [raw, weak] : subscribers_) {
      auto s = weak.lock();
      if (s && s->request_.consumer == consumer) connected = std::move(s);
    }
  }
  if (connected) connected->acknowledge(position);
  store_.set_checkpoint(consumer, position);
  if (connected) {
    std::lock_guard lock(connected->mutex_);
    if (after(position, connected->stored_)) connected->stored_ = position;
    if (connected->acknowledged_ && !after(*connected->acknowledged_, connected->stored_)) {
      connected->acknowledged_.reset();
    }
  }
  std::lock_guard lock(mutex_);
  ++checkpoints_;
}

void SubscriptionHub::close_all() {
  std::vector<std::shared_ptr<Subscriber>> all;
  {
    std::lock_guard lock(mutex_);
    for (auto& [raw, weak] : subscribers_) {
      if (auto s = weak.lock()) all.push_back(std::move(s));
    }
  }
  for (auto& s : all) {
    bool wake = false;
    {
      std::lock_guard lock(s->mutex_);
      s->closing_ = true;
      wake = std::exchange(s->waiting_, false);
    }
    if (wake) s->wake_();
  }
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
// `checkpoint` message tells the client once its position is durable.
void SubscriptionHub::checkpoint_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    tick_.wait_for(lock, options_.checkpoint_interval);
    if (stopping_) return;
    std::vector<std::pair<std::shared_ptr<Subscriber>, EventId>> due;
    for (auto& [raw, weak] : subscribers_) {
      auto s = weak.lock();
      if (!s) continue;
      std::lock_guard sub(s->mutex_);
      if (s->acknowledged_) due.emplace_back(std::move(s), *std::exchange(s->acknowledged_, std::nullopt));
    }
    lock.unlock();
    for (auto& [s, position] : due) {
      bool wake = false;
      try {
        store_.set_checkpoint(s->request_.consumer, position);
        std::lock_guard sub(s->mutex_);
        if (after(position, s->stored_)) s->stored_ = position;
        Json c;
        c["kind"] = "checkpoint";
        c["consumer"] = s->request_.consumer;
        c["position"] = position.to_string();
        s->controls_.push_back(tool::dump(c));
        wake = std::exchange(s->waiting_, false);
      } catch (const Error& e) {
        std::lock_guard sub(s->mutex_);
        s->error_ = "the checkpoint could not be stored: " + std::string(e.what());
        wake = std::exchange(s->waiting_, false);
      }
      if (wake) s->wake_();
    }
    lock.lock();
    checkpoints_ += due.size();
  }
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
         checkpoints_);
  return out.str();
}

}  // namespace lighthouse::serve
