// What the server's two Beast translation units share (http_server.cpp for
// HTTP and Server-Sent Events, websocket.cpp for WebSocket subscriptions):
// the server's state and the wake-up of a connection that waits for events.
// Included by those two files only: Beast is slow to compile.
#pragma once

// g++ 12 reports the sized operator delete of Asio's coroutine frames as
// mismatched with their operator new at the end of every coroutine: a false
// positive (GCC bug 109224, fixed in g++ 13), silenced for these files only.
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"

#include <utility>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <utility>

#include "serve/api.h"
#include "serve/http_server.h"
#include "serve/subscriptions.h"

namespace lighthouse::serve::detail {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = net::ip::tcp;
using net::awaitable;
using net::use_awaitable;

struct Shared {
  Api& api;
  ServerMetrics& metrics;
  SubscriptionHub* hub;
  const ServerOptions& options;
  net::ssl::context* tls;  // null: plain HTTP
  std::atomic<std::size_t> connections{0};
  std::atomic<std::size_t> in_flight{0};
  std::atomic<bool> stopping{false};
};

// A connection's wake-up: the hub calls `wake()` from its threads; the
// connection's coroutine, on its strand, waits in `wait()` until then or a
// deadline. A wake that comes before the wait is not lost.
class Wakeup : public std::enable_shared_from_this<Wakeup> {
 public:
  explicit Wakeup(const net::any_io_executor& strand) : timer_(strand) {}
  std::function<void()> waker() {
    return [weak = weak_from_this()] {
      if (auto self = weak.lock()) {
        net::post(self->timer_.get_executor(), [self] {
          self->pending_ = true;
          self->timer_.cancel();
        });
      }
    };
  }
  // Also on the strand: makes the next wait return at once.
  void wake_here() {
    pending_ = true;
    timer_.cancel();
  }
  // True when woken, false when the deadline passed.
  awaitable<bool> wait(std::chrono::steady_clock::duration longest) {
    if (!std::exchange(pending_, false)) {
      timer_.expires_after(longest);
      beast::error_code ec;
      co_await timer_.async_wait(net::redirect_error(use_awaitable, ec));
      if (!ec) co_return std::exchange(pending_, false);
    }
    pending_ = false;
    co_return true;
  }

 private:
  net::steady_timer timer_;
  bool pending_ = false;
};

// A subscription over WebSocket (websocket.cpp), from the upgrade request
// on; `scopes` are those of the request's token or session (nothing: the
// token must come in the first message).
// Instantiated for beast::tcp_stream and beast::ssl_stream<beast::tcp_stream>.
template <class Stream>
awaitable<void> serve_websocket(Stream stream, http::request<http::string_body> upgrade, Shared& s,
                                std::optional<std::uint8_t> scopes, std::string traceparent);

}  // namespace lighthouse::serve::detail
