// A read replica (docs/replication.md, "Read replicas"): an ordered consumer
// of the stream from the replica's next sequence; every message decoded and
// its checksum checked, then applied as the primary wrote it (IDs, chain,
// versions: replication_access::apply, which checks that each event follows
// the store's last). And promote().
#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include <nlohmann/json.hpp>

#include "lighthouse/replication.h"
#include "replication/keys.h"
#include "replication/nats_client.h"
#include "store/replication_access.h"

namespace lighthouse::replication {
namespace access = replication_access;
using Clock = std::chrono::steady_clock;

namespace {

struct ReplicaStop {
  std::string reason;
};

// The stream's message at the store's last sequence must be the store's last
// event: then the store is a prefix of the stream (each event's chain value
// covers all before it).
void check_prefix(const Store& store, const Connection& connection, const StreamOptions& options) {
  const StoreStats stats = store.stats();
  if (stats.last_sequence == 0) return;
  const std::optional<StreamMessage> m = connection.message(options.stream, stats.last_sequence);
  const std::string where = "store '" + store.path().string() + "'";
  if (!m) {
    throw Error(ErrorCode::invalid_argument, where + " holds " + std::to_string(stats.last_sequence) +
                                                 " events, more than " + describe(options) +
                                                 ": it is not a replica of that stream");
  }
  Query q;
  q.from_sequence = stats.last_sequence;
  q.limit = 1;
  EventCursor cursor = store.query(q);
  const std::optional<RecordedEvent> last = cursor.next();
  if (!last || access::encode_message(*last) != m->data) {
    throw Error(ErrorCode::invalid_argument, where + "'s event " + std::to_string(stats.last_sequence) +
                                                 " is not the message of " + describe(options) +
                                                 " at that sequence: the store is not a prefix of the stream");
  }
}

// Applies the stream's messages after the store's last event, up to `until`
// (0: forever, until `stopping`), through an ordered consumer. Calls
// `applied(last, stream_last, false)` after each transaction, and
// `applied(last, stream_last, true)` after reading the stream's state.
template <typename Stopping, typename Applied>
void follow(Store& store, const Connection& connection, const StreamOptions& options, std::size_t batch_size,
            std::uint64_t until, Stopping stopping, Applied applied) {
  std::uint64_t last = store.stats().last_sequence;
  if (until != 0 && last >= until) return;
  jsSubOptions so;
  jsSubOptions_Init(&so);
  so.Stream = options.stream.c_str();
  so.Ordered = true;
  so.Config.DeliverPolicy = js_DeliverByStartSequence;
  so.Config.OptStartSeq = last + 1;
  natsSubscription* sub = nullptr;
  jsErrCode code = static_cast<jsErrCode>(0);
  const std::string subject = subject_of(options);
  natsStatus s = js_SubscribeSync(&sub, connection.js(), subject.c_str(), nullptr, &so, &code);
  if (s != NATS_OK) throw Error(ErrorCode::io_error, nats_failure("following " + describe(options), s, code));
  struct Unsubscribe {
    natsSubscription* sub;
    ~Unsubscribe() {
      natsSubscription_Unsubscribe(sub);
      natsSubscription_Destroy(sub);
    }
  } unsubscribe{sub};
  std::vector<RecordedEvent> batch;
  std::uint64_t stream_last = last;
  auto flush = [&] {
    if (batch.empty()) return;
    try {
      access::apply(store, batch);
    } catch (const Error& e) {
      if (e.code() == ErrorCode::io_error || e.code() == ErrorCode::closed) throw;
      throw ReplicaStop{e.what()};
    }
    last = batch.back().id.sequence;
    batch.clear();
    applied(last, stream_last, false);
  };
  const auto timeout_ms = static_cast<std::int64_t>(options.timeout_seconds * 1000);
  Clock::time_point quiet_since = Clock::now();
  Clock::time_point refreshed = Clock::now() - std::chrono::seconds(1);
  while (!stopping()) {
    natsMsg* msg = nullptr;
    s = natsSubscription_NextMsg(&msg, sub, 100);
    if (s == NATS_TIMEOUT) {
      flush();
      // Quiet: the stream's last sequence from the stream itself (a stalled
      // consumer must not look caught up).
      if (Clock::now() - refreshed >= std::chrono::milliseconds(200)) {
        refreshed = Clock::now();
        if (const std::optional<StreamState> state = connection.stream_state(options.stream)) {
          stream_last = state->last;
          applied(last, stream_last, true);
        }
      }
      if (until != 0 && Clock::now() - quiet_since > std::chrono::milliseconds(timeout_ms)) {
        throw Error(ErrorCode::io_error, "no message of " + describe(options) + " after sequence " +
                                             std::to_string(last) + " within the timeout (the stream ends at " +
                                             std::to_string(until) + ")");
      }
      continue;
    }
    if (s != NATS_OK) throw Error(ErrorCode::io_error, nats_failure("following " + describe(options), s));
    quiet_since = Clock::now();
    jsMsgMetaData* meta = nullptr;
    std::uint64_t seq = 0, pending = 0;
    if (natsMsg_GetMetaData(&meta, msg) == NATS_OK) {
      seq = meta->Sequence.Stream;
      pending = meta->NumPending;
      jsMsgMetaData_Destroy(meta);
    }
    const std::uint64_t expected = last + batch.size() + 1;
    if (seq < expected) {  // seen already (a redelivery after a reconnect)
      natsMsg_Destroy(msg);
      continue;
    }
    if (seq != expected) {
      natsMsg_Destroy(msg);
      throw ReplicaStop{describe(options) + " has no message at sequence " + std::to_string(expected) +
                        " (the next is " + std::to_string(seq) + "): a stream of a store's log has no gaps"};
    }
    const std::string where = describe(options) + ", message " + std::to_string(seq);
    RecordedEvent event;
    try {
      event = access::decode_message(
          std::string_view(natsMsg_GetData(msg), static_cast<std::size_t>(natsMsg_GetDataLength(msg))), where);
    } catch (const Error& e) {
      natsMsg_Destroy(msg);
      throw ReplicaStop{e.what()};
    }
    natsMsg_Destroy(msg);
    if (event.id.sequence != seq) {
      throw ReplicaStop{where + " holds event " + event.id.to_string() + " of another sequence"};
    }
    batch.push_back(std::move(event));
    stream_last = seq + pending;
    if (batch.size() >= batch_size || pending == 0 || (until != 0 && seq >= until)) flush();
    if (until != 0 && last >= until) return;
  }
  flush();
}

}  // namespace

class Replica::Impl {
 public:
  Impl(const std::filesystem::path& path, const ReplicaOptions& options) : options_(options) {
    check_stream_options(options_.nats);
    if (options_.apply_batch < 1 || options_.apply_batch > 100'000) {
      throw Error(ErrorCode::invalid_argument, "the apply batch must be 1 to 100000 events");
    }
    if (options_.wait_for_stream_seconds < 0) throw Error(ErrorCode::invalid_argument, "the stream wait must be >= 0 s");
    Options store_options = options_.store;
    store_options.create_if_missing = true;
    store_ = Store::open(path, store_options);
    access::refuse_writes_if_read_only(*store_);
    const std::optional<std::string> stream = access::read(*store_, keys::kReplicaStream);
    if (stream && *stream != options_.nats.stream) {
      throw Error(ErrorCode::invalid_argument, "store '" + path.string() + "' is a replica of stream '" + *stream +
                                                   "', not of '" + options_.nats.stream + "'");
    }
    connection_ = std::make_unique<Connection>(options_.nats);
    wait_for_stream();
    if (!stream) check_prefix(*store_, *connection_, options_.nats);
    access::write(*store_, {{std::string(keys::kReplicaOf), describe(options_.nats)},
                           {std::string(keys::kReplicaStream), options_.nats.stream}});
    status_.applied = store_->stats().last_sequence;
    thread_ = std::thread([this] { run(); });
  }
  ~Impl() { stop(); }

