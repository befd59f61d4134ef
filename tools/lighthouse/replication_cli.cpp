// `lighthouse replicate`, `replica` and `promote` (docs/replication.md): a
// primary's replicator, a read replica's follower, and a replica's
// promotion, each printing its status as JSON lines until a signal (or
// until caught up, with --until-caught-up).
#include <signal.h>

#include <chrono>
#include <iostream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli.h"
#include "exit_codes.h"
#include "lighthouse/replication.h"
#include "replication_cli.h"
#include "store_commands.h"
#include "tool_tracing.h"

namespace lighthouse::tool {
namespace {

using Json = nlohmann::json;
using Clock = std::chrono::steady_clock;

struct StreamArguments {
  std::string store, nats, stream, subject;
  double timeout = 5, status_interval = 1;
  bool until_caught_up = false;
};

void add_stream_options(CLI::App& command, StreamArguments& a) {
  add_store_argument(command, a.store);
  command.add_option("--nats", a.nats, "NATS server URLs, comma-separated (nats://127.0.0.1:4222,...)")->required();
  command.add_option("--stream", a.stream, "The JetStream stream of the store's log")->required();
  command.add_option("--subject", a.subject, "The stream's one subject (default: lighthouse.STREAM)");
  command.add_option("--timeout", a.timeout, "Seconds for each JetStream request and acknowledgement (default 5)")
      ->check(CLI::Range(0.01, 3600.0));
  command.add_option("--status-interval", a.status_interval, "Seconds between status lines (default 1; 0: none)")
      ->check(CLI::Range(0.0, 86400.0));
  command.add_flag("--until-caught-up", a.until_caught_up, "Exit once caught up, instead of at SIGINT/SIGTERM");
}

replication::StreamOptions stream_options(const StreamArguments& a) {
  replication::StreamOptions o;
  std::stringstream urls(a.nats);
  for (std::string url; std::getline(urls, url, ',');) o.servers.push_back(url);
  o.stream = a.stream;
  o.subject = a.subject;
  o.timeout_seconds = a.timeout;
  return o;
}

// SIGINT and SIGTERM, blocked before any thread starts (they inherit the
// mask) and taken by wait_for_signal().
sigset_t block_signals() {
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  return signals;
}

// True iff a signal came within `seconds`.
bool wait_for_signal(const sigset_t& signals, double seconds) {
  timespec t{};
  t.tv_sec = static_cast<time_t>(seconds);
  t.tv_nsec = static_cast<long>((seconds - static_cast<double>(t.tv_sec)) * 1e9);
  return sigtimedwait(&signals, nullptr, &t) > 0;
}

// Stops a replicator or a replica, prints its last status line and returns
// the exit code: 6 (with the reason on stderr) when it stopped for good.
template <typename Runner, typename ToJson>
int stop_and_report(Runner& runner, ToJson to_json) {
  runner.stop();
  const auto s = runner.status();
  std::cout << to_json(s).dump() << '\n' << std::flush;
  if (!s.stopped_reason.empty()) {
    std::cerr << "lighthouse: " << s.stopped_reason << '\n';
    return kExitRefused;
  }
  return kExitSuccess;
}

Json replicator_json(const replication::ReplicatorStatus& s) {
  Json j{{"role", "primary"},
         {"mode", std::string(replication::to_string(s.mode))},
         {"state", std::string(replication::to_string(s.state))},
         {"confirmed", s.confirmed},
         {"persisted", s.persisted},
         {"store_last", s.store_last},
         {"lag", s.lag()},
         {"lag_seconds", s.lag_seconds},
         {"published", s.published},
         {"reconciliations", s.reconciliations}};
  if (s.mode == replication::ReplicationMode::quorum) j["appends_waiting"] = s.appends_waiting;
  if (!s.last_error.empty()) j["last_error"] = s.last_error;
  if (!s.stopped_reason.empty()) {
    j["stopped_reason"] = s.stopped_reason;
    j["fenced"] = s.fenced;
    j["unreplicated"] = s.unreplicated;
  }
  return j;
}

// Runs `replicator` until a signal, its stop, or (until_caught_up) until it
// confirmed the store's last event. Returns the exit code.
int run_replicator(replication::Replicator& replicator, const StreamArguments& a, const sigset_t& signals) {
  const double tick = 0.05;
  auto last_line = Clock::now();
  bool signalled = false;
  for (;;) {
    const replication::ReplicatorStatus s = replicator.status();
    const bool stopped = s.state == replication::ReplicatorStatus::State::stopped;
    const bool caught_up = a.until_caught_up && s.state == replication::ReplicatorStatus::State::replicating &&
                           s.lag() == 0 && s.confirmed == s.store_last;
    if (stopped || caught_up || signalled) break;
    if (a.status_interval > 0 && Clock::now() - last_line >= std::chrono::duration<double>(a.status_interval)) {
      std::cout << replicator_json(s).dump() << '\n' << std::flush;
      last_line = Clock::now();
    }
    signalled = wait_for_signal(signals, tick);
  }
  return stop_and_report(replicator, replicator_json);
}

replication::ReplicationMode parse_mode(const std::string& mode) {
  return mode == "quorum" ? replication::ReplicationMode::quorum : replication::ReplicationMode::async;
}

replication::ReplicatorOptions replicator_options(const StreamArguments& a, int replicas, std::size_t window,
                                                  const std::string& mode) {
  replication::ReplicatorOptions o;
  o.nats = stream_options(a);
  o.replicas = replicas;
  o.window = window;
  o.mode = parse_mode(mode);
  return o;
}

struct ReplicateArguments {
  StreamArguments stream;
  int replicas = 3;
  std::size_t window = 1024;
  std::string mode = "async";
};

CLI::Option* add_mode_option(CLI::App& command, std::string& mode) {
  return command
      .add_option("--mode", mode,
                  "async (default): appends are acknowledged once durable here; quorum: once the stream "
                  "acknowledged them, and readers see only what it acknowledged")
      ->check(CLI::IsMember({"async", "quorum"}));
}

int run_replicate(const ReplicateArguments& a) {
  const sigset_t signals = block_signals();
  Store store = open_existing(a.stream.store, false);
  replication::Replicator replicator =
      replication::Replicator::start(store, replicator_options(a.stream, a.replicas, a.window, a.mode));
  return run_replicator(replicator, a.stream, signals);
}

Json replica_json(const replication::ReplicaStatus& s) {
  Json j{{"role", "replica"}, {"applied", s.applied}, {"stream_last", s.stream_last}, {"lag", s.lag()},
         {"running", s.running}};
  if (!s.last_error.empty()) j["last_error"] = s.last_error;
  if (!s.stopped_reason.empty()) j["stopped_reason"] = s.stopped_reason;
  return j;
}

struct ReplicaArguments {
  StreamArguments stream;
  double wait_seconds = 0;
};

int run_replica(const ReplicaArguments& a) {
  const sigset_t signals = block_signals();
  replication::ReplicaOptions o;
  o.nats = stream_options(a.stream);
  o.store.tracing = tool_tracing().options();
  o.wait_for_stream_seconds = a.wait_seconds;
  replication::Replica replica = replication::Replica::start(a.stream.store, o);
  auto last_line = Clock::now();
  auto quiet_since = Clock::now();
  std::uint64_t last_applied = replica.status().applied;
  std::uint64_t checks_then = replica.status().stream_checks;
  bool signalled = false;
  for (;;) {
    const replication::ReplicaStatus s = replica.status();
    if (s.applied != last_applied) {
      last_applied = s.applied;
      checks_then = s.stream_checks;
      quiet_since = Clock::now();
    }
    // Caught up: nothing new for 0.5 s, and the stream's last sequence,
    // read since (the replica reads it when quiet), applied.
    const bool caught_up = a.stream.until_caught_up && s.lag() == 0 && s.stream_checks >= checks_then + 2 &&
                           Clock::now() - quiet_since >= std::chrono::milliseconds(500);
    if (!s.running || caught_up || signalled) break;
    if (a.stream.status_interval > 0 &&
        Clock::now() - last_line >= std::chrono::duration<double>(a.stream.status_interval)) {
      std::cout << replica_json(s).dump() << '\n' << std::flush;
      last_line = Clock::now();
    }
    signalled = wait_for_signal(signals, 0.05);
  }
  return stop_and_report(replica, replica_json);
}

// Its replicator's arguments, and whether it goes on replicating.
struct PromoteArguments : ReplicateArguments {
  bool replicate = false;
};

int run_promote(PromoteArguments a) {
  const sigset_t signals = block_signals();
  Store store = open_existing(a.stream.store, false);
  const replication::PromoteReport report = replication::promote(store, stream_options(a.stream));
  std::cout << Json{{"promoted", store.path().string()},
                    {"applied", report.applied},
                    {"stream_last", report.stream_last},
                    {"promoted_event", report.promoted_event}}
                   .dump()
            << '\n'
            << std::flush;
  // The promoted event is published before the command returns (so the
  // stream moves on at once); with --replicate, the replicator goes on.
  if (!a.replicate) a.stream.until_caught_up = true;
  replication::Replicator replicator =
      replication::Replicator::start(store, replicator_options(a.stream, a.replicas, a.window, a.mode));
  return run_replicator(replicator, a.stream, signals);
}

// Prometheus text of one sample line.
void metric(std::string& out, const char* name, const char* type, const char* help, const std::string& labels,
            double value) {
  out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + "{" + labels +
         "} ";
  char number[32];
  std::snprintf(number, sizeof number, "%.17g", value);
  out += number;
  out += "\n";
}

class ServerReplicatorImpl final : public ServerReplicator {
 public:
  ServerReplicatorImpl(replication::Replicator replicator, std::string stream)
      : replicator_(std::move(replicator)), stream_(std::move(stream)) {}
  std::string metrics_text() const override {
    const replication::ReplicatorStatus s = replicator_.status();
    std::string labels = "stream=\"" + stream_ + "\",mode=\"" + std::string(replication::to_string(s.mode)) + "\"";
    std::string out;
    metric(out, "lighthouse_replication_confirmed_sequence", "gauge",
           "The last sequence the stream acknowledged (the replication high-water mark).", labels,
           static_cast<double>(s.confirmed));
    metric(out, "lighthouse_replication_lag_events", "gauge", "Events of the store the stream has not acknowledged.",
           labels, static_cast<double>(s.lag()));
    metric(out, "lighthouse_replication_lag_seconds", "gauge",
           "Age of the oldest event the stream has not acknowledged (0: none).", labels, s.lag_seconds);
    metric(out, "lighthouse_replication_published_total", "counter", "Publishes sent to the stream.", labels,
           static_cast<double>(s.published));
    metric(out, "lighthouse_replication_reconciliations_total", "counter",
           "Comparisons of the stream with the store, at start and after an error.", labels,
           static_cast<double>(s.reconciliations));
    metric(out, "lighthouse_replication_appends_waiting", "gauge",
           "Appends waiting for the stream's acknowledgement (quorum mode).", labels,
           static_cast<double>(s.appends_waiting));
    out += "# HELP lighthouse_replication_state The replicator's state (1: the one it is in).\n"
           "# TYPE lighthouse_replication_state gauge\n";
    using State = replication::ReplicatorStatus::State;
    for (State state : {State::connecting, State::reconciling, State::replicating, State::stopped}) {
      out += "lighthouse_replication_state{" + labels + ",state=\"" + std::string(replication::to_string(state)) +
             "\"} " + (s.state == state ? "1" : "0") + "\n";
    }
    return out;
  }
  std::string status_line() const override { return replicator_json(replicator_.status()).dump(); }
  void stop() override { replicator_.stop(); }

