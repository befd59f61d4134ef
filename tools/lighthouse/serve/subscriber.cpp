// What a client asks for, and each subscriber: its position, credit,
// acknowledgements and catch-up reads (the hub is subscriptions.cpp).
#include "serve/subscriptions.h"

#include <algorithm>
#include <sstream>

#include "json_event.h"
#include "lighthouse/error.h"
#include "parse.h"
#include "lighthouse/time.h"

namespace lighthouse::serve {
namespace {

using tool::Json;

[[noreturn]] void invalid(const std::string& message) { throw Error(ErrorCode::invalid_argument, message); }

using tool::shown;

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

}  // namespace

Outgoing control_message(const char* kind, const std::optional<EventId>& position) {
  Json c;
  c["kind"] = kind;
  c["position"] = position ? Json(position->to_string()) : Json(nullptr);
  return Outgoing::message(kind, tool::dump(c));
}

EventRef shared_event(const RecordedEvent& event) {
  auto shared = std::make_shared<SharedEvent>();
  shared->id = event.id;
  shared->type = event.type;
  shared->aggregate = event.aggregate;
  shared->json = tool::recorded_event_json(event);
  return shared;
}

bool later(const std::optional<EventId>& a, const std::optional<EventId>& b) { return a && (!b || *a > *b); }

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

void Subscriber::close_with(const std::string& why) {
  bool wake = false;
  {
    std::lock_guard lock(mutex_);
    if (why.empty()) {
      closing_ = true;
    } else if (error_.empty()) {
      error_ = why;
    }
    wake = std::exchange(waiting_, false);
  }
  if (wake) wake_();
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
    out.push_back(Outgoing::of(e));
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
      out.push_back(std::move(controls_.front()));
      controls_.pop_front();
    }
    if (!error_.empty() || closing_) {
      Json c;
      c["kind"] = "closing";
      c["reason"] = error_.empty() ? "the server is stopping" : error_;
      c["resume_after"] = through_ ? Json(through_->to_string()) : Json(nullptr);
      if (!request_.consumer.empty()) c["consumer"] = request_.consumer;
      out.push_back(Outgoing::message("closing", tool::dump(c), true));
      closed_ = true;  // nothing follows
      return out;
    }
    std::size_t room = credit_mode_ ? static_cast<std::size_t>(std::min<std::uint64_t>(credit_, max)) : max;
    const std::size_t granted = room;
    while (!ready_.empty() && (ready_.front().event == nullptr || room > 0)) {
      Outgoing& next = ready_.front();
      if (next.event) {
        through_ = next.event->id;
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
    if (credit_mode_) credit_ -= granted - room;
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
  if (later(position, acknowledged_) && later(position, stored_)) acknowledged_ = position;
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
    const tracing::UntracedScope untraced;  // the hub's plumbing, not a query of a client's
    EventCursor cursor = hub_.store_.query(q);
    RecordedEvent e;
    while (cursor.next(e)) got.push_back(Outgoing::of(shared_event(e)));
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
      scanned_ = full || !later(head, last) ? last : head;
      for (auto& o : got) ready_.push_back(std::move(o));
      if (!full && (!hub_.base_ || (scanned_ && *scanned_ >= *hub_.base_))) {
        mode_ = Mode::live;
        ready_.push_back(control_message("caught_up", scanned_));
      }
    }
    wake = std::exchange(waiting_, false);
  }
  if (wake) wake_();
}

bool Subscriber::store_checkpoint(const EventId& position, bool forward) {
  std::lock_guard store(store_mutex_);
  {
    std::lock_guard lock(mutex_);
    if (forward && !later(position, stored_)) return false;
  }
  hub_.store_.set_checkpoint(request_.consumer, position);
  std::lock_guard lock(mutex_);
  stored_ = position;
  if (acknowledged_ && !later(*acknowledged_, stored_)) acknowledged_.reset();
  ++hub_.checkpoints_;
  return true;
}

// The last acknowledgement is stored before the consumer's name is free
// again: a client that reconnects at once reads it.
std::optional<EventId> Subscriber::close() {
  std::optional<EventId> pending;
  {
    std::lock_guard lock(mutex_);
    if (closed_ && released_) return request_.consumer.empty() ? through_ : stored_;
    closed_ = true;
    released_ = true;
    pending = acknowledged_;
  }
  if (!request_.consumer.empty() && pending) {
    try {
      store_checkpoint(*pending, true);
    } catch (const Error&) {
      // The store closed or failed: the checkpoint stays where it was.
    }
  }
  hub_.release(*this);
  std::lock_guard lock(mutex_);
  return request_.consumer.empty() ? through_ : stored_;
}

}  // namespace lighthouse::serve
