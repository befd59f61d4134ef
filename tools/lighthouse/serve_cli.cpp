// `lighthouse serve STORE`: the store over HTTP (docs/http-api.md).
#include <charconv>
#include <iostream>

#include "cli.h"
#include "parse.h"
#ifdef LIGHTHOUSE_WITH_REPLICATION
#include "replication_cli.h"
#endif
#include "serve/api.h"
#include "serve/http_server.h"
#include "serve/subscriptions.h"
#include "serve/tokens.h"
#include "store_commands.h"
#include "tool_tracing.h"

namespace lighthouse::tool {
namespace {

struct ServeArguments {
  std::string store, listen = "127.0.0.1:7600", token_file;
  bool read_only = false;
  unsigned threads = 4;
  std::size_t max_connections = 256, max_header_bytes = 16 * 1024, max_body_bytes = std::size_t{16} << 20;
  double request_timeout = 30;
  std::size_t catch_up_readers = 4, max_subscriptions = 1024, send_queue = 64, live_tail_events = 16384;
  std::vector<std::string> allowed_origins;
  std::string tls_cert, tls_key;
#ifdef LIGHTHOUSE_WITH_REPLICATION
  ServerReplicationArguments replication;
#endif
};

// HOST:PORT, [IPv6]:PORT. Errors: invalid_argument.
void parse_listen(const std::string& text, serve::ServerOptions& options) {
  const auto colon = text.rfind(':');
  if (colon == std::string::npos || colon + 1 == text.size()) {
    throw Error(ErrorCode::invalid_argument, "--listen '" + shown(text) + "' is not HOST:PORT");
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  unsigned port = 0;
  const std::string digits = text.substr(colon + 1);
  auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), port);
  if (ec != std::errc() || end != digits.data() + digits.size() || port > 65535) {
    throw Error(ErrorCode::invalid_argument, "--listen port '" + shown(digits, 16) + "' is not 0 to 65535");
  }
  serve::check_address(host);
  options.host = host;
  options.port = static_cast<unsigned short>(port);
}

int run_serve(const ServeArguments& a) {
  serve::ServerOptions options;
  parse_listen(a.listen, options);
  std::optional<serve::Tokens> tokens;
  if (!a.token_file.empty()) tokens = serve::Tokens::load(a.token_file);
  if (!tokens && !serve::is_loopback(options.host)) {
    throw Error(ErrorCode::invalid_argument, "--listen " + shown(a.listen) +
                                                 " is not a loopback address: serving beyond this machine needs "
                                                 "authentication (--token-file)");
  }
  options.threads = a.threads;
  options.max_connections = a.max_connections;
  options.max_header_bytes = a.max_header_bytes;
  options.max_body_bytes = a.max_body_bytes;
  options.request_timeout = std::chrono::milliseconds(static_cast<long long>(a.request_timeout * 1000));
  options.send_queue = a.send_queue;
  if (a.tls_cert.empty() != a.tls_key.empty()) {
    throw Error(ErrorCode::invalid_argument, "--tls-cert and --tls-key go together");
  }
  options.tls_cert = a.tls_cert;
  options.tls_key = a.tls_key;
  Store store = open_existing(a.store, a.read_only);
#ifdef LIGHTHOUSE_WITH_REPLICATION
  // Before the first request: in quorum mode no append is answered, and no
  // reader sees an event, before the stream acknowledged it.
  std::unique_ptr<ServerReplicator> replicator = start_server_replicator(store, a.replication);
#endif
  serve::ServerMetrics metrics;
  serve::HubOptions hub_options;
  hub_options.catch_up_readers = a.catch_up_readers;
  hub_options.max_subscriptions = a.max_subscriptions;
  hub_options.tail_events = a.live_tail_events;
  serve::SubscriptionHub hub(store, hub_options, !a.read_only);
  serve::ApiOptions api_options;
  api_options.read_only = a.read_only;
  api_options.tokens = tokens ? &*tokens : nullptr;
  api_options.hub = &hub;
  api_options.allowed_origins = a.allowed_origins;
  api_options.tls = !a.tls_cert.empty();
  api_options.tracing = tool_tracing().options();
  const auto* exporter = tool_tracing().exporter();
#ifdef LIGHTHOUSE_WITH_REPLICATION
  const ServerReplicator* replication = replicator.get();
#else
  const void* replication = nullptr;
#endif
  if (exporter != nullptr || replication != nullptr) {
    api_options.extra_metrics = [exporter, replication] {
      std::string text = exporter != nullptr ? exporter->metrics_text() : std::string();
#ifdef LIGHTHOUSE_WITH_REPLICATION
      if (replication != nullptr) text += replication->metrics_text();
#endif
      return text;
    };
  }
  serve::Api api(store, api_options, metrics);
  serve::run_server(api, metrics, &hub, options, std::cout);
#ifdef LIGHTHOUSE_WITH_REPLICATION
  if (replicator) replicator->stop();  // stores the confirmed position
#endif
  hub.stop();
  return 0;
}

}  // namespace

