// SubscriptionHub — the subscriptions of one open store in this process:
// starts them, tells them of this process's commits, claims consumer names
// (one live subscription per name), stops them when the store closes, and
// reports their lag.
//
// Thread safety: safe for concurrent use.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "lighthouse/store.h"
#include "store/subscriber.h"

namespace lighthouse {

class Checkpoints;

class SubscriptionHub {
 public:
  // Validates and starts a subscription of `store` (see Store::subscribe).
  Subscription subscribe(const std::shared_ptr<Store::Impl>& store, bool read_only_handle, const Query& filter,
                         SubscriptionStart start, EventHandler handler, const SubscribeOptions& options);

  // One live subscription per consumer name in this process: claim throws
  // Error(invalid_argument) when the name is taken.
  void claim_consumer(const std::string& consumer);
  void release_consumer(const std::string& consumer) noexcept;

  // A commit of this process: every subscription looks again.
  void notify();
  // Stops every subscription and waits for each; stores the final
  // checkpoint of those whose thread could no longer reach the store (when
  // `checkpoints` is given: a store that can write).
  void stop_all(Checkpoints* checkpoints) noexcept;

  // Prometheus lines: running subscriptions and each one's lag.
  std::string metrics(Store& store, const std::optional<EventId>& last);

 private:
  std::vector<std::shared_ptr<Subscription::State>> live();

  std::mutex mutex_;  // guards both below
  std::vector<std::weak_ptr<Subscription::State>> subscriptions_;
  std::set<std::string> consumers_;  // named consumers with a live subscription here
};

}  // namespace lighthouse
