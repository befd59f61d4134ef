// Subscriptions over WebSocket at /subscribe (docs/http-api.md,
// "Subscriptions"): the client's first message says what it follows; then
// the server sends events and control messages while the client sends
// acknowledgements and credit. The events come from a Subscriber of the
// hub (subscriptions.h), which bounds what the server holds for a client.
//
// The templates of it, instantiated for plain TCP in websocket_plain.cpp and
// for TLS in websocket_tls.cpp: two translation units that compile at once.
#pragma once

#include "serve/beast_session.h"

#include <boost/beast/websocket.hpp>
#include <boost/beast/websocket/ssl.hpp>

#include <array>

#include "lighthouse/error.h"
#include "output.h"
#include "json_event.h"
#include "parse.h"

namespace lighthouse::serve::detail {
namespace ws {

namespace websocket = beast::websocket;
using tool::Json;
// The state both coroutines of a connection (the writer, the reader) hold.
template <class Stream>
struct Connection {
  using Socket = websocket::stream<Stream>;
  Connection(Stream stream, Shared& s)
      : ws(std::move(stream)), shared(s), wakeup(std::make_shared<Wakeup>(ws.get_executor())) {}
  Socket ws;
  Shared& shared;
  std::shared_ptr<Wakeup> wakeup;
  std::shared_ptr<Subscriber> subscriber;
  bool done = false;       // the client closed or the connection failed
  std::string refusal;     // a client message refused: sent, then the connection closes
  std::string refusal_code = "invalid_argument";
};

inline std::string error_message(const std::string& code, const std::string& message) {
  Json e;
  e["kind"] = "error";
  e["error"] = code;
  e["message"] = message;
  return tool::dump(e);
}

template <class Socket>
awaitable<bool> send_text(Socket& ws, const std::string& text) {
  beast::error_code ec;
  ws.text(true);
  co_await ws.async_write(net::buffer(text), net::redirect_error(use_awaitable, ec));
  co_return !ec;
}

template <class Socket>
awaitable<void> refuse(Socket& ws, const std::string& code, const std::string& message) {
  if (co_await send_text(ws, error_message(code, message))) {
    beast::error_code ec;
    co_await ws.async_close(websocket::close_reason(websocket::close_code::policy_error, code),
                            net::redirect_error(use_awaitable, ec));
  }
}

// Client messages after the first: {"ack": ID} and {"credit": N}.
inline void client_message(Subscriber& subscriber, const std::string& text) {
  const Json m = tool::parse_json_text(text, true);
  if (!m.is_object() || m.empty()) throw Error(ErrorCode::invalid_argument, "a client message is {\"ack\": ID} or {\"credit\": N}");
  for (const auto& [name, value] : m.items()) {
    if (name == "ack") {
      if (!value.is_string()) throw Error(ErrorCode::invalid_argument, "'ack' is an event ID");
      subscriber.acknowledge(EventId::parse(value.get_ref<const std::string&>()));
    } else if (name == "credit") {
      if (!value.is_number_unsigned()) throw Error(ErrorCode::invalid_argument, "'credit' is a number of events");
      subscriber.grant(value.get<std::uint64_t>());
    } else {
      throw Error(ErrorCode::invalid_argument, "unknown client message field '" + tool::shown(name) + "' (ack, credit)");
    }
  }
}

template <class C>
awaitable<void> read_loop(std::shared_ptr<C> c) {
  beast::flat_buffer buffer;
  for (;;) {
    beast::error_code ec;
    co_await c->ws.async_read(buffer, net::redirect_error(use_awaitable, ec));
    if (ec) break;
    try {
      client_message(*c->subscriber, beast::buffers_to_string(buffer.data()));
    } catch (const Error& e) {
      c->refusal = e.what();
      c->refusal_code = std::string(to_string(e.code()));
      break;
    }
    buffer.consume(buffer.size());
  }
  c->done = c->refusal.empty();
  c->wakeup->wake_here();
}

// The first message: what to follow, and the token when the upgrade had none.
template <class C>
awaitable<bool> subscribe(C& c, std::optional<std::uint8_t> scopes) {
  beast::flat_buffer buffer;
  beast::error_code ec;
  co_await c.ws.async_read(buffer, net::redirect_error(use_awaitable, ec));
  if (ec) co_return false;
  std::string code, message;
  try {
    SubscriptionRequest request = parse_subscription(tool::parse_json_text(beast::buffers_to_string(buffer.data()), true));
    if (!scopes) scopes = c.shared.api.token_scopes(request.token);
    if (!scopes) {
      throw Refused(401, "unauthorized", "this server needs a token: the upgrade's Authorization header, a "
                                         "session cookie, or \"token\" in the first message");
    }
    if ((*scopes & static_cast<std::uint8_t>(Scope::read)) == 0) {
      throw Refused(403, "forbidden", "the token has no 'read' scope");
    }
    request.token.clear();
    c.subscriber = c.shared.hub->open(std::move(request), c.wakeup->waker());
  } catch (const Refused& r) {
    code = r.code;
    message = r.what();
  } catch (const Error& e) {
    code = std::string(to_string(e.code()));
    message = e.what();
  }
  if (c.subscriber) co_return true;
  co_await refuse(c.ws, code, message);
  co_return false;
}

// Sends what the subscriber hands out, a bounded batch at a time, until the
// client goes or the server closes the subscription.
template <class C>
awaitable<void> write_loop(C& c) {
  static const std::string prefix = "{\"kind\":\"event\",\"event\":", suffix = "}";
  const std::size_t batch = c.shared.options.send_queue;
  for (;;) {
    if (c.done) co_return;
    if (!c.refusal.empty()) {
      co_await refuse(c.ws, c.refusal_code, c.refusal);
      co_return;
    }
    std::vector<Outgoing> out = c.subscriber->take(batch);
    if (out.empty()) {
      co_await c.wakeup->wait(std::chrono::hours(24));
      continue;
    }
    for (const Outgoing& m : out) {
      beast::error_code ec;
      c.ws.text(true);
      if (m.event) {
        const std::array<net::const_buffer, 3> message{net::buffer(prefix), net::buffer(m.event->json),
                                                       net::buffer(suffix)};
        co_await c.ws.async_write(message, net::redirect_error(use_awaitable, ec));
        c.shared.metrics.response_bytes(prefix.size() + m.event->json.size() + suffix.size());
      } else {
        co_await c.ws.async_write(net::buffer(m.control), net::redirect_error(use_awaitable, ec));
        c.shared.metrics.response_bytes(m.control.size());
      }
      if (ec) co_return;
      if (m.final) {
        co_await c.ws.async_close(websocket::close_reason(websocket::close_code::going_away, "closing"),
                                  net::redirect_error(use_awaitable, ec));
        co_return;
      }
    }
  }
}

}  // namespace ws

template <class Stream>
awaitable<void> serve_websocket(Stream stream, http::request<http::string_body> upgrade, Shared& s,
                                std::optional<std::uint8_t> scopes, std::string traceparent) {
  using namespace ws;
  auto c = std::make_shared<Connection<Stream>>(std::move(stream), s);
  beast::get_lowest_layer(c->ws).expires_never();
  auto timeouts = websocket::stream_base::timeout::suggested(beast::role_type::server);
  timeouts.handshake_timeout = s.options.request_timeout;
  timeouts.idle_timeout = s.options.websocket_idle_timeout;
  timeouts.keep_alive_pings = true;
  c->ws.set_option(timeouts);
  c->ws.set_option(websocket::stream_base::decorator([traceparent](websocket::response_type& res) {
    res.set(http::field::server, "lighthouse");
    if (!traceparent.empty()) res.set("traceparent", traceparent);
  }));
  c->ws.read_message_max(s.options.max_message_bytes);
  beast::error_code ec;
  co_await c->ws.async_accept(upgrade, net::redirect_error(use_awaitable, ec));
  if (ec) co_return;
  s.metrics.request("/subscribe (websocket)", 101);
  // The first message has the time of a request to come.
  net::steady_timer first(c->ws.get_executor());
  first.expires_after(s.options.request_timeout);
  first.async_wait([c](const beast::error_code& e) {
    if (!e && !c->subscriber) beast::get_lowest_layer(c->ws).cancel();
  });
  const bool subscribed = co_await subscribe(*c, scopes);
  first.cancel();
  if (!subscribed) co_return;
  net::co_spawn(c->ws.get_executor(), read_loop(c), net::detached);
  co_await write_loop(*c);
  c->subscriber->close();
  if (!c->done) {
    // The reader may still wait for a frame: end it.
    beast::get_lowest_layer(c->ws).cancel();
  }
}

}  // namespace lighthouse::serve::detail