 private:
  replication::Replicator replicator_;
  std::string stream_;
};

}  // namespace

void add_server_replication_options(CLI::App& serve, ServerReplicationArguments& a) {
  auto* nats = serve.add_option("--nats", a.nats, "Replicate the store into NATS JetStream: server URLs, comma-separated")
                   ->group("Replication");
  auto* stream = serve.add_option("--stream", a.stream, "The JetStream stream of the store's log (with --nats)")
                     ->group("Replication");
  nats->needs(stream);
  stream->needs(nats);
  serve.add_option("--subject", a.subject, "The stream's one subject (default: lighthouse.STREAM)")
      ->needs(nats)
      ->group("Replication");
  add_mode_option(serve, a.mode)->needs(nats)->group("Replication");
  serve.add_option("--replicas", a.replicas, "Replicas of a stream it creates (default 3)")
      ->check(CLI::Range(1, 5))
      ->needs(nats)
      ->group("Replication");
  serve.add_option("--window", a.window, "Publishes in flight at most (default 1024)")
      ->check(CLI::Range(1, 65536))
      ->needs(nats)
      ->group("Replication");
  serve.add_option("--nats-timeout", a.timeout, "Seconds for each JetStream request and acknowledgement (default 5)")
      ->check(CLI::Range(0.01, 3600.0))
      ->needs(nats)
      ->group("Replication");
}

std::unique_ptr<ServerReplicator> start_server_replicator(Store& store, const ServerReplicationArguments& a) {
  if (a.nats.empty()) return nullptr;
  StreamArguments s;
  s.nats = a.nats;
  s.stream = a.stream;
  s.subject = a.subject;
  s.timeout = a.timeout;
  return std::make_unique<ServerReplicatorImpl>(
      replication::Replicator::start(store, replicator_options(s, a.replicas, a.window, a.mode)), a.stream);
}

void add_replication_commands(CLI::App& app, Commands& commands) {
  auto replicate_args = std::make_shared<ReplicateArguments>();
  CLI::App* replicate = app.add_subcommand("replicate", "Replicate a primary store's log into a NATS JetStream stream");
  add_stream_options(*replicate, replicate_args->stream);
  replicate->add_option("--replicas", replicate_args->replicas, "Replicas of a stream it creates (default 3)")
      ->check(CLI::Range(1, 5));
  replicate->add_option("--window", replicate_args->window, "Publishes in flight at most (default 1024)")
      ->check(CLI::Range(1, 65536));
  add_mode_option(*replicate, replicate_args->mode);
  commands.push_back({replicate, [replicate_args] { return run_replicate(*replicate_args); }});

  auto replica_args = std::make_shared<ReplicaArguments>();
  CLI::App* replica = app.add_subcommand("replica", "Follow a NATS JetStream stream into a read replica (created if missing)");
  add_stream_options(*replica, replica_args->stream);
  replica->add_option("--wait-seconds", replica_args->wait_seconds,
                      "How long to wait for the stream to appear (default 0: forever)")
      ->check(CLI::Range(0.0, 86400.0));
  commands.push_back({replica, [replica_args] { return run_replica(*replica_args); }});

  auto promote_args = std::make_shared<PromoteArguments>();
  CLI::App* promote = app.add_subcommand("promote", "Promote a read replica to primary, continuing its stream");
  add_stream_options(*promote, promote_args->stream);
  promote->add_flag("--replicate", promote_args->replicate, "Go on replicating after the promotion (until a signal)");
  promote->add_option("--window", promote_args->window, "Publishes in flight at most (default 1024)")
      ->check(CLI::Range(1, 65536));
  add_mode_option(*promote, promote_args->mode);
  commands.push_back({promote, [promote_args] { return run_promote(*promote_args); }});
}

}  // namespace lighthouse::tool
