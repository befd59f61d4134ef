// Replication into a NATS JetStream stream (docs/replication.md): a primary's
// replicator publishes every event, in sequence order, so that the stream's
// sequence is the store's; read replicas follow the stream; a replica can be
// promoted, and a stale primary is fenced.
//
// A library of its own (liblighthouse_replication, Meson dependency
// `lighthouse_replication`): it links the NATS C client; the store does not.
//
// Thread safety: Replicator and Replica are safe to use from several threads;
// each runs one thread of its own.
#pragma once

#include <cstdint>
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "lighthouse/store.h"

namespace lighthouse::replication {

// Where the log is replicated to.
struct StreamOptions {
  std::vector<std::string> servers;  // NATS URLs: nats://127.0.0.1:4222, ...
  std::string stream;                // the JetStream stream's name
  // The one subject the stream holds; empty: "lighthouse.<stream>".
  std::string subject;
  // Each JetStream request and each publish's acknowledgement.
  double timeout_seconds = 5;
};

// async: an append is acknowledged once durable in the store; the
// replicator follows. quorum: an append completes once the stream
// acknowledged its events (or fails with Error(replication_pending) after
// Options::quorum_timeout_seconds), and the store's readers see events up to
// the acknowledged position only — in every process (docs/replication.md).
enum class ReplicationMode : std::uint8_t { async, quorum };
LIGHTHOUSE_API std::string_view to_string(ReplicationMode mode) noexcept;

struct ReplicatorOptions {
  StreamOptions nats;
  // Starting a replicator in async mode takes a store out of quorum mode.
  ReplicationMode mode = ReplicationMode::async;
  // Replicas (R) of the stream the replicator creates when it is missing.
  int replicas = 3;
  // Publishes in flight (pipelined) at most.
  std::size_t window = 1024;
  // The confirmed position is stored in the store's meta (durably) when it
  // moved by this many events or this many seconds since it was last stored
  // (in quorum mode: at most 10 ms, for the other processes' appends and
  // readers).
  std::uint64_t persist_every_events = 10'000;
  double persist_every_seconds = 1.0;
};

struct ReplicatorStatus {
  enum class State : std::uint8_t { connecting, reconciling, replicating, stopped };
  State state = State::connecting;
  std::uint64_t confirmed = 0;        // the last sequence the stream acknowledged
  std::uint64_t persisted = 0;        // the confirmed position stored in meta
  std::uint64_t store_last = 0;       // the store's last sequence, as last seen
  std::uint64_t published = 0;        // publishes sent since start
  std::uint64_t reconciliations = 0;  // comparisons with the stream after an error or at start
  // The age of the oldest event the stream has not acknowledged (0: none),
  // as last measured (once a second). A health trigger of the store:
  // HealthOptions::replication_lag_warning_seconds / _degraded_seconds.
  double lag_seconds = 0;
  ReplicationMode mode = ReplicationMode::async;
  std::uint64_t appends_waiting = 0;  // quorum mode: appends of this process waiting for the stream
  std::string last_error;             // the last transient error (reconnects, timeouts)
  // Set when the replicator stopped for good: the stream holds at some
  // sequence a message that is not this store's event.
  std::string stopped_reason;
  bool fenced = false;  // the stream moved on under another primary
  std::uint64_t unreplicated = 0;  // this store's events the stream does not hold (when stopped)
  std::uint64_t lag() const noexcept { return store_last > confirmed ? store_last - confirmed : 0; }
};

LIGHTHOUSE_API std::string_view to_string(ReplicatorStatus::State state) noexcept;

// Runs the replicator of a primary store on a thread of its own.
class LIGHTHOUSE_API Replicator {
 public:
  // Checks the options and starts. Connects, creates the stream if missing
  // (R = replicas, file storage, deletes and purges denied, a maximum
  // message size of the store's max_record_bytes and more) and checks
  // every stream message after the store's confirmed position against the
  // store's event, before the first publish. Errors: invalid_argument (bad
  // options; a read replica; a stream of other subjects; the server's
  // max_payload below the store's largest record), io_error (no server
  // answers within timeout_seconds).
  static Replicator start(Store store, const ReplicatorOptions& options);

  ReplicatorStatus status() const;
  // Waits until the stream confirmed `sequence` (true) or the replicator
  // stopped, or `seconds` passed (false).
  bool wait_confirmed(std::uint64_t sequence, double seconds) const;
  // Waits until the replicator stopped for good, or `seconds` passed.
  bool wait_stopped(double seconds) const;
  // Stores the confirmed position and stops. Idempotent.
  void stop();

  ~Replicator();
  Replicator(Replicator&&) noexcept;
  Replicator& operator=(Replicator&&) noexcept;
  class Impl;

 private:
  explicit Replicator(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

struct ReplicaOptions {
  StreamOptions nats;
  Options store;  // for creating and opening the replica's store
  // How long start() waits for the stream to appear (0: forever).
  double wait_for_stream_seconds = 0;
  std::size_t apply_batch = 2048;  // events applied per transaction at most
};

struct ReplicaStatus {
  std::uint64_t applied = 0;      // the replica's last sequence
  std::uint64_t stream_last = 0;  // the stream's last sequence, as last seen
  // Times the replica read the stream's state (it does when no message
  // came for a while): applied == stream_last after a read that followed
  // the last event applied means caught up.
  std::uint64_t stream_checks = 0;
  std::uint64_t lag() const noexcept { return stream_last > applied ? stream_last - applied : 0; }
  std::string last_error;  // the last transient error
  std::string stopped_reason;  // set when it stopped for good
  bool running = true;
};

// Follows a stream into a read replica on a thread of its own.
class LIGHTHOUSE_API Replica {
 public:
  // Opens the store at `path` (creating it if missing), marks it a replica
  // of the stream, waits for the stream, checks that the store's last event
  // is the stream's at that sequence (a store imported from an archive of
  // the primary continues from its last event), and follows.
  // Errors: invalid_argument (bad options; a store that is not a prefix of
  // the stream; a primary), io_error (no server, or no stream in time), and
  // those of Store::open.
  static Replica start(const std::filesystem::path& path, const ReplicaOptions& options);

  ReplicaStatus status() const;
  // Waits until the replica applied `sequence` (true), or stopped, or
  // `seconds` passed.
  bool wait_applied(std::uint64_t sequence, double seconds) const;
  Store store() const;
  void stop();  // idempotent

  ~Replica();
  Replica(Replica&&) noexcept;
  Replica& operator=(Replica&&) noexcept;
  class Impl;

 private:
  explicit Replica(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;
};

struct PromoteReport {
  std::uint64_t applied = 0;         // events applied from the stream first
  std::uint64_t stream_last = 0;     // the stream's last sequence when promoted
  std::string promoted_event;        // the ID of the `$replication.promoted` event
};

// Promotes a read replica (not followed by a running Replica): applies
// everything the stream holds, makes the store a primary with a store ID of
// its own, and appends a `$replication.promoted` event, which the caller's
// replicator (Replicator::start) then publishes. Errors: invalid_argument
// (not a replica, or a replica of another stream), io_error (no server),
// corruption (a stream message that fails its checksum or chain).
LIGHTHOUSE_API PromoteReport promote(Store& store, const StreamOptions& options);

}  // namespace lighthouse::replication
