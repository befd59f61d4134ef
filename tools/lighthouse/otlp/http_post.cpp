// The OTLP exporter's HTTP/1.1 POST, on Boost.Beast: one connection per
// request (a batch every few seconds at most), every step under the
// request's timeout.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

#include <charconv>
#include <stdexcept>

#include "lighthouse/version.h"
#include "otlp/exporter.h"

namespace lighthouse::tool::otlp {
namespace {

namespace beast = boost::beast;
namespace http = beast::http;
using tcp = boost::asio::ip::tcp;

struct Url {
  std::string host, port = "80", target = "/";
};

Url parse_url(const std::string& endpoint) {
  Url u;
  std::string rest = endpoint.substr(7);  // after "http://"
  const auto slash = rest.find('/');
  if (slash != std::string::npos) {
    u.target = rest.substr(slash);
    rest = rest.substr(0, slash);
  }
  if (!rest.empty() && rest.front() == '[') {  // [IPv6]:port
    const auto close = rest.find(']');
    u.host = rest.substr(1, close == std::string::npos ? std::string::npos : close - 1);
    if (close != std::string::npos && close + 1 < rest.size() && rest[close + 1] == ':') u.port = rest.substr(close + 2);
  } else {
    const auto colon = rest.rfind(':');
    u.host = rest.substr(0, colon);
    if (colon != std::string::npos) u.port = rest.substr(colon + 1);
  }
  return u;
}

std::optional<std::chrono::milliseconds> retry_after(std::string_view value) {
  // Seconds (the form collectors send); an HTTP date falls back to backoff.
  unsigned seconds = 0;
  auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), seconds);
  if (ec != std::errc() || end != value.data() + value.size()) return std::nullopt;
  return std::chrono::milliseconds(static_cast<long long>(std::min(seconds, 3600u)) * 1000);
}

}  // namespace

Transport http_transport(const ExporterConfig& config) {
  const Url url = parse_url(config.endpoint);
  const std::string content_type = config.encoding == Encoding::json ? "application/json" : "application/x-protobuf";
  const auto headers = config.headers;
  return [url, content_type, headers](const std::string& body, std::chrono::milliseconds timeout) {
    boost::asio::io_context io;
    tcp::resolver resolver(io);
    beast::tcp_stream stream(io);
    http::request<http::string_body> request{http::verb::post, url.target, 11};
    request.set(http::field::host, url.host + ":" + url.port);
    request.set(http::field::user_agent, "lighthouse/" LIGHTHOUSE_VERSION);
    request.set(http::field::content_type, content_type);
    for (const auto& [k, v] : headers) request.set(k, v);
    request.body() = body;
    request.prepare_payload();
    beast::flat_buffer buffer;
    http::response<http::string_body> response;
    beast::error_code failed;
    bool done = false;
    stream.expires_after(timeout);
    resolver.async_resolve(url.host, url.port, [&](beast::error_code ec, tcp::resolver::results_type results) {
      if (ec) return void(failed = ec);
      stream.async_connect(results, [&](beast::error_code ec2, const tcp::endpoint&) {
        if (ec2) return void(failed = ec2);
        http::async_write(stream, request, [&](beast::error_code ec3, std::size_t) {
          if (ec3) return void(failed = ec3);
          http::async_read(stream, buffer, response, [&](beast::error_code ec4, std::size_t) {
            failed = ec4;
            done = !ec4;
          });
        });
      });
    });
    io.run_for(timeout + std::chrono::milliseconds(100));
    if (!done) {
      throw std::runtime_error("no reply from " + url.host + ":" + url.port + ": " +
                               (failed ? failed.message() : std::string("timed out")));
    }
    beast::error_code ignored;
    stream.socket().shutdown(tcp::socket::shutdown_both, ignored);
    HttpReply reply;
    reply.status = response.result_int();
    if (auto it = response.find(http::field::retry_after); it != response.end()) reply.retry_after = retry_after(std::string_view(it->value().data(), it->value().size()));
    return reply;
  };
}

}  // namespace lighthouse::tool::otlp
