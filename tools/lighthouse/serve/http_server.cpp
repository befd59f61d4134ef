#include "serve/http_server.h"

#include "serve/beast_session.h"

#include <boost/asio/signal_set.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>

#include <atomic>
#include <cctype>
#include <memory>
#include <thread>
#include <vector>

#include "lighthouse/error.h"
#include "parse.h"
#include "serve/parameters.h"

namespace lighthouse::serve {
namespace {

using namespace detail;

// The request as the Api takes it; a Response instead when the target
// itself is malformed.
std::optional<Response> to_request(const http::request<http::string_body>& in, Request& out) {
  out.method = std::string(in.method_string());
  const std::string_view target(in.target().data(), in.target().size());
  const auto question = target.find('?');
  if (!percent_decode(target.substr(0, question), false, out.path) || !valid_utf8(out.path)) {
    return error_response(400, "invalid_argument", "the request's path is not valid percent-encoded UTF-8");
  }
  if (out.path.empty() || out.path.front() != '/') {
    return error_response(400, "invalid_argument", "the request's target is not an absolute path");
  }
  if (question != std::string_view::npos) {
    std::string_view query = target.substr(question + 1);
    while (!query.empty()) {
      const auto amp = query.find('&');
      const std::string_view pair = query.substr(0, amp);
      query.remove_prefix(amp == std::string_view::npos ? query.size() : amp + 1);
      if (pair.empty()) continue;
      const auto eq = pair.find('=');
      std::string name, value;
      if (!percent_decode(pair.substr(0, eq), true, name) ||
          !percent_decode(eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1), true, value) ||
          !valid_utf8(name) || !valid_utf8(value)) {
        return error_response(400, "invalid_argument", "the request's query string is not valid percent-encoded UTF-8");
      }
      out.query.emplace_back(std::move(name), std::move(value));
    }
  }
  for (const auto& field : in) {
    std::string name(field.name_string());
    for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.headers[name] = std::string(field.value());
  }
  out.body = in.body();
  return std::nullopt;
}

template <class Stream>
awaitable<bool> write_response(Stream& stream, Shared& s, Response& r, unsigned version, bool keep_alive) {
  beast::error_code ec;
  const auto status = static_cast<http::status>(r.status);
  if (!r.stream) {
    http::response<http::string_body> res{status, version};
    res.set(http::field::server, "lighthouse");
    res.set(http::field::content_type, r.content_type);
    for (const auto& [name, value] : r.headers) res.set(name, value);
    res.keep_alive(keep_alive);
    res.body() = std::move(r.body);
    res.prepare_payload();
    s.metrics.response_bytes(res.body().size());
    beast::get_lowest_layer(stream).expires_after(s.options.request_timeout);
    co_await http::async_write(stream, res, net::redirect_error(use_awaitable, ec));
    co_return !ec;
  }
  http::response<http::empty_body> res{status, version};
  res.set(http::field::server, "lighthouse");
  res.set(http::field::content_type, r.content_type);
  for (const auto& [name, value] : r.headers) res.set(name, value);
  res.keep_alive(keep_alive);
  res.chunked(true);
  http::response_serializer<http::empty_body> serializer{res};
  beast::get_lowest_layer(stream).expires_after(s.options.request_timeout);
  co_await http::async_write_header(stream, serializer, net::redirect_error(use_awaitable, ec));
  if (ec) co_return false;
  std::string chunk;
  for (bool more = true; more;) {
    chunk.clear();
    more = r.stream(chunk);
    if (chunk.empty()) continue;
    s.metrics.response_bytes(chunk.size());
    beast::get_lowest_layer(stream).expires_after(s.options.request_timeout);
    co_await net::async_write(stream, http::make_chunk(net::buffer(chunk)), net::redirect_error(use_awaitable, ec));
    if (ec) co_return false;
  }
  co_await net::async_write(stream, http::make_chunk_last(), net::redirect_error(use_awaitable, ec));
  co_return !ec;
}

// The answer to a request the parser refused: its status and words.
Response parse_failure(const beast::error_code& ec) {
  if (ec == http::error::body_limit) {
    return error_response(413, "limit_exceeded", "the request's body is over this server's limit (--max-body-bytes)");
  }
  if (ec == http::error::header_limit) {
    return error_response(431, "limit_exceeded", "the request's header is over this server's limit (--max-header-bytes)");
  }
  return error_response(400, "invalid_argument", "malformed HTTP request: " + ec.message());
}

bool header_has(const Request& r, const char* name, std::string_view token) {
  auto found = header(r, name);
  if (!found) return false;
  std::string value = std::move(*found);
  for (char& c : value) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return value.find(token) != std::string::npos;
}

// Sets `gone` (and wakes) once the client of an event stream hangs up: its
// socket turns readable and a peek finds its end, an error or bytes it should
// not send (over TLS: its close_notify). A readiness without any of them is
// spurious (Asio may report one) and is waited out again.
void watch_for_hangup(tcp::socket& socket, std::shared_ptr<bool> gone, std::shared_ptr<Wakeup> wakeup) {
  beast::error_code ec;
  socket.non_blocking(true, ec);  // the peek must not wait
  socket.async_wait(tcp::socket::wait_read, [&socket, gone, wakeup](const beast::error_code& e) {
    if (e == net::error::operation_aborted) return;
    char byte = 0;
    beast::error_code peeked;
    socket.receive(net::buffer(&byte, 1), tcp::socket::message_peek, peeked);
    if (!e && peeked == net::error::would_block) {
      watch_for_hangup(socket, gone, wakeup);
      return;
    }
    *gone = true;
    wakeup->wake_here();
  });
}

std::string sse_message(const Outgoing& m) {
  if (m.event) return "id: " + m.event->id.to_string() + "\nevent: event\ndata: " + m.event->json + "\n\n";
  return std::string("event: ") + m.kind + "\ndata: " + m.control + "\n\n";
}

// GET /subscribe with Accept: text/event-stream: the subscription as
// Server-Sent Events in a chunked response, until either side ends it.
template <class Stream>
awaitable<void> serve_events(Stream& stream, Shared& s, const Request& request, unsigned version,
                             const std::string& traceparent) {
  auto wakeup = std::make_shared<Wakeup>(stream.get_executor());
  std::shared_ptr<Subscriber> subscriber;
  Response refusal;
  try {
    subscriber = s.hub->open(Api::subscription_from_query(request), wakeup->waker());
  } catch (const Refused& r) {
    refusal = error_response(r.status, r.code, r.what());
  } catch (const Error& e) {
    refusal = store_error(e);
  }
  if (!subscriber) {
    s.metrics.request("/subscribe (events)", refusal.status);
    co_await write_response(stream, s, refusal, version, false);
    co_return;
  }
  s.metrics.request("/subscribe (events)", 200);
  http::response<http::empty_body> res{http::status::ok, version};
  res.set(http::field::server, "lighthouse");
  res.set(http::field::content_type, "text/event-stream");
  res.set(http::field::cache_control, "no-store");
  if (!traceparent.empty()) res.set("traceparent", traceparent);
  res.keep_alive(false);
  res.chunked(true);
  http::response_serializer<http::empty_body> serializer{res};
  beast::error_code ec;
  beast::get_lowest_layer(stream).expires_after(s.options.request_timeout);
  co_await http::async_write_header(stream, serializer, net::redirect_error(use_awaitable, ec));
  // The client sends nothing more: its socket turning readable (its close,
  // or bytes it should not send) says it went away. A wait on the socket
  // itself, not a read through the stream: the stream's read deadline would
  // end a healthy stream after --request-timeout, and over TLS a read would
  // take records the stream owns.
  auto gone = std::make_shared<bool>(false);
  watch_for_hangup(beast::get_lowest_layer(stream).socket(), gone, wakeup);
  const auto keep_alive = std::min<std::chrono::steady_clock::duration>(s.options.keep_alive, s.options.request_timeout / 2);
  for (bool more = !ec; more && !*gone;) {
    std::string chunk;
    for (const Outgoing& m : subscriber->take(s.options.send_queue)) {
      chunk += sse_message(m);
      more = more && !m.final;
    }
    if (chunk.empty()) {
      if (co_await wakeup->wait(keep_alive)) continue;
      chunk = ": keep-alive\n\n";  // also finds a client that is gone
    }
    s.metrics.response_bytes(chunk.size());
    beast::get_lowest_layer(stream).expires_after(s.options.request_timeout);
    co_await net::async_write(stream, http::make_chunk(net::buffer(chunk)), net::redirect_error(use_awaitable, ec));
    if (ec) break;
  }
  if (!ec && !*gone) co_await net::async_write(stream, http::make_chunk_last(), net::redirect_error(use_awaitable, ec));
  subscriber->close();
  beast::get_lowest_layer(stream).socket().cancel(ec);
}

// A deferred response (an append): the coroutine that awaits this waits,
// without a thread, until the Api's completion posts the response back to
// its strand. (A plain function, not a coroutine: g++ 12 destroys a
// coroutine's by-value std::function argument twice.)
awaitable<Response> complete(const net::any_io_executor& executor, std::function<void(Response::Completion)>& deferred) {
  return net::async_initiate<decltype(use_awaitable), void(Response)>(
      [executor](auto handler, std::function<void(Response::Completion)> start) {
        auto shared = std::make_shared<decltype(handler)>(std::move(handler));
        start([shared, executor](Response r) {
          net::post(executor, [shared, r = std::move(r)]() mutable { (*shared)(std::move(r)); });
        });
      },
      use_awaitable, std::move(deferred));
}

// The requests of one connection, in order, until it closes; true when a
// WebSocket took the stream over.
template <class Stream>
awaitable<bool> serve_requests(Stream& stream, Shared& s) {
  beast::flat_buffer buffer;
  for (;;) {
    http::request_parser<http::string_body> parser;
    parser.header_limit(static_cast<std::uint32_t>(s.options.max_header_bytes));
    parser.body_limit(s.options.max_body_bytes);
    beast::error_code ec;
    beast::get_lowest_layer(stream).expires_after(s.options.request_timeout);
    // The header first: Beast checks its limit only while the header is
    // incomplete, so a whole header that arrived at once is measured here.
    const std::size_t header_bytes =
        co_await http::async_read_header(stream, buffer, parser, net::redirect_error(use_awaitable, ec));
    if (!ec && header_bytes > s.options.max_header_bytes) ec = http::error::header_limit;
    if (!ec && !parser.is_done()) {
      co_await http::async_read(stream, buffer, parser, net::redirect_error(use_awaitable, ec));
    }
    if (ec == http::error::end_of_stream || ec == beast::error::timeout || ec == net::error::connection_reset ||
        ec == net::error::eof || ec == net::error::operation_aborted) {
      break;
    }
    if (ec) {
      // Answer what can be answered, then close: the stream's framing is lost.
      Response failure = parse_failure(ec);
      s.metrics.request("unparsed", failure.status);
      co_await write_response(stream, s, failure, 11, false);
      break;
    }
    ++s.in_flight;
    const http::request<http::string_body>& in = parser.get();
    const bool keep_alive = in.keep_alive() && !s.stopping.load();
    Request request;
    Response response;
    if (auto bad = to_request(in, request)) {
      response = std::move(*bad);
      s.metrics.request("unparsed", response.status);
    } else if (request.path == "/subscribe" && request.method == "GET" && s.hub &&
               (header_has(request, "upgrade", "websocket") || header_has(request, "accept", "text/event-stream"))) {
      std::optional<Response> refused;
      if (!s.api.origin_allowed(request)) {
        refused = error_response(403, "forbidden", "the request's Origin is not allowed (--allow-origin)");
      } else if (s.api.has_credentials(request)) {
        refused = s.api.authorize(request, Scope::read);
      }
      const bool websocket = header_has(request, "upgrade", "websocket");
      if (!refused && !websocket && !s.api.has_credentials(request)) refused = s.api.authorize(request, Scope::read);
      // The handshake's span (the subscription's deliveries are not traced
      // per client): ended as the stream starts, its context in the response.
      tracing::Span span = s.api.request_span(request, "/subscribe");
      span.set("http.response.status_code", static_cast<std::int64_t>(refused ? refused->status : websocket ? 101 : 200));
      const std::string traceparent = span.context().valid() ? span.context().traceparent() : std::string();
      span.end();
      if (refused) {
        s.metrics.request("/subscribe", refused->status);
        response = std::move(*refused);
        if (!traceparent.empty()) response.headers.emplace_back("traceparent", traceparent);
      } else {
        --s.in_flight;
        if (websocket) {
          const auto scopes = s.api.has_credentials(request) ? std::optional<std::uint8_t>(7) : std::nullopt;
          co_await serve_websocket(std::move(stream), parser.release(), s, scopes, traceparent);
          co_return true;
        }
        co_await serve_events(stream, s, request, in.version(), traceparent);
        co_return false;
      }
    } else {
      response = s.api.handle(request);
      if (response.deferred) {
        std::function<void(Response::Completion)> deferred = std::move(response.deferred);
        response = co_await complete(stream.get_executor(), deferred);
      }
    }
    const bool written = co_await write_response(stream, s, response, in.version(), keep_alive);
    --s.in_flight;
    if (!written || !keep_alive) break;
  }
  co_return false;
}

awaitable<void> session(tcp::socket socket, Shared& s) {
  s.metrics.connection_opened();
  struct Closed {
    Shared& s;
    ~Closed() {
      s.metrics.connection_closed();
      --s.connections;
    }
  } closed{s};
  beast::error_code ec;
  if (s.tls == nullptr) {
    beast::tcp_stream stream(std::move(socket));
    if (!co_await serve_requests(stream, s)) stream.socket().shutdown(tcp::socket::shutdown_send, ec);
    co_return;
  }
  beast::ssl_stream<beast::tcp_stream> stream(std::move(socket), *s.tls);
  beast::get_lowest_layer(stream).expires_after(s.options.request_timeout);
  co_await stream.async_handshake(net::ssl::stream_base::server, net::redirect_error(use_awaitable, ec));
  if (ec) {
    // Not TLS (plain HTTP on a TLS port, say) or a failed handshake: closed.
    s.metrics.request("tls handshake failed", 400);
    co_return;
  }
  if (!co_await serve_requests(stream, s)) {
    beast::get_lowest_layer(stream).expires_after(std::chrono::seconds(1));
    co_await stream.async_shutdown(net::redirect_error(use_awaitable, ec));
  }
}

awaitable<void> listen(tcp::acceptor& acceptor, Shared& s, net::io_context& ioc) {
  for (;;) {
    beast::error_code ec;
    // Each connection on a strand of its own: a WebSocket reads and writes at once.
    tcp::socket socket =
        co_await acceptor.async_accept(net::make_strand(ioc), net::redirect_error(use_awaitable, ec));
    if (ec == net::error::operation_aborted || !acceptor.is_open()) co_return;
    if (ec) continue;  // EMFILE and the like: the next accept may succeed
    if (s.connections.load() >= s.options.max_connections && s.tls) {
      continue;  // closed: over TLS a word would need a handshake first
    }
    if (s.connections.load() >= s.options.max_connections) {
      // Refused with a word rather than dropped.
      beast::tcp_stream stream(std::move(socket));
      Response busy = error_response(503, "busy", "this server has its maximum of connections open (--max-connections)");
      busy.headers.emplace_back("Retry-After", "1");
      s.metrics.request("refused", 503);
      co_await write_response(stream, s, busy, 11, false);
      continue;
    }
    ++s.connections;
    const auto executor = socket.get_executor();
    net::co_spawn(executor, session(std::move(socket), s), net::detached);
  }
}

// The server's TLS context: TLS 1.2 and later, the certificate chain and key
// from files. Errors: invalid_argument naming the file and OpenSSL's reason.
net::ssl::context tls_context(const ServerOptions& options) {
  net::ssl::context ctx(net::ssl::context::tls_server);
  ctx.set_options(net::ssl::context::default_workarounds | net::ssl::context::no_sslv2 | net::ssl::context::no_sslv3 |
                  net::ssl::context::no_tlsv1 | net::ssl::context::no_tlsv1_1 | net::ssl::context::single_dh_use);
  beast::error_code ec;
  ctx.use_certificate_chain_file(options.tls_cert, ec);
  if (ec) {
    throw Error(ErrorCode::invalid_argument,
                "--tls-cert '" + tool::shown(options.tls_cert, 200) + "' is not a PEM certificate chain: " + ec.message());
  }
  ctx.use_private_key_file(options.tls_key, net::ssl::context::pem, ec);
  if (ec) {
    throw Error(ErrorCode::invalid_argument, "--tls-key '" + tool::shown(options.tls_key, 200) +
                                                 "' is not the PEM private key of the certificate: " + ec.message());
  }
  return ctx;
}

}  // namespace

