#include "serve/api.h"

#include <iterator>
#include <locale>
#include <sstream>

#include "lighthouse/error.h"
#include "output.h"

namespace lighthouse::serve {

using tool::Json;

Response json_response(int status, const Json& body) {
  Response r;
  r.status = status;
  r.body = tool::dump(body) + "\n";
  return r;
}

// The status and extra fields of each store error (docs/http-api.md).
Response store_error(const Error& e) {
  int status = 500;
  switch (e.code()) {
    case ErrorCode::invalid_argument: status = 400; break;
    case ErrorCode::limit_exceeded: status = 413; break;
    case ErrorCode::wrong_expected_version:
    case ErrorCode::idempotency_conflict: status = 409; break;
    case ErrorCode::not_found: status = 404; break;
    case ErrorCode::read_only: status = 403; break;
    case ErrorCode::degraded: status = 429; break;
    case ErrorCode::emergency:
    case ErrorCode::replication_pending:
    case ErrorCode::corruption:
    case ErrorCode::unsupported_format:
    case ErrorCode::already_open:
    case ErrorCode::store_failed:
    case ErrorCode::closed:
    case ErrorCode::io_error: status = 503; break;
    case ErrorCode::internal: status = 500; break;
  }
  Json body;
  body["error"] = std::string(to_string(e.code()));
  body["message"] = e.what();
  if (e.actual_version()) {
    body["aggregate"] = e.aggregate();
    body["actual_version"] = *e.actual_version();
  }
  if (e.index()) body["index"] = *e.index();
  Response r = json_response(status, body);
  if (e.code() == ErrorCode::degraded || e.code() == ErrorCode::replication_pending) r.headers.emplace_back("Retry-After", "1");
  if (e.code() == ErrorCode::emergency) r.headers.emplace_back("Retry-After", "5");
  return r;
}

Response error_response(int status, const std::string& code, const std::string& message) {
  Json body;
  body["error"] = code;
  body["message"] = message;
  return json_response(status, body);
}

namespace {

// The upper bounds of the request-latency histogram, in seconds.
constexpr double kLatencyBounds[] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 10};

std::string number(double v) {
  std::ostringstream out;
  out.imbue(std::locale::classic());
  out << v;
  return out.str();
}

}  // namespace

void ServerMetrics::request(const std::string& route, int status, double seconds) {
  const std::lock_guard lock(mutex_);
  ++requests_[{route, status}];
  if (seconds < 0) return;
  Latency& l = latency_[route];
  if (l.buckets.empty()) l.buckets.assign(std::size(kLatencyBounds), 0);
  for (std::size_t i = 0; i < std::size(kLatencyBounds); ++i) {
    if (seconds <= kLatencyBounds[i]) {
      ++l.buckets[i];
      break;
    }
  }
  l.sum += seconds;
  ++l.count;
}

std::string ServerMetrics::text() const {
  std::string out =
      "# HELP lighthouse_http_requests_total HTTP requests answered, by route and status.\n"
      "# TYPE lighthouse_http_requests_total counter\n";
  {
    const std::lock_guard lock(mutex_);
    for (const auto& [key, count] : requests_) {
      out += "lighthouse_http_requests_total{route=\"" + key.first + "\",status=\"" + std::to_string(key.second) +
             "\"} " + std::to_string(count) + "\n";
    }
    out += "# HELP lighthouse_http_request_duration_seconds Time from a request's parse to its response, by route.\n"
           "# TYPE lighthouse_http_request_duration_seconds histogram\n";
    for (const auto& [route, l] : latency_) {
      const std::string name = "lighthouse_http_request_duration_seconds";
      std::uint64_t cumulative = 0;
      for (std::size_t i = 0; i < l.buckets.size(); ++i) {
        cumulative += l.buckets[i];
        out += name + "_bucket{route=\"" + route + "\",le=\"" + number(kLatencyBounds[i]) + "\"} " +
               std::to_string(cumulative) + "\n";
      }
      out += name + "_bucket{route=\"" + route + "\",le=\"+Inf\"} " + std::to_string(l.count) + "\n";
      out += name + "_sum{route=\"" + route + "\"} " + number(l.sum) + "\n";
      out += name + "_count{route=\"" + route + "\"} " + std::to_string(l.count) + "\n";
    }
  }
  out += "# HELP lighthouse_http_connections_open Connections open now.\n"
         "# TYPE lighthouse_http_connections_open gauge\n"
         "lighthouse_http_connections_open " + std::to_string(connections_.load()) + "\n";
  out += "# HELP lighthouse_http_response_bytes_total Bytes of response bodies sent.\n"
         "# TYPE lighthouse_http_response_bytes_total counter\n"
         "lighthouse_http_response_bytes_total " + std::to_string(bytes_sent_.load()) + "\n";
  return out;
}

}  // namespace lighthouse::serve
