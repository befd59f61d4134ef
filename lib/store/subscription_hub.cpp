#include "store/subscription_hub.h"

#include "monitor/log.h"
#include "store/checkpoints.h"
#include "store/store_impl.h"
#include "store/validation.h"

namespace lighthouse {
namespace {

bool has_bounds(const Query& q) {
  return q.after_id || q.before_id || q.from_sequence || q.to_sequence || q.since_ns || q.until_ns || q.limit != 0 ||
         q.direction != Direction::forward;
}

void check_subscription(const Query& filter, const EventHandler& handler, SubscriptionStart start,
                        const SubscribeOptions& options) {
  if (has_bounds(filter)) {
    throw Error(ErrorCode::invalid_argument,
                "a subscription's filter takes types, a type prefix and an aggregate; its start gives the position "
                "(no ID, sequence or time bounds, limit or direction)");
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
  if (!options.consumer.empty()) validation::check_consumer(options.consumer);
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

Subscription SubscriptionHub::subscribe(const std::shared_ptr<Store::Impl>& store, bool read_only_handle,
                                        const Query& filter, SubscriptionStart start, EventHandler handler,
                                        const SubscribeOptions& options) {
  check_subscription(filter, handler, start, options);
  if (!options.consumer.empty()) store->refuse_read_only(read_only_handle);
  store->reader().explain(ReadRequest::of(filter));  // a malformed filter fails here, on the caller's thread
  // The consumer's name is this subscription's until its thread ends.
  struct Claim {
    SubscriptionHub* hub = nullptr;
    std::string consumer;
    ~Claim() {
      if (hub) hub->release_consumer(consumer);
    }
  } claim;
  if (!options.consumer.empty()) {
    claim_consumer(options.consumer);
    claim.hub = this;
    claim.consumer = options.consumer;
  }
  auto state = std::make_shared<Subscription::State>();
  state->store = store;
  state->filter = filter;
  state->start = start;
  state->handler = std::move(handler);
  state->options = options;
  state->read_only_handle = read_only_handle;
  if (!options.consumer.empty()) {
    if (auto stored = store->reader().checkpoint(options.consumer)) state->start = SubscriptionStart::after(*stored);
  }
  if (state->start.kind == SubscriptionStart::Kind::now) {
    auto lock = store->env().use();
    auto last = store->reader().last_event_id();
    state->start = last ? SubscriptionStart::after(*last) : SubscriptionStart::beginning();
  }
  Subscriber::start(state);
  claim.hub = nullptr;  // the thread releases the name when it ends
  // Registered once its thread exists, so that close() can always join it.
  {
    std::lock_guard lock(mutex_);
    std::erase_if(subscriptions_, [](const auto& weak) { return weak.expired(); });  // forget the ones that ended
    subscriptions_.push_back(state);
  }
  return Subscription(std::move(state));
}

void SubscriptionHub::claim_consumer(const std::string& consumer) {
  std::lock_guard lock(mutex_);
  if (!consumers_.insert(consumer).second) {
    throw Error(ErrorCode::invalid_argument, "consumer '" + consumer +
                                                 "' already has a live subscription in this process: two would "
                                                 "overwrite each other's checkpoint");
  }
}

void SubscriptionHub::release_consumer(const std::string& consumer) noexcept {
  std::lock_guard lock(mutex_);
  consumers_.erase(consumer);
}

void SubscriptionHub::notify() {
  std::lock_guard lock(mutex_);
  for (const auto& weak : subscriptions_) {
    if (auto state = weak.lock()) state->notify_commit();
  }
}

std::vector<std::shared_ptr<Subscription::State>> SubscriptionHub::live() {
  std::vector<std::shared_ptr<Subscription::State>> states;
  std::lock_guard lock(mutex_);
  for (const auto& weak : subscriptions_) {
    if (auto state = weak.lock()) states.push_back(std::move(state));
  }
  return states;
}

void SubscriptionHub::stop_all(Checkpoints* checkpoints) noexcept {
  std::vector<std::shared_ptr<Subscription::State>> states = live();
  {
    std::lock_guard lock(mutex_);
    subscriptions_.clear();
  }
  for (const auto& state : states) {
    state->stop_and_join();
    // The store may be closing because its last handle was dropped: the
    // thread could not reach it for its final checkpoint, so it is stored
    // here, while the committer still runs.
    if (checkpoints == nullptr) continue;
    try {
      checkpoints->store_auto(*state);
    } catch (const std::exception& error) {
      monitor::log().warn("lighthouse subscription: final checkpoint of '{}' not stored: {}", state->options.consumer,
                          error.what());
    }
  }
}

std::string SubscriptionHub::metrics(Store& store, const std::optional<EventId>& last) {
  std::string out =
      "# HELP lighthouse_subscriptions Subscriptions running in this process.\n"
      "# TYPE lighthouse_subscriptions gauge\n";
  std::size_t running = 0, anonymous = 0;
  std::string lags, seconds;
  for (const auto& state : live()) {
    {
      std::lock_guard lock(state->mutex);
      if (state->stopped) continue;
    }
    ++running;
    const std::string name =
        state->options.consumer.empty() ? "anonymous-" + std::to_string(++anonymous) : state->options.consumer;
    const SubscriptionLag lag = lag_of(*state, store, last);
    lags += "lighthouse_subscription_lag_events{subscription=\"" + label(name) + "\"} " + std::to_string(lag.events) +
            "\n";
    seconds += "lighthouse_subscription_lag_seconds{subscription=\"" + label(name) + "\"} " +
               std::to_string(lag.seconds) + "\n";
  }
  out += "lighthouse_subscriptions " + std::to_string(running) + "\n";
  out +=
      "# HELP lighthouse_subscription_lag_events Store events after the subscription's position.\n"
      "# TYPE lighthouse_subscription_lag_events gauge\n" +
      lags;
  out +=
      "# HELP lighthouse_subscription_lag_seconds Age of the oldest event the subscription has not delivered.\n"
      "# TYPE lighthouse_subscription_lag_seconds gauge\n" +
      seconds;
  return out;
}

}  // namespace lighthouse