void add_serve_command(CLI::App& app, Commands& commands) {
  auto a = std::make_shared<ServeArguments>();
  CLI::App* serve = app.add_subcommand("serve", "Serve the store over HTTP: append, read, query, health, metrics");
  add_store_argument(*serve, a->store);
  serve->add_option("--listen", a->listen, "HOST:PORT to listen on (default 127.0.0.1:7600; port 0: any free one)");
  serve->add_option("--token-file", a->token_file,
                    "Bearer tokens with their scopes (read, append, admin), one per line: TOKEN SCOPES or "
                    "sha256:HEX SCOPES; required for a non-loopback address");
  serve->add_flag("--read-only", a->read_only, "Open the store read-only and refuse appends (403)");
  serve->add_option("--threads", a->threads, "Threads serving requests (default 4)")->check(CLI::Range(1u, 256u));
  serve->add_option("--max-connections", a->max_connections, "Connections open at once (default 256)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}));
  serve->add_option("--max-header-bytes", a->max_header_bytes, "Largest request header (default 16384)")
      ->check(CLI::Range(std::size_t{1024}, std::size_t{1} << 20));
  serve->add_option("--max-body-bytes", a->max_body_bytes, "Largest request body (default 16 MiB)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 30));
  serve->add_option("--request-timeout", a->request_timeout,
                    "Seconds a connection gets to send a request, or to take each piece of a response (default 30)")
      ->check(CLI::Range(0.01, 3600.0));
  serve->add_option("--catch-up-readers", a->catch_up_readers,
                    "Threads (each one LMDB reader at a time) reading the store for subscribers behind the live "
                    "tail (default 4)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{64}));
  serve->add_option("--max-subscriptions", a->max_subscriptions, "Subscriptions open at once (default 1024)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{100000}));
  serve->add_option("--send-queue", a->send_queue,
                    "Messages a subscription takes from the store at once for its client (default 64)")
      ->check(CLI::Range(std::size_t{1}, std::size_t{65536}));
  serve->add_option("--tls-cert", a->tls_cert, "Serve HTTPS and WSS: the certificate chain (PEM); with --tls-key");
  serve->add_option("--tls-key", a->tls_key, "The certificate's private key (PEM)");
  serve->add_option("--live-tail-events", a->live_tail_events,
                    "Latest events kept for the subscribers that are caught up (default 16384, and at most 64 MiB); "
                    "one further behind is served from the store")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1} << 24));
  serve->add_option("--allow-origin", a->allowed_origins,
                    "An Origin (scheme://host[:port]) allowed besides the server's own for WebSocket upgrades, event "
                    "streams and session cookies; repeatable");
#ifdef LIGHTHOUSE_WITH_REPLICATION
  add_server_replication_options(*serve, a->replication);
  // A read-only server has no replicator (a read replica follows its stream
  // with `lighthouse replica`).
  exclude_each_other({serve->get_option("--read-only"), serve->get_option("--nats")});
#endif
  footer_with_exit_codes(*serve,
                         "Prints {\"listening\": \"HOST:PORT\"} once it listens, then serves until SIGTERM or SIGINT: "
                         "it stops accepting, lets requests in flight finish, closes the store and exits 0. The API "
                         "is in docs/http-api.md.");
  commands.push_back({serve, [a] { return run_serve(*a); }});
}

}  // namespace lighthouse::tool
