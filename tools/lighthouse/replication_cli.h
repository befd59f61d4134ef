// The replicator inside `lighthouse serve` (--nats, --stream, --mode, ...):
// built when liblighthouse_replication is (LIGHTHOUSE_WITH_REPLICATION).
#pragma once

#include <CLI/CLI.hpp>
#include <cstddef>
#include <memory>
#include <string>

#include "lighthouse/store.h"

namespace lighthouse::tool {

struct ServerReplicationArguments {
  std::string nats, stream, subject, mode = "async";
  int replicas = 3;
  std::size_t window = 1024;
  double timeout = 5;
};

class ServerReplicator {
 public:
  virtual ~ServerReplicator() = default;
  // Prometheus lines: confirmed sequence, lag (events, seconds), state, ...
  virtual std::string metrics_text() const = 0;
  virtual std::string status_line() const = 0;  // the replicator's status, one JSON object
  virtual void stop() = 0;                      // stores the confirmed position and stops
};

void add_server_replication_options(CLI::App& serve, ServerReplicationArguments& a);
// Starts the replicator of `store` when --nats was given (else nullptr).
// Errors: those of replication::Replicator::start.
std::unique_ptr<ServerReplicator> start_server_replicator(Store& store, const ServerReplicationArguments& a);

}  // namespace lighthouse::tool
