// The replicator of a primary (docs/replication.md, "The replicator").
//
// One thread: it reconciles (compares every stream message after the
// confirmed position with the store's event), then pumps — publishes the
// store's events in sequence order, each expecting the stream's last
// sequence to be its own minus one, a bounded window in flight — and
// confirms each acknowledgement whose stream sequence is the event's. Any
// error or timeout goes back to reconciling; a stream message that is not
// the store's event stops it for good, with the store in emergency.
#include <nats/nats.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>

#include "lighthouse/replication.h"
#include "replication/keys.h"
#include "replication/nats_client.h"
#include "store/replication_access.h"

namespace lighthouse::replication {
namespace access = replication_access;
using Clock = std::chrono::steady_clock;

std::string_view to_string(ReplicatorStatus::State state) noexcept {
  switch (state) {
    case ReplicatorStatus::State::connecting: return "connecting";
    case ReplicatorStatus::State::reconciling: return "reconciling";
    case ReplicatorStatus::State::replicating: return "replicating";
    case ReplicatorStatus::State::stopped: return "stopped";
  }
  return "unknown";
}

std::string_view to_string(ReplicationMode mode) noexcept {
  return mode == ReplicationMode::quorum ? "quorum" : "async";
}

namespace {

// The replicator stops for good: the stream is not this store's log.
struct ReplicatorStop {
  std::string reason;
  bool fenced = false;
  std::uint64_t from_sequence = 0;  // the first of this store's events the stream does not hold
};

std::uint64_t sequence_of_message_id(const char* id) {
  if (id == nullptr) return 0;
  const std::string_view v(id);
  const auto colon = v.rfind(':');
  if (colon == std::string_view::npos) return 0;
  std::uint64_t n = 0;
  for (char c : v.substr(colon + 1)) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + static_cast<std::uint64_t>(c - '0');
  }
  return n;
}

}  // namespace

class Replicator::Impl {
 public:
  Impl(Store store, const ReplicatorOptions& options) : store_(std::move(store)), options_(options) {}
  ~Impl() { stop(); }

  void open() {
    check_stream_options(options_.nats);
    if (options_.replicas < 1 || options_.replicas > 5) {
      throw Error(ErrorCode::invalid_argument, "stream replicas must be 1 to 5 (JetStream's limit)");
    }
    if (options_.window < 1 || options_.window > 65536) {
      throw Error(ErrorCode::invalid_argument, "the publish window must be 1 to 65536 events");
    }
    if (options_.persist_every_events < 1 || !(options_.persist_every_seconds > 0)) {
      throw Error(ErrorCode::invalid_argument, "the confirmed position must be stored every >= 1 event and > 0 s");
    }
    if (auto of = access::read(store_, keys::kReplicaOf)) {
      throw Error(ErrorCode::invalid_argument, "store '" + store_.path().string() + "' is a read replica of " + *of +
                                                   ": it has no replicator (promote it first: `lighthouse promote`)");
    }
    access::refuse_writes_if_read_only(store_);
    subject_ = subject_of(options_.nats);
    confirmed_key_ = keys::confirmed(options_.nats.stream);
    confirmed_ = keys::parse_sequence(access::read(store_, confirmed_key_), "the confirmed position");
    persisted_ = confirmed_;
    store_id_ = access::read(store_, keys::kStoreId).value_or("");
    const StoreStats stats = store_.stats();
    if (stats.base_sequence > confirmed_ + 1) {
      throw Error(ErrorCode::invalid_argument,
                  "store '" + store_.path().string() + "' was truncated before sequence " +
                      std::to_string(stats.base_sequence) + " and the stream confirmed only up to " +
                      std::to_string(confirmed_) + ": a stream's sequences begin at 1 (replicate before truncating)");
    }
    {
      std::lock_guard lock(mutex_);
      status_.confirmed = confirmed_;
      status_.persisted = persisted_;
      status_.store_last = stats.last_sequence;
    }
    max_message_ = access::max_message_bytes(store_);
    connection_ = std::make_unique<Connection>(options_.nats, &Impl::on_ack, this,
                                               static_cast<std::int64_t>(options_.window));
    if (connection_->max_payload() < static_cast<std::int64_t>(max_message_)) {
      throw Error(ErrorCode::invalid_argument,
                  "the NATS server's max_payload is " + std::to_string(connection_->max_payload()) +
                      " bytes, below the largest record of this store (" + std::to_string(max_message_) +
                      " bytes, from its max_event_bytes): raise max_payload in the server's configuration (e.g. "
                      "`max_payload: 8MB`) or lower Options::limits.max_event_bytes");
    }
    ensure_stream();
    // Written only once everything was accepted: a refused start writes nothing.
    if (store_id_.empty()) {
      store_id_ = keys::new_store_id();
      access::write(store_, {{std::string(keys::kStoreId), store_id_}});
    }
    if (quorum()) {
      access::enter_quorum(store_, confirmed_, [wakeup = wakeup_] {
        {
          std::lock_guard lock(wakeup->mutex);
          wakeup->poked = true;
        }
        wakeup->changed.notify_all();
      });
    } else {
      access::leave_quorum(store_);
    }
    thread_ = std::thread([this] { run(); });
  }

