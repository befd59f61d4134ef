// The methods of Subscription, the handle of a running subscription
// (its thread is store/subscriber.cpp, its registry store/subscription_hub.cpp).
#include "lighthouse/subscription.h"

#include "store/store_impl.h"
#include "store/subscriber.h"

namespace lighthouse {
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

Subscription::Subscription() = default;
Subscription::Subscription(std::shared_ptr<State> state) : state_(std::move(state)) {}
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
                "Subscription::cancel() cannot wait from a store callback (on_sla_breach, on_health_change): its "
                "last checkpoint waits for the committer, on whose thread the callback runs; drop the handle there "
                "instead (it stops without waiting)");
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
                "Subscription::wait() cannot wait from a store callback: the subscription may be waiting for the "
                "committer, on whose thread the callback runs");
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

SubscriptionLag Subscription::lag() const {
  if (!state_) return {};
  auto impl = state_->store.lock();
  if (!impl) return {};
  std::optional<EventId> last;
  {
    auto lock = impl->env().use();
    last = impl->reader().last_event_id();
  }
  Store store = StoreAccess::handle(std::move(impl), true);
  return lag_of(*state_, store, last);
}

}  // namespace lighthouse
