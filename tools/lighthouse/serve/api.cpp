#include "serve/api.h"

#include <chrono>
#include <optional>

#include "json_event.h"
#include "serve/admin.h"
#include "serve/parameters.h"
#include "serve/subscriptions.h"
#include "lighthouse/error.h"
#include "lighthouse/time.h"
#include "output.h"
#include "parse.h"

namespace lighthouse::serve {
namespace {

using tool::Json;

// One piece of a streamed result: flushed to the client when it is this big.
constexpr std::size_t kChunkBytes = 64 * 1024;

[[noreturn]] void invalid(const std::string& message) { throw Error(ErrorCode::invalid_argument, message); }

std::uint64_t parse_number(const std::string& name, const std::string& text) {
  return tool::parse_decimal("parameter '" + name + "' =", text);
}

// NDJSON: one event per line in the `lighthouse get` form, then a last line
// {"end": {...}} saying how many were sent and where to continue. One event
// is read into again and again (EventCursor::next(RecordedEvent&)): at the
// end it is still the last one sent, which `end` continues from.
Response event_stream(std::shared_ptr<EventCursor> cursor, std::function<Json(const RecordedEvent*, std::uint64_t)> end) {
  struct State {
    std::shared_ptr<EventCursor> cursor;
    RecordedEvent event;
    std::uint64_t sent = 0;
    bool done = false;
  };
  auto state = std::make_shared<State>();
  state->cursor = std::move(cursor);
  Response r;
  r.content_type = "application/x-ndjson";
  r.stream = [state, end = std::move(end)](std::string& chunk) {
    if (state->done) return false;
    try {
      while (chunk.size() < kChunkBytes) {
        if (!state->cursor->next(state->event)) {
          Json last;
          last["end"] = end(state->sent != 0 ? &state->event : nullptr, state->sent);
          chunk += tool::dump(last) + "\n";
          state->done = true;
          return true;
        }
        chunk += tool::recorded_event_json(state->event);
        chunk += '\n';
        ++state->sent;
      }
    } catch (const Error& error) {
      // The status is sent already: the error is the stream's last line.
      Json last;
      last["error"] = std::string(to_string(error.code()));
      last["message"] = error.what();
      chunk += tool::dump(last) + "\n";
      state->done = true;
    }
    return true;
  };
  return r;
}

Json appended(const AppendResult& result) {
  Json body;
  body["events"] = Json::array();
  for (const AppendedEvent& e : result.events) body["events"].push_back(tool::appended_event(e));
  body["replayed"] = result.replayed;
  return body;
}

// If-Match: a version number (quoted or not), `*` (the stream exists), or
// one of the names the body's expected_version takes.
ExpectedVersion parse_if_match(std::string text) {
  if (text.size() >= 2 && text.front() == '"' && text.back() == '"') text = text.substr(1, text.size() - 2);
  if (text == "*" || text == "stream_exists") return ExpectedVersion::stream_exists();
  if (text == "any") return ExpectedVersion::any();
  if (text == "no_stream") return ExpectedVersion::no_stream();
  try {
    return ExpectedVersion::exact(parse_number("If-Match", text));
  } catch (const Error&) {
    invalid("If-Match '" + shown(text) + "' is not a version, \"*\", any, no_stream or stream_exists");
  }
}

// The body of an append: one event object or an array of them, merged into
// one atomic batch (at most one expectation per aggregate).
Batch parse_append_body(const Request& r, const std::optional<std::string>& aggregate) {
  if (r.body.empty()) invalid("the request has no body: send an event object or an array of them");
  const Json body = tool::parse_json_text(r.body, true);
  std::vector<const Json*> objects;
  if (body.is_array()) {
    if (body.empty()) invalid("an empty array of events");
    for (const Json& e : body) objects.push_back(&e);
  } else {
    objects.push_back(&body);
  }
  Batch batch;
  const auto key = header(r, "idempotency-key");
  for (std::size_t i = 0; i < objects.size(); ++i) {
    Batch one;
    try {
      Json object = *objects[i];
      if (aggregate && object.is_object()) {
        if (auto it = object.find("aggregate"); it != object.end() && !(it->is_string() && *it == *aggregate)) {
          invalid("the event's aggregate differs from the stream's '" + shown(*aggregate) + "'");
        }
        object["aggregate"] = *aggregate;
      }
      one = tool::parse_event_object(object);
    } catch (Error& error) {
      if (objects.size() > 1) throw Error(error.code(), "event " + std::to_string(i) + ": " + error.what()).with_index(i);
      throw;
    }
    EventData& e = one.events.front();
    if (key && !e.idempotency_key) e.idempotency_key = objects.size() == 1 ? *key : *key + ":" + std::to_string(i);
    for (const auto& x : one.expectations) {
      for (const auto& y : batch.expectations) {
        if (y.aggregate == x.aggregate && !(y.expected == x.expected)) {
          invalid("two expected versions for aggregate '" + shown(x.aggregate) + "' in one request");
        }
      }
      batch.expectations.push_back(x);
    }
    batch.events.push_back(std::move(e));
  }
  if (auto if_match = header(r, "if-match")) {
    if (!aggregate) invalid("If-Match is for POST /streams/{aggregate}; give expected_version per event here");
    if (!batch.expectations.empty()) invalid("the expected version is given twice: If-Match and expected_version");
    const ExpectedVersion expected = parse_if_match(*if_match);
    if (expected.kind() != ExpectedVersion::Kind::any) batch.expectations.push_back({*aggregate, expected});
  }
  // Duplicates of one expectation collapse.
  std::vector<AggregateExpectation> unique;
  for (const auto& x : batch.expectations) {
    bool seen = false;
    for (const auto& u : unique) seen = seen || u.aggregate == x.aggregate;
    if (!seen) unique.push_back(x);
  }
  batch.expectations = std::move(unique);
  return batch;
}

Query parse_query(const Request& r) {
  const Parameters p(r, {"type", "type_prefix", "aggregate", "after", "since", "until", "limit", "direction"});
  Query q;
  q.types = p.all("type");
  if (auto v = p.get("type_prefix")) q.type_prefix = *v;
  if (auto v = p.get("aggregate")) q.aggregate = *v;
  if (auto v = p.get("after")) q.after_id = EventId::parse(*v);
  if (auto v = p.get("since")) q.since_ns = parse_time(*v);
  if (auto v = p.get("until")) q.until_ns = parse_time(*v);
  if (auto v = p.get("limit")) q.limit = parse_number("limit", *v);
  if (auto v = p.get("direction")) {
    if (*v == "forward") {
      q.direction = Direction::forward;
    } else if (*v == "reverse") {
      q.direction = Direction::reverse;
    } else {
      invalid("parameter 'direction' = '" + shown(*v) + "' is not forward or reverse");
    }
  }
  return q;
}

}  // namespace

Api::Api(Store& store, ApiOptions options, ServerMetrics& metrics)
    : store_(store), options_(options), metrics_(metrics), admin_(std::make_unique<Admin>(store)) {}

Api::~Api() = default;

tracing::Span Api::request_span(const Request& request, std::string_view route) const {
  if (!options_.tracing.sink) return {};
  std::optional<tracing::SpanContext> parent;
  if (auto tp = request.headers.find("traceparent"); tp != request.headers.end()) {
    auto ts = request.headers.find("tracestate");
    parent = tracing::SpanContext::parse(tp->second, ts == request.headers.end() ? "" : ts->second);
  }
  tracing::Span span(options_.tracing, request.method + " " + std::string(route), tracing::SpanKind::server,
                     parent ? &*parent : tracing::Span::root);
  span.set("http.request.method", request.method);
  span.set("url.path", request.path);
  if (!route.empty()) span.set("http.route", std::string(route));  // else known once routed
  span.set("url.scheme", std::string(options_.tls ? "https" : "http"));
  if (auto ua = request.headers.find("user-agent"); ua != request.headers.end()) span.set("user_agent.original", ua->second);
  return span;
}

namespace {

// The server span's end: the status, and the traceparent the response carries.
void end_request_span(tracing::Span& span, const std::string& route, Response& response) {
  if (!span.context().valid()) return;
  response.headers.emplace_back("traceparent", span.context().traceparent());
  span.set("http.route", route);
  span.set("http.response.status_code", static_cast<std::int64_t>(response.status));
  if (response.status >= 500) span.set_error(std::to_string(response.status), "HTTP " + std::to_string(response.status));
  span.end();
}

}  // namespace

Response Api::handle(const Request& request) noexcept {
  const auto start = std::chrono::steady_clock::now();
  std::string route_name = "unknown";
  Response response;
  tracing::Span span = request_span(request, "");
  try {
    // The store's spans of this request are the server span's children.
    const tracing::ContextScope scope(span.context());
    response = route(request, route_name);
  } catch (const Error& error) {
    response = store_error(error);
  } catch (const std::exception& error) {
    response = error_response(500, "internal", std::string("internal error: ") + error.what());
  }
  span.set_name(request.method + " " + route_name);
  if (response.deferred) {
    // Counted when it completes.
    auto traced = std::make_shared<tracing::Span>(std::move(span));
    response.deferred = [this, start, route_name, traced, deferred = std::move(response.deferred)](Response::Completion done) {
      deferred([this, start, route_name, traced, done = std::move(done)](Response r) {
        metrics_.request(route_name, r.status,
                         std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
        end_request_span(*traced, route_name, r);
        done(std::move(r));
      });
    };
    return response;
  }
  metrics_.request(route_name, response.status,
                   std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  end_request_span(span, route_name, response);
  return response;
}

namespace {

Response health(Store& store, bool read_only) {
  const HealthStatus h = store.health();
  Json body = tool::health_json(h);
  const bool accepts = h.state == HealthState::healthy || h.state == HealthState::warning;
  body["accepts_appends"] = accepts && !read_only;
  return json_response(accepts ? 200 : 503, body);
}


Response query_events(Store& store, const Request& r) {
  auto cursor = std::make_shared<EventCursor>(store.query(parse_query(r)));
  return event_stream(cursor, [](const RecordedEvent* last, std::uint64_t count) {
    Json end;
    end["count"] = count;
    end["after"] = last ? Json(last->id.to_string()) : Json(nullptr);
    return end;
  });
}

Response read_stream(Store& store, const Request& r, const std::string& aggregate) {
  const Parameters p(r, {"from_version", "to_version"});
  const std::uint64_t from = p.get("from_version") ? parse_number("from_version", *p.get("from_version")) : 1;
  const std::uint64_t to = p.get("to_version") ? parse_number("to_version", *p.get("to_version")) : 0;
  if (from == 0) invalid("parameter 'from_version' must be 1 or more");
  auto cursor = std::make_shared<EventCursor>(store.read_aggregate(aggregate, from, to));
  return event_stream(cursor, [from](const RecordedEvent* last, std::uint64_t count) {
    Json end;
    end["count"] = count;
    end["next_version"] = last ? last->aggregate_version + 1 : from;
    return end;
  });
}

// A route matched: its name in the metrics, the methods it takes, the
// scope a token needs, and what answers it.
struct Matched {
  std::string name;
  const char* allow = "GET";
  Scope scope = Scope::read;
  std::function<Response()> run;
  bool writes = false;  // refused by a read-only server
};

// Whether `method` is in the comma-separated `allow` list.
bool allows(std::string_view allow, const std::string& method) {
  while (!allow.empty()) {
    const auto comma = allow.find(',');
    std::string_view one = allow.substr(0, comma);
    while (!one.empty() && one.front() == ' ') one.remove_prefix(1);
    if (one == method) return true;
    if (comma == std::string_view::npos) break;
    allow.remove_prefix(comma + 1);
  }
  return false;
}

}  // namespace

// Queued for the committer and answered once durable: the request's thread
// goes on serving others meanwhile. What the store refuses at once (invalid,
// limits, emergency) is thrown here as from a synchronous append.
Response Api::append(const Request& r, const std::optional<std::string>& aggregate) {
  Parameters(r, {});
  auto future = std::make_shared<std::future<AppendResult>>(store_.append_batch_async(parse_append_body(r, aggregate)));
  Response pending;
  pending.deferred = [this, future](Response::Completion complete) {
    waiter_.add(std::move(*future), [complete = std::move(complete)](std::future<AppendResult>& done) {
      Response response;
      try {
        const AppendResult result = done.get();
        response = json_response(result.replayed ? 200 : 201, appended(result));
      } catch (const Error& error) {
        response = store_error(error);
      } catch (const std::exception& error) {
        response = error_response(500, "internal", std::string("internal error: ") + error.what());
      }
      complete(std::move(response));
    });
  };
  return pending;
}

Response Api::route(const Request& r, std::string& name) {
  const std::string& path = r.path;
  const bool post = r.method == "POST";
  Matched m;
  if (path == "/health") {
    m = {"/health", "GET", Scope::read, [&] { return health(store_, options_.read_only); }};
  } else if (path == "/metrics") {
    m = {"/metrics", "GET", Scope::read, [&] {
           Response text;
           text.content_type = "text/plain; version=0.0.4; charset=utf-8";
           text.body = store_.metrics_text() + metrics_.text();
           if (options_.hub) text.body += options_.hub->metrics_text();
           if (options_.extra_metrics) text.body += options_.extra_metrics();
           return text;
         }};
  } else if (path == "/stats") {
    m = {"/stats", "GET", Scope::read, [&] {
           Response stats;
           stats.body = tool::stats_json(store_.stats()) + "\n";
           return stats;
         }};
  } else if (path.rfind("/events/", 0) == 0 && path.size() > 8) {
    m = {"/events/{id}", "GET", Scope::read, [&] {
           Parameters(r, {});
           Response event;
           event.body = tool::recorded_event_json(store_.get(EventId::parse(path.substr(8)))) + "\n";
           return event;
         }};
  } else if (path == "/events") {
    m = {"/events", "GET, POST", post ? Scope::append : Scope::read,
         [&] { return post ? append(r, std::nullopt) : query_events(store_, r); }, post};
  } else if (path.rfind("/streams/", 0) == 0 && path.size() > 9) {
    m = {"/streams/{aggregate}", "GET, POST", post ? Scope::append : Scope::read,
         [&] { return post ? append(r, path.substr(9)) : read_stream(store_, r, path.substr(9)); }, post};
  } else if (path == "/admin/emergency") {
    m = {"/admin/emergency", "POST, DELETE", Scope::admin,
         [&] { return post ? admin_->enter_emergency(r) : admin_->clear_emergency(); }, true};
  } else if (path == "/admin/verify") {
    m = {"/admin/verify", "POST", Scope::admin, [&] { return admin_->start_verify(); }};
  } else if (path.rfind("/admin/jobs/", 0) == 0 && path.size() > 12) {
    m = {"/admin/jobs/{id}", "GET", Scope::admin, [&] { return admin_->job(path.substr(12)); }};
  } else if (path == "/session") {
    m = {"/session", "POST, DELETE", Scope::read, [&] { return post ? open_session(r) : end_session(r); }};
  } else if (path == "/subscribe") {
    m = {"/subscribe", "GET", Scope::read, [] {
           return error_response(400, "invalid_argument",
                                 "/subscribe is a WebSocket (Upgrade: websocket) or an event stream "
                                 "(Accept: text/event-stream)");
         }};
  } else if (path.rfind("/consumers/", 0) == 0 && path.size() > 11) {
    std::string rest = path.substr(11);
    const bool checkpoint = rest.size() > 11 && rest.compare(rest.size() - 11, 11, "/checkpoint") == 0;
    if (checkpoint) rest.resize(rest.size() - 11);
    m = {checkpoint ? "/consumers/{name}/checkpoint" : "/consumers/{name}", checkpoint ? "POST" : "GET", Scope::read,
         [this, &r, rest, checkpoint] { return consumer(r, rest, checkpoint); }, checkpoint};
  } else {
    return error_response(404, "not_found", "no route " + shown(path));
  }
  name = m.name;
  if (!allows(m.allow, r.method)) {
    Response e = error_response(405, "method_not_allowed", shown(r.method, 16) + " is not allowed on " + shown(path));
    e.headers.emplace_back("Allow", m.allow);
    return e;
  }
  // A session's own route needs the token itself: a cookie cannot open one.
  if (m.name == "/session" && post && options_.tokens && !header(r, "authorization")) {
    return error_response(401, "unauthorized", "POST /session needs the bearer token (Authorization: Bearer ...)");
  }
  if (auto refused = authorize(r, m.scope)) return std::move(*refused);
  if (m.writes && options_.read_only) {
    return error_response(403, "read_only", "this server is read-only (lighthouse serve --read-only)");
  }
  return m.run();
}

}  // namespace lighthouse::serve
