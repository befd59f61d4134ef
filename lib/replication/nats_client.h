// The NATS C client (libnats), wrapped for lib/replication: one connection
// with its JetStream context, the stream's state, a message fetched by
// sequence. Failures of the network or of the server are Error(io_error)
// with the client's words; a caller retries them.
#pragma once

#include <nats/nats.h>

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "lighthouse/error.h"
#include "lighthouse/replication.h"

namespace lighthouse::replication {

// Error(invalid_argument) naming what is wrong with `options`.
void check_stream_options(const StreamOptions& options);
std::string subject_of(const StreamOptions& options);
std::string describe(const StreamOptions& options);  // "stream 'S' at nats://..."
std::string joined_servers(const StreamOptions& options);  // "nats://a,nats://b"

// `what` failed with `s` (and the JetStream error code): the message.
std::string nats_failure(const std::string& what, natsStatus s, jsErrCode code = static_cast<jsErrCode>(0));

struct StreamState {
  std::uint64_t first = 0, last = 0, messages = 0;
  std::int32_t max_message_bytes = -1;
  std::vector<std::string> subjects;
  std::int64_t replicas = 0;
};

struct StreamMessage {
  std::uint64_t sequence = 0;
  std::string data;
  std::string message_id;  // Nats-Msg-Id ("" if none)
};

class Connection {
 public:
  // Connects to any of the servers (reconnecting by itself afterwards).
  // `ack` receives the acknowledgements of asynchronous publishes.
  Connection(const StreamOptions& options, jsPubAckHandler ack = nullptr, void* ack_closure = nullptr,
             std::int64_t max_pending = 0);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  natsConnection* nats() const noexcept { return nc_; }
  jsCtx* js() const noexcept { return js_; }
  std::int64_t max_payload() const { return natsConnection_GetMaxPayload(nc_); }

  // The stream's state; nullopt when there is no such stream.
  std::optional<StreamState> stream_state(const std::string& stream) const;
  // Creates the stream (file storage, deletes and purges denied).
  void create_stream(const std::string& stream, const std::string& subject, int replicas,
                     std::int32_t max_message_bytes) const;
  // The message at `sequence`; nullopt when the stream has none there.
  std::optional<StreamMessage> message(const std::string& stream, std::uint64_t sequence) const;

 private:
  natsOptions* opts_ = nullptr;
  natsConnection* nc_ = nullptr;
  jsCtx* js_ = nullptr;
  std::int64_t wait_ms_ = 5000;
};

}  // namespace lighthouse::replication