  ReplicatorStatus status() const {
    ReplicatorStatus s;
    {
      std::lock_guard lock(mutex_);
      s = status_;
    }
    s.mode = options_.mode;
    if (quorum()) s.appends_waiting = access::appends_waiting(store_);
    return s;
  }

  bool wait_confirmed(std::uint64_t sequence, double seconds) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::duration<double>(seconds), [&] {
      return status_.confirmed >= sequence || status_.state == ReplicatorStatus::State::stopped;
    }) && status_.confirmed >= sequence;
  }

  bool wait_stopped(double seconds) const {
    std::unique_lock lock(mutex_);
    return changed_.wait_for(lock, std::chrono::duration<double>(seconds),
                             [&] { return status_.state == ReplicatorStatus::State::stopped; });
  }

  void stop() {
    stopping_ = true;
    wakeup_->changed.notify_all();
    if (thread_.joinable()) thread_.join();
    if (quorum()) access::detach_quorum(store_);
    access::clear_lag(store_);
    if (connection_) {
      drain();
      connection_.reset();
    }
    std::lock_guard lock(mutex_);
    status_.state = ReplicatorStatus::State::stopped;
    changed_.notify_all();
  }

 private:
  struct Ack {
    std::uint64_t sequence = 0;  // the event's, from the message ID
    bool ok = false;
    std::uint64_t stream_sequence = 0;
    std::string error;
  };

  static void on_ack(jsCtx*, natsMsg* msg, jsPubAck* pa, jsPubAckErr* pae, void* closure) {
    auto* self = static_cast<Impl*>(closure);
    Ack ack;
    const char* id = nullptr;
    if (natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK) ack.sequence = sequence_of_message_id(id);
    if (pa != nullptr) {
      ack.ok = true;
      ack.stream_sequence = pa->Sequence;
    } else if (pae != nullptr) {
      ack.error = nats_failure("publishing event " + std::to_string(ack.sequence), pae->Err, pae->ErrCode);
      if (pae->ErrText != nullptr) ack.error += std::string(": ") + pae->ErrText;
    }
    natsMsg_Destroy(msg);
    {
      std::lock_guard lock(self->wakeup_->mutex);
      self->acks_.push_back(std::move(ack));
    }
    self->wakeup_->changed.notify_all();
  }

  void set_state(ReplicatorStatus::State state) {
    std::lock_guard lock(mutex_);
    status_.state = state;
    changed_.notify_all();
  }

  void ensure_stream() {
    const std::string& name = options_.nats.stream;
    std::optional<StreamState> state = connection_->stream_state(name);
    if (!state) {
      if (confirmed_ > 0) {
        throw Error(ErrorCode::invalid_argument, "stream '" + name + "' is gone, though it confirmed " +
                                                     std::to_string(confirmed_) + " events of this store");
      }
      const auto max = static_cast<std::int32_t>(std::min<std::uint64_t>(max_message_, INT32_MAX));
      connection_->create_stream(name, subject_, options_.replicas, max);
      state = connection_->stream_state(name);
      if (!state) throw Error(ErrorCode::io_error, "stream '" + name + "' was created but cannot be read");
    }
    if (state->subjects.size() != 1 || state->subjects.front() != subject_) {
      throw Error(ErrorCode::invalid_argument, "stream '" + name + "' does not hold exactly the subject '" + subject_ +
                                                   "': a store's stream holds its events only");
    }
    if (state->max_message_bytes >= 0 && static_cast<std::uint64_t>(state->max_message_bytes) < max_message_) {
      throw Error(ErrorCode::invalid_argument, "stream '" + name + "' takes messages of at most " +
                                                   std::to_string(state->max_message_bytes) +
                                                   " bytes, below this store's largest record (" +
                                                   std::to_string(max_message_) + ")");
    }
  }

  bool quorum() const noexcept { return options_.mode == ReplicationMode::quorum; }

  void run() {
    // The replicator reads what it has yet to publish: past the mark.
    access::read_past_high_water();
    auto backoff = std::chrono::milliseconds(100);
    while (!stopping_) {
      try {
        set_state(ReplicatorStatus::State::reconciling);
        reconcile();
        set_state(ReplicatorStatus::State::replicating);
        backoff = std::chrono::milliseconds(100);
        pump();
      } catch (const ReplicatorStop& s) {
        stop_for_good(s);
        return;
      } catch (const std::exception& e) {
        {
          std::lock_guard lock(mutex_);
          status_.last_error = e.what();
        }
        drain();
        report_lag();
        std::unique_lock lock(wakeup_->mutex);
        wakeup_->changed.wait_for(lock, backoff, [&] { return stopping_.load(); });
        backoff = std::min(backoff * 2, std::chrono::milliseconds(2000));
      }
    }
    try {
      persist(true);
    } catch (const std::exception&) {
    }
  }

  // Waits for the publishes in flight (their acknowledgements are of no use
  // now: reconciling reads the stream) and forgets them.
  void drain() {
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MaxWait = static_cast<std::int64_t>(options_.nats.timeout_seconds * 1000);
    (void)js_PublishAsyncComplete(connection_->js(), &po);
    std::lock_guard lock(wakeup_->mutex);
    acks_.clear();
  }

  void reconcile() {
    {
      std::lock_guard lock(mutex_);
      ++status_.reconciliations;
    }
    ensure_stream();
    const std::string& name = options_.nats.stream;
    const StreamState state = *connection_->stream_state(name);
    if (state.last < confirmed_) {
      throw ReplicatorStop{"stream '" + name + "' ends at sequence " + std::to_string(state.last) +
                            ", before this store's confirmed position " + std::to_string(confirmed_) +
                            ": it lost events it had acknowledged (was it deleted and created again?)",
                        false, state.last + 1};
    }
    if (state.last == confirmed_) return;
    Query q;
    q.from_sequence = confirmed_ + 1;
    q.to_sequence = state.last;
    EventCursor cursor = store_.query(q);
    for (std::uint64_t seq = confirmed_ + 1; seq <= state.last && !stopping_; ++seq) {
      const std::optional<StreamMessage> message = connection_->message(name, seq);
      if (!message) {
        throw ReplicatorStop{"stream '" + name + "' has no message at sequence " + std::to_string(seq) +
                              ", which it had: the stream is not this store's log",
                          false, seq};
      }
      std::optional<RecordedEvent> event = cursor.next();
      if (!event || event->id.sequence != seq) {
        throw ReplicatorStop{describe_foreign(*message, "it holds events this store does not have (the store ends at " +
                                                        std::to_string(seq - 1) + ")"),
                          true, seq};
      }
      if (access::encode_message(*event) != message->data) {
        throw ReplicatorStop{describe_foreign(*message, "it differs from this store's event " + event->id.to_string()),
                          is_lighthouse_event(*message), seq};
      }
      confirmed_ = seq;
    }
    publish_status();
    persist(true);
  }

  bool is_lighthouse_event(const StreamMessage& m) const {
    try {
      (void)access::decode_message(m.data, "stream message");
      return m.message_id.rfind(store_id_ + ":", 0) != 0;
    } catch (const Error&) {
      return false;
    }
  }

  std::string describe_foreign(const StreamMessage& m, const std::string& why) const {
    const std::string at = "stream '" + options_.nats.stream + "' holds at sequence " + std::to_string(m.sequence);
    try {
      const RecordedEvent e = access::decode_message(m.data, "stream message " + std::to_string(m.sequence));
      const std::string who = e.type == "$replication.promoted" ? "the promotion of a replica (event " + e.id.to_string() + ")"
                                                                 : "another primary (event " + e.id.to_string() + ")";
      return "fenced: " + at + " a message written by " + who + ", message ID '" + m.message_id + "': " + why;
    } catch (const Error&) {
      return at + " a message that is not a Lighthouse event (" + std::to_string(m.data.size()) +
             " bytes, message ID '" + m.message_id + "'), planted out of turn: " + why;
    }
  }

  void pump() {
    std::uint64_t next = confirmed_ + 1;
    std::map<std::uint64_t, Clock::time_point> in_flight;
    std::set<std::uint64_t> acknowledged;
    std::deque<Ack> acks;
    std::string bytes;
    const auto timeout = std::chrono::duration<double>(options_.nats.timeout_seconds);
    while (!stopping_) {
      report_lag();
      {
        std::lock_guard lock(wakeup_->mutex);
        acks.swap(acks_);
      }
      for (const Ack& ack : acks) {
        if (ack.sequence <= confirmed_ || ack.sequence == 0) continue;
        if (!ack.ok) throw Error(ErrorCode::io_error, ack.error);
        if (ack.stream_sequence != ack.sequence) {
          throw Error(ErrorCode::io_error, "the stream stored event " + std::to_string(ack.sequence) +
                                               " at sequence " + std::to_string(ack.stream_sequence));
        }
        in_flight.erase(ack.sequence);
        acknowledged.insert(ack.sequence);
      }
      acks.clear();
      bool moved = false;
      while (!acknowledged.empty() && *acknowledged.begin() == confirmed_ + 1) {
        acknowledged.erase(acknowledged.begin());
        ++confirmed_;
        moved = true;
      }
      if (moved) publish_status();
      // Also when nothing moved: a step held back by the bound is stored
      // once the bound passed.
      persist(false);
      const auto now = Clock::now();
      if (!in_flight.empty() && now - in_flight.begin()->second > timeout) {
        throw Error(ErrorCode::io_error, "no acknowledgement of event " + std::to_string(in_flight.begin()->first) +
                                             " within " + std::to_string(options_.nats.timeout_seconds) + " s");
      }
      std::size_t sent = 0;
      if (in_flight.size() < options_.window) {
        // One event more than the window takes: whether the store holds
        // more than what is published now (so that the status's store_last
        // is true, and `--until-caught-up` does not end early).
        const std::size_t room = options_.window - in_flight.size();
        Query q;
        q.from_sequence = next;
        q.limit = room + 1;
        std::uint64_t beyond = 0;
        for (const RecordedEvent& event : store_.query(q)) {
          if (sent == room) {
            beyond = event.id.sequence;
            break;
          }
          if (event.id.sequence != next) {
            throw ReplicatorStop{"the store has no event of sequence " + std::to_string(next) + " (next: " +
                                  std::to_string(event.id.sequence) + ")",
                              false, next};
          }
          publish(event, bytes);
          in_flight.emplace(next, now);
          ++next;
          ++sent;
        }
        if (sent > 0 || beyond > 0) {
          std::lock_guard lock(mutex_);
          status_.store_last = std::max(next - 1, beyond);
          status_.published += sent;
        }
      }
      if (sent == 0) {
        std::unique_lock lock(wakeup_->mutex);
        wakeup_->changed.wait_for(lock, std::chrono::milliseconds(in_flight.empty() ? 2 : 20),
                                  [&] { return stopping_.load() || !acks_.empty() || wakeup_->poked; });
        wakeup_->poked = false;
      }
    }
  }

  // Once a second: the lag (events, and the age of the oldest event the
  // stream has not acknowledged) to the status and the store's health.
  void report_lag() {
    const auto t = Clock::now();
    if (t - lag_reported_at_ < std::chrono::seconds(1)) return;
    lag_reported_at_ = t;
    try {
      const std::uint64_t last = store_.stats().last_sequence;
      double seconds = 0;
      if (last > confirmed_) {
        Query q;
        q.from_sequence = confirmed_ + 1;
        q.limit = 1;
        const auto now_ns = static_cast<std::uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(
                                                           std::chrono::system_clock::now().time_since_epoch())
                                                           .count());
        for (const RecordedEvent& e : store_.query(q)) {
          if (now_ns > e.id.timestamp_ns) seconds = static_cast<double>(now_ns - e.id.timestamp_ns) / 1e9;
        }
      }
      const std::uint64_t lag = last > confirmed_ ? last - confirmed_ : 0;
      access::note_lag(store_, options_.nats.stream, lag, seconds);
      std::lock_guard lock(mutex_);
      status_.store_last = std::max(status_.store_last, last);
      status_.lag_seconds = seconds;
    } catch (const std::exception&) {
      // The store is closing: the next report, if any, says more.
    }
  }

  void publish(const RecordedEvent& event, std::string& bytes) {
    bytes = access::encode_message(event);
    const std::uint64_t seq = event.id.sequence;
    const std::string id = store_id_ + ":" + std::to_string(seq);
    jsPubOptions po;
    jsPubOptions_Init(&po);
    po.MsgId = id.c_str();
    po.MaxWait = static_cast<std::int64_t>(options_.nats.timeout_seconds * 1000);
    // JetStream skips an expected last sequence of 0: the first event
    // expects the subject (the stream's only one) to hold no message.
    if (seq == 1) {
      po.ExpectNoMessage = true;
    } else {
      po.ExpectLastSeq = seq - 1;
    }
    const natsStatus s = js_PublishAsync(connection_->js(), subject_.c_str(), bytes.data(),
                                         static_cast<int>(bytes.size()), &po);
    if (s != NATS_OK) throw Error(ErrorCode::io_error, nats_failure("publishing event " + std::to_string(seq), s));
  }

  void publish_status() {
    {
      std::lock_guard lock(mutex_);
      status_.confirmed = confirmed_;
      if (status_.store_last < confirmed_) status_.store_last = confirmed_;
      changed_.notify_all();
    }
    // Quorum mode: the appends this covers complete, readers see it.
    if (quorum()) access::advance_high_water(store_, confirmed_);
  }

  // Stores the confirmed position: when `now`, or in bounded steps.
  void persist(bool now) {
    if (confirmed_ == persisted_) return;
    const auto t = Clock::now();
    const double every = quorum() ? std::min(options_.persist_every_seconds, 0.01) : options_.persist_every_seconds;
    if (!now && confirmed_ - persisted_ < options_.persist_every_events &&
        t - persisted_at_ < std::chrono::duration<double>(every)) {
      return;
    }
    std::vector<access::Entry> entries{{confirmed_key_, std::to_string(confirmed_)}};
    if (quorum()) entries.emplace_back(std::string(access::kHighWater), std::to_string(confirmed_));
    access::write(store_, entries);
    persisted_ = confirmed_;
    persisted_at_ = t;
    std::lock_guard lock(mutex_);
    status_.persisted = persisted_;
  }

  void stop_for_good(const ReplicatorStop& s) {
    std::uint64_t last = 0;
    std::string unreplicated;
    try {
      persist(true);
      last = store_.stats().last_sequence;
      if (last >= s.from_sequence) {
        unreplicated = "; this store's events " + std::to_string(s.from_sequence) + " to " + std::to_string(last) +
                       " (" + std::to_string(last - s.from_sequence + 1) + ") are not in the stream:";
        Query q;
        q.from_sequence = s.from_sequence;
        q.limit = 10;
        for (const RecordedEvent& e : store_.query(q)) unreplicated += " " + e.id.to_string();
        if (last - s.from_sequence + 1 > 10) unreplicated += " ...";
      }
    } catch (const std::exception&) {
    }
    std::string reason = "replication stopped: " + s.reason + unreplicated;
    if (s.fenced) {
      reason += "; to rejoin as a replica, move this store aside and run `lighthouse replica NEW_STORE --nats " +
                joined_servers(options_.nats) + " --stream " + options_.nats.stream + "`";
    }
    try {
      store_.enter_emergency(reason);
    } catch (const std::exception&) {
    }
    if (quorum()) access::detach_quorum(store_);
    access::clear_lag(store_);
    std::lock_guard lock(mutex_);
    status_.stopped_reason = reason;
    status_.fenced = s.fenced;
    status_.unreplicated = last >= s.from_sequence ? last - s.from_sequence + 1 : 0;
    status_.state = ReplicatorStatus::State::stopped;
    changed_.notify_all();
  }

  Store store_;
  ReplicatorOptions options_;
  std::string subject_, confirmed_key_, store_id_;
  std::uint64_t max_message_ = 0;
  std::unique_ptr<Connection> connection_;
  // The replicator's thread only.
  std::uint64_t confirmed_ = 0, persisted_ = 0;
  Clock::time_point persisted_at_ = Clock::now();
  Clock::time_point lag_reported_at_{};

  std::atomic<bool> stopping_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  ReplicatorStatus status_;
  // Shared with the store's gate (quorum mode): it pokes the pump when an
  // append waits, and may do so while this replicator stops.
  struct Wakeup {
    std::mutex mutex;  // guards acks_ and poked
    std::condition_variable changed;
    bool poked = false;
  };
  const std::shared_ptr<Wakeup> wakeup_ = std::make_shared<Wakeup>();
  std::deque<Ack> acks_;
};

Replicator Replicator::start(Store store, const ReplicatorOptions& options) {
  auto impl = std::make_shared<Impl>(std::move(store), options);
  impl->open();
  return Replicator(std::move(impl));
}

Replicator::Replicator(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}
Replicator::~Replicator() {
  if (impl_) impl_->stop();
}
Replicator::Replicator(Replicator&&) noexcept = default;
Replicator& Replicator::operator=(Replicator&&) noexcept = default;
ReplicatorStatus Replicator::status() const { return impl_->status(); }
bool Replicator::wait_confirmed(std::uint64_t sequence, double seconds) const {
  return impl_->wait_confirmed(sequence, seconds);
}
bool Replicator::wait_stopped(double seconds) const { return impl_->wait_stopped(seconds); }
void Replicator::stop() {
  if (impl_) impl_->stop();
}

}  // namespace lighthouse::replication
