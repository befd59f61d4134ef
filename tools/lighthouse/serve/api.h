// The HTTP API of `lighthouse serve` (docs/http-api.md), without the HTTP:
// a request as the server parsed it in, a response for it to write out.
// The routes use the public API of the store and the tool's JSON forms of
// events (json_event.h), so that what `lighthouse get` prints is what
// `GET /events/{id}` returns. Nothing here knows of sockets or Beast.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "lighthouse/error.h"
#include "lighthouse/store.h"
#include "lighthouse/tracing.h"
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
  // A response that is not ready yet (an append waiting for its group
  // commit): the server calls it with a function to call, from another
  // thread, with the response once it is. No server thread waits meanwhile.
  using Completion = std::function<void(Response)>;
  std::function<void(Completion)> deferred;
};

// Waits for asynchronous appends on one thread of its own, in the order they
// were queued (the committer completes them in that order, a group at a
// time), and calls each one's completion.
class AppendWaiter {
 public:
  AppendWaiter();
  ~AppendWaiter();  // completes what is queued first
  AppendWaiter(const AppendWaiter&) = delete;
  AppendWaiter& operator=(const AppendWaiter&) = delete;
  void add(std::future<AppendResult> future, std::function<void(std::future<AppendResult>&)> done);
  // Returns once every append queued so far is completed.
  void drain();

 private:
  struct Pending {
    std::future<AppendResult> future;
    std::function<void(std::future<AppendResult>&)> done;
  };
  void run();
  std::mutex mutex_;
  std::condition_variable ready_;
  std::deque<Pending> queue_;
  bool busy_ = false;
  std::condition_variable idle_;
  bool stopping_ = false;
  std::thread thread_;
};

class SubscriptionHub;
struct SubscriptionRequest;

struct ApiOptions {
  bool read_only = false;          // appends and admin routes refused (403)
  const Tokens* tokens = nullptr;  // nothing: no authentication (loopback only)
  SubscriptionHub* hub = nullptr;  // subscriptions and consumers' checkpoints
  // Origins (scheme://host[:port]) allowed besides the server's own, for
  // WebSocket upgrades, event streams and cookie-authenticated requests.
  std::vector<std::string> allowed_origins;
  bool tls = false;  // session cookies are marked Secure
  // Request spans (the parents of the store's), from a request's traceparent.
  tracing::TracingOptions tracing;
  std::function<std::string()> extra_metrics;  // appended to /metrics (the exporter's counters)
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
  // A server span for `request` on `route`: the child of the request's
  // traceparent, or a root. Empty without a sink.
  tracing::Span request_span(const Request& request, std::string_view route) const;

  // Authentication, for the routes the server handles itself (/subscribe):
  // nothing when the request may go on with `scope`, else its refusal
  // (401, 403; 403 also for an Origin that is not allowed).
  std::optional<Response> authorize(const Request& request, Scope scope);
  // Whether the request carries credentials (a bearer token or a session
  // cookie), or the server needs none.
  bool has_credentials(const Request& request) const;
  // The scopes of a token sent in a WebSocket's first message; all of them
  // on a server without tokens.
  std::optional<std::uint8_t> token_scopes(std::string_view token) const;
  // Whether the request's Origin, if it has one, is the server's own or allowed.
  bool origin_allowed(const Request& request) const;
  // GET /subscribe with Accept: text/event-stream: the query's fields and
  // Last-Event-ID. Errors: invalid_argument.
  static SubscriptionRequest subscription_from_query(const Request& request);
  // Returns once every append in flight is completed (the server calls it
  // before its io_context goes: completions are posted to it).
  void drain_appends() { waiter_.drain(); }

 private:
  Response route(const Request& request, std::string& route_name);
  Response open_session(const Request& request);
  Response end_session(const Request& request);
  Response consumer(const Request& request, const std::string& name, bool checkpoint);
  Response append(const Request& request, const std::optional<std::string>& aggregate);
  Store& store_;
  ApiOptions options_;
  ServerMetrics& metrics_;
  std::unique_ptr<Admin> admin_;
  Sessions sessions_;
  AppendWaiter waiter_;
};

// The responses of the API (responses.cpp): errors are {"error": code,
// "message": text, ...}; a store error gets its status and fields
// (docs/http-api.md, "Errors").
Response error_response(int status, const std::string& code, const std::string& message);
Response json_response(int status, const tool::Json& body);
Response store_error(const Error& error);

}  // namespace lighthouse::serve
