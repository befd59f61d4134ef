// The HTTP/1.1 side of `lighthouse serve`, on Boost.Beast and Asio: accepts
// connections, parses requests within the limits, hands them to the Api and
// writes its responses (streamed ones chunked). The only translation unit of
// the server that includes Beast (it is slow to compile).
#pragma once

#include <chrono>
#include <cstddef>
#include <ostream>
#include <string>

#include "serve/api.h"
#include "serve/subscriptions.h"

namespace lighthouse::serve {

struct ServerOptions {
  std::string host = "127.0.0.1";
  unsigned short port = 7600;  // 0: any free port (the one taken is announced)
  unsigned threads = 4;        // threads serving requests
  std::size_t max_connections = 256;
  std::size_t max_header_bytes = 16 * 1024;
  std::size_t max_body_bytes = std::size_t{16} << 20;
  // The time a connection gets to send a whole request (from its previous
  // response on, idle time included) and to take each piece of a response:
  // a connection that is slower is closed (a slowloris client among them).
  std::chrono::milliseconds request_timeout{30'000};
  // After SIGTERM or SIGINT: how long requests in flight may take to finish.
  std::chrono::milliseconds drain_timeout{10'000};
  // Subscriptions: messages taken from the store at once for one client
  // (its send queue), the largest client message, and how long a WebSocket
  // may go without a frame from its client (pings are sent meanwhile).
  std::size_t send_queue = 64;
  std::size_t max_message_bytes = 64 * 1024;
  std::chrono::milliseconds websocket_idle_timeout{60'000};
  // TLS: the certificate chain and private key (PEM files); empty: plain HTTP.
  std::string tls_cert, tls_key;
  // An event stream (SSE) that has nothing to send says so this often.
  std::chrono::milliseconds keep_alive{15'000};
};

// Errors: invalid_argument when `host` is not an IPv4 or IPv6 address.
void check_address(const std::string& host);
// Whether `host` is a loopback address (127.0.0.0/8 or ::1).
bool is_loopback(const std::string& host);

// Listens, announces {"listening": "HOST:PORT"} on `announce`, and serves
// until SIGTERM or SIGINT; then stops accepting, closes the subscriptions
// (each told where to resume), lets the requests in flight finish (within
// drain_timeout) and returns. Errors: invalid_argument (an address that
// does not parse, a TLS certificate or key that does not load), io_error
// (the address cannot be bound).
void run_server(Api& api, ServerMetrics& metrics, SubscriptionHub* hub, const ServerOptions& options,
                std::ostream& announce);

}  // namespace lighthouse::serve