  ReplicaStatus status() const {
    std::lock_guard lock(mutex_);
    return status_;
  }

  bool wait_applied(std::uint64_t sequence, double seconds) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::duration<double>(seconds),
                             [&] { return status_.applied >= sequence || !status_.running; }) &&
           status_.applied >= sequence;
  }

  Store store() const { return *store_; }

  void stop() {
    stopping_ = true;
    if (thread_.joinable()) thread_.join();
    connection_.reset();
    std::lock_guard lock(mutex_);
    status_.running = false;
    changed_.notify_all();
  }

 private:
  void wait_for_stream() {
    const auto deadline = Clock::now() + std::chrono::duration<double>(options_.wait_for_stream_seconds);
    while (!connection_->stream_state(options_.nats.stream)) {
      if (options_.wait_for_stream_seconds > 0 && Clock::now() >= deadline) {
        throw Error(ErrorCode::io_error, "no " + describe(options_.nats) + " within " +
                                             std::to_string(options_.wait_for_stream_seconds) + " s");
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
  }

  void run() {
    while (!stopping_) {
      try {
        follow(*store_, *connection_, options_.nats, options_.apply_batch, 0, [this] { return stopping_.load(); },
               [this](std::uint64_t applied, std::uint64_t stream_last, bool checked) {
                 std::lock_guard lock(mutex_);
                 if (checked) ++status_.stream_checks;
                 status_.applied = applied;
                 status_.stream_last = std::max(stream_last, applied);
                 changed_.notify_all();
               });
      } catch (const ReplicaStop& s) {
        std::lock_guard lock(mutex_);
        status_.stopped_reason = "the replica stopped: " + s.reason;
        status_.running = false;
        changed_.notify_all();
        return;
      } catch (const std::exception& e) {
        {
          std::lock_guard lock(mutex_);
          status_.last_error = e.what();
        }
        for (int i = 0; i < 5 && !stopping_; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(50));
      }
    }
  }

  ReplicaOptions options_;
  std::optional<Store> store_;
  std::unique_ptr<Connection> connection_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  ReplicaStatus status_;
};

Replica Replica::start(const std::filesystem::path& path, const ReplicaOptions& options) {
  return Replica(std::make_shared<Impl>(path, options));
}
Replica::Replica(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Replica::~Replica() {
  if (impl_) impl_->stop();
}
Replica::Replica(Replica&&) noexcept = default;
Replica& Replica::operator=(Replica&&) noexcept = default;
ReplicaStatus Replica::status() const { return impl_->status(); }
bool Replica::wait_applied(std::uint64_t sequence, double seconds) const { return impl_->wait_applied(sequence, seconds); }
Store Replica::store() const { return impl_->store(); }
void Replica::stop() {
  if (impl_) impl_->stop();
}

PromoteReport promote(Store& store, const StreamOptions& options) {
  check_stream_options(options);
  access::refuse_writes_if_read_only(store);
  const std::optional<std::string> stream = access::read(store, keys::kReplicaStream);
  if (!stream) {
    throw Error(ErrorCode::invalid_argument, "store '" + store.path().string() + "' is not a read replica: nothing to promote");
  }
  if (*stream != options.stream) {
    throw Error(ErrorCode::invalid_argument, "store '" + store.path().string() + "' is a replica of stream '" + *stream +
                                                 "', not of '" + options.stream + "'");
  }
  Connection connection(options);
  const std::optional<StreamState> state = connection.stream_state(options.stream);
  if (!state) throw Error(ErrorCode::io_error, "no " + describe(options) + ": nothing to promote from");
  PromoteReport report;
  report.stream_last = state->last;
  const std::uint64_t before = store.stats().last_sequence;
  if (before > state->last) {
    throw Error(ErrorCode::invalid_argument, "store '" + store.path().string() + "' holds more events than " +
                                                 describe(options) + ": it is not that stream's replica");
  }
  try {
    follow(store, connection, options, 2048, state->last, [] { return false; }, [](std::uint64_t, std::uint64_t, bool) {});
  } catch (const ReplicaStop& s) {
    throw Error(ErrorCode::corruption, "promotion refused: " + s.reason);
  }
  check_prefix(store, connection, options);
  report.applied = store.stats().last_sequence - before;
  // The replica becomes a primary, with a store ID of its own, whose stream
  // confirmed everything it holds.
  access::write(store, {{std::string(keys::kReplicaOf), std::nullopt},
                        {std::string(keys::kReplicaStream), std::nullopt},
                        {std::string(keys::kStoreId), keys::new_store_id()},
                        {keys::confirmed(options.stream), std::to_string(state->last)}});
  Batch batch;
  EventData event;
  event.type = "$replication.promoted";
  event.aggregate = "$replication";
  event.content_type = ContentType::json;
  nlohmann::json data = {{"stream", options.stream}, {"stream_last_sequence", state->last}};
  event.data = data.dump();
  batch.events.push_back(std::move(event));
  report.promoted_event = access::append_own(store, std::move(batch)).events.front().id.to_string();
  return report;
}

}  // namespace lighthouse::replication
