// The HTTP API of `lighthouse serve` (docs/http-api.md), without the HTTP:
// a request as the server parsed it in, a response for it to write out.
// The routes use the public API of the store and the tool's JSON forms of
// events (json_event.h), so that what `lighthouse get` prints is what
// `GET /events/{id}` returns. Nothing here knows of sockets or Beast.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "lighthouse/error.h"
#include "lighthouse/store.h"
#include "output.h"
#include "serve/tokens.h"

namespace lighthouse::serve {

struct Request {
  std::string method;                                       // as sent: "GET", "POST", ...
  std::string path;                                         // percent-decoded, without the query
  std::vector<std::pair<std::string, std::string>> query;  // percent-decoded, in order
  std::map<std::string, std::string> headers;              // lower-case names
  std::string body;
};

struct Response {
  int status = 200;
  std::string content_type = "application/json";
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // A body streamed in chunks (NDJSON results): each call appends the next
  // piece to `chunk` and returns false once the body is complete. Memory
  // stays bounded by one piece whatever the result's size.
  std::function<bool(std::string& chunk)> stream;
};

struct ApiOptions {
  bool read_only = false;          // appends and admin routes refused (403)
  const Tokens* tokens = nullptr;  // nothing: no authentication (loopback only)
};

// What the server counts for /metrics beside the store's own metrics.
class ServerMetrics {
 public:
  // A request answered; `seconds` from its parse to its response (for a
  // streamed body: to the response's start), by route, in a histogram.
  void request(const std::string& route, int status, double seconds = -1);
  void response_bytes(std::uint64_t bytes) { bytes_sent_ += bytes; }
  void connection_opened() { ++connections_; }
  void connection_closed() { --connections_; }
  std::string text() const;

 private:
  mutable std::mutex mutex_;
  std::map<std::pair<std::string, int>, std::uint64_t> requests_;
  struct Latency {
    std::vector<std::uint64_t> buckets;  // cumulative counts are made when written
    double sum = 0;
    std::uint64_t count = 0;
  };
  std::map<std::string, Latency> latency_;
  std::atomic<std::uint64_t> bytes_sent_{0};
  std::atomic<std::int64_t> connections_{0};
};

class Admin;

class Api {
 public:
  Api(Store& store, ApiOptions options, ServerMetrics& metrics);
  ~Api();
  Api(const Api&) = delete;
  Api& operator=(const Api&) = delete;
  // Never throws: every failure is an error response.
  Response handle(const Request& request) noexcept;

 private:
  Response route(const Request& request, std::string& route_name);
  std::optional<Response> authorize(const Request& request, Scope scope) const;
  Store& store_;
  ApiOptions options_;
  ServerMetrics& metrics_;
  std::unique_ptr<Admin> admin_;
};

// The responses of the API (responses.cpp): errors are {"error": code,
// "message": text, ...}; a store error gets its status and fields
// (docs/http-api.md, "Errors").
Response error_response(int status, const std::string& code, const std::string& message);
Response json_response(int status, const tool::Json& body);
Response store_error(const Error& error);

}  // namespace lighthouse::serve