void check_address(const std::string& host) {
  beast::error_code ec;
  net::ip::make_address(host, ec);
  if (ec) throw Error(ErrorCode::invalid_argument, "--listen address '" + tool::shown(host) + "' is not an IP address");
}

bool is_loopback(const std::string& host) {
  beast::error_code ec;
  const auto address = net::ip::make_address(host, ec);
  return !ec && address.is_loopback();
}

void run_server(Api& api, ServerMetrics& metrics, SubscriptionHub* hub, const ServerOptions& options,
                std::ostream& announce) {
  check_address(options.host);
  beast::error_code ec;
  const auto address = net::ip::make_address(options.host, ec);
  // Declared before the io_context, so that they outlive the coroutine
  // frames it destroys (connections still open when the drain timed out).
  std::optional<net::ssl::context> tls;
  if (!options.tls_cert.empty()) tls = tls_context(options);
  Shared s{api, metrics, hub, options, tls ? &*tls : nullptr};
  net::io_context ioc(static_cast<int>(options.threads));
  // The acceptor on a strand of its own: SIGTERM closes it on that strand,
  // never while another thread accepts on it.
  const auto accept_strand = net::make_strand(ioc);
  tcp::acceptor acceptor(accept_strand);
  const tcp::endpoint endpoint(address, options.port);
  acceptor.open(endpoint.protocol(), ec);
  if (!ec) acceptor.set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) acceptor.bind(endpoint, ec);
  if (!ec) acceptor.listen(net::socket_base::max_listen_connections, ec);
  if (ec) {
    throw Error(ErrorCode::io_error, "cannot listen on " + options.host + ":" + std::to_string(options.port) + ": " +
                                         ec.message());
  }
  const auto bound = acceptor.local_endpoint();
  const std::string where = (bound.address().is_v6() ? "[" + bound.address().to_string() + "]"
                                                     : bound.address().to_string()) +
                            ":" + std::to_string(bound.port());
  announce << "{\"listening\":\"" << where << "\"}\n" << std::flush;

  net::signal_set signals(ioc, SIGINT, SIGTERM);
  net::steady_timer drain(ioc);
  std::chrono::steady_clock::time_point deadline;
  std::function<void()> wait_drained = [&] {
    const bool drained = s.in_flight.load() == 0 && (hub == nullptr || hub->size() == 0);
    if (drained || std::chrono::steady_clock::now() >= deadline) {
      ioc.stop();
      return;
    }
    drain.expires_after(std::chrono::milliseconds(10));
    drain.async_wait([&](const beast::error_code&) { wait_drained(); });
  };
  signals.async_wait([&](const beast::error_code& error, int) {
    if (error) return;
    s.stopping = true;
    net::post(accept_strand, [&] {
      beast::error_code ignored;
      acceptor.close(ignored);
    });
    if (hub) hub->close_all();
    deadline = std::chrono::steady_clock::now() + options.drain_timeout;
    wait_drained();
  });
  net::co_spawn(accept_strand, listen(acceptor, s, ioc), net::detached);
  std::vector<std::thread> threads;
  for (unsigned i = 1; i < options.threads; ++i) threads.emplace_back([&] { ioc.run(); });
  ioc.run();
  for (auto& t : threads) t.join();
  // Before the io_context goes: no hub thread wakes a connection any more
  // (pending acknowledgements are stored), and the appends in flight are
  // completed (their completions are posted to it, never run).
  if (hub) hub->stop();
  api.drain_appends();
}

}  // namespace lighthouse::serve
