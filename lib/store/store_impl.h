// Store::Impl — one open store, shared by every Store handle of this process
// that opened the same path (the per-process registry). It composes the
// parts that do the work, each with its own state and lock:
//
//   Environment       the LMDB environment, transactions, map, failure state
//   Databases         the named databases (store/schema.h: their codecs)
//   SlaMonitor        timings of transactions, appends and queries
//   HealthController  the health state, its triggers and transitions
//   ReplicationGate   quorum replication: held appends, the readers' cap
//   ReadPath          get and every cursor (query, read_aggregate, ...)
//   WritePath         appends and the exclusive tasks, on the committer
//   Checkpoints       the consumers' stored positions
//   SubscriptionHub   the subscriptions of this process
//
// Store's methods (lib/store/store.cpp) hand their work to these parts.
// docs/architecture.md draws who calls whom and the lock order.
#pragma once

#include <filesystem>
#include <memory>
#include <optional>

#include "lighthouse/store.h"
#include "monitor/sla_monitor.h"
#include "store/checkpoints.h"
#include "store/environment.h"
#include "store/health_controller.h"
#include "store/read_path.h"
#include "store/replication_gate.h"
#include "store/schema.h"
#include "store/subscription_hub.h"
#include "store/write_path.h"

namespace lighthouse {

// The library's own way from a Store handle to its Impl, and back.
struct StoreAccess {
  static Store::Impl& impl(const Store& store) { return store.impl(); }
  static const std::shared_ptr<Store::Impl>& shared(const Store& store) { return store.impl_; }
  static Store handle(std::shared_ptr<Store::Impl> impl, bool read_only) { return Store(std::move(impl), read_only); }
  static bool read_only_handle(const Store& store) { return store.read_only_handle_; }
};

class Store::Impl {
 public:
  // Opens the store at `path` or returns the one this process already has
  // open (the per-process registry).
  static std::shared_ptr<Impl> open(const std::filesystem::path& path, const Options& options);

  Impl(std::filesystem::path canonical_path, const Options& options);
  ~Impl();  // shutdown()
  Impl(const Impl&) = delete;
  Impl& operator=(const Impl&) = delete;

  // Stops the subscriptions, commits what is queued, closes the environment
  // and leaves the registry; later calls raise Error(closed). Idempotent.
  void shutdown() noexcept;

  const std::filesystem::path& path() const noexcept { return path_; }
  const Options& options() const noexcept { return options_; }
  std::uint32_t node_id() const noexcept { return identity_.node_id; }
  std::uint32_t format_version() const noexcept { return identity_.format_version; }

  Environment& env() noexcept { return *env_; }
  const Databases& dbs() const noexcept { return identity_.dbs; }
  monitor::SlaMonitor* monitor() const noexcept { return monitor_.get(); }
  HealthController& health() noexcept { return *health_; }
  const ReadPath& reader() const noexcept { return *reader_; }
  SubscriptionHub& hub() noexcept { return hub_; }
  ReplicationGate& gate() noexcept { return *gate_; }
  // The parts of a store that can write. Error(read_only) when it cannot.
  WritePath& writer() const;
  Checkpoints& checkpoints() const;

  // Throws Error(read_only) iff the store, or the handle asking
  // (`handle_read_only`), may not write.
  void refuse_read_only(bool handle_read_only) const;
  // True on the committer's thread (where the store's callbacks run).
  bool on_committer_thread() const noexcept { return writer_ && writer_->on_committer_thread(); }
  // Throws Error(invalid_argument) there: `what` would wait for itself.
  void refuse_on_committer_thread(const char* what) const {
    if (writer_) writer_->refuse_on_committer_thread(what);
  }

  StoreStats stats() const;
  // Appends queued for the committer now.
  std::size_t backlog() const { return writer_ ? writer_->backlog() : 0; }

 private:
  // The O(1) checks of open: the meta counters against the ends of `events`.
  void check_invariants(MDB_txn* txn) const;
  HealthController::Effects health_effects();

  // Fixed after construction, in construction order.
  const std::filesystem::path path_;
  Options options_;  // read_only set when the store's format is older than this build writes
  std::unique_ptr<Environment> env_;
  schema::Identity identity_;
  std::unique_ptr<monitor::SlaMonitor> monitor_;  // null when Options::monitor is off
  std::unique_ptr<HealthController> health_;
  std::unique_ptr<ReplicationGate> gate_;
  std::unique_ptr<ReadPath> reader_;
  SubscriptionHub hub_;
  std::unique_ptr<WritePath> writer_;         // null when read-only
  std::unique_ptr<Checkpoints> checkpoints_;  // null when read-only
};

}  // namespace lighthouse
