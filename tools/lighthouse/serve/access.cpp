// Who may do what on `lighthouse serve` (bearer tokens, browser sessions,
// Origin), and the routes of subscriptions that are plain HTTP: the event
// stream's query, consumers' checkpoints (docs/http-api.md).
#include <algorithm>
#include <cctype>

#include "json_event.h"
#include "lighthouse/time.h"
#include "output.h"
#include "serve/api.h"
#include "serve/parameters.h"
#include "serve/subscriptions.h"

namespace lighthouse::serve {
namespace {

using tool::Json;

constexpr const char* kCookie = "lighthouse_session";

const char* scope_name(Scope scope) {
  return scope == Scope::read ? "read" : scope == Scope::append ? "append" : "admin";
}

// The value of the session cookie, if the request has one.
std::optional<std::string> session_cookie(const Request& r) {
  const auto cookies = header(r, "cookie");
  if (!cookies) return std::nullopt;
  std::string_view rest = *cookies;
  while (!rest.empty()) {
    const auto semi = rest.find(';');
    std::string_view one = rest.substr(0, semi);
    rest.remove_prefix(semi == std::string_view::npos ? rest.size() : semi + 1);
    while (!one.empty() && one.front() == ' ') one.remove_prefix(1);
    const auto eq = one.find('=');
    if (eq != std::string_view::npos && one.substr(0, eq) == kCookie) return std::string(one.substr(eq + 1));
  }
  return std::nullopt;
}

Json scope_list(std::uint8_t scopes) {
  Json list = Json::array();
  for (Scope s : {Scope::read, Scope::append, Scope::admin}) {
    if (scopes & static_cast<std::uint8_t>(s)) list.push_back(scope_name(s));
  }
  return list;
}

}  // namespace

bool Api::origin_allowed(const Request& r) const {
  const auto origin = header(r, "origin");
  if (!origin) return true;  // not a browser's request
  const auto host = header(r, "host");
  if (host && (*origin == "http://" + *host || *origin == "https://" + *host)) return true;
  return std::find(options_.allowed_origins.begin(), options_.allowed_origins.end(), *origin) !=
         options_.allowed_origins.end();
}

bool Api::has_credentials(const Request& r) const {
  return options_.tokens == nullptr || header(r, "authorization") || session_cookie(r);
}

std::optional<std::uint8_t> Api::token_scopes(std::string_view token) const {
  if (options_.tokens == nullptr) return 7;
  return options_.tokens->scopes_of(token);
}

std::optional<Response> Api::authorize(const Request& r, Scope scope) {
  if (options_.tokens == nullptr) return std::nullopt;
  std::optional<std::uint8_t> scopes;
  const auto auth = header(r, "authorization");
  const auto cookie = session_cookie(r);
  if (auth && auth->rfind("Bearer ", 0) == 0) {
    scopes = options_.tokens->scopes_of(std::string_view(*auth).substr(7));
    if (!scopes) {
      Response e = error_response(401, "unauthorized", "the bearer token is not one this server knows");
      e.headers.emplace_back("WWW-Authenticate", "Bearer error=\"invalid_token\"");
      return e;
    }
  } else if (!auth && cookie) {
    // A cookie goes with every request of the browser, whatever page made
    // it: only the server's own origin (or an allowed one) may use it.
    if (!origin_allowed(r)) return error_response(403, "forbidden", "the request's Origin is not allowed");
    scopes = sessions_.scopes_of(*cookie);
    if (!scopes) return error_response(401, "unauthorized", "the session has ended or expired: POST /session again");
  } else {
    Response e = error_response(401, "unauthorized", "this server needs a bearer token (Authorization: Bearer ...)");
    e.headers.emplace_back("WWW-Authenticate", "Bearer");
    return e;
  }
  if ((*scopes & static_cast<std::uint8_t>(scope)) == 0) {
    return error_response(403, "forbidden", std::string("the token has no '") + scope_name(scope) + "' scope");
  }
  return std::nullopt;
}

Response Api::open_session(const Request& r) {
  Parameters(r, {});
  if (options_.tokens == nullptr) {
    return error_response(400, "invalid_argument", "this server has no tokens (--token-file): it needs no session");
  }
  const auto auth = header(r, "authorization");
  const std::uint8_t scopes = *options_.tokens->scopes_of(std::string_view(*auth).substr(7));
  const std::string id = sessions_.open(scopes);
  Json body;
  body["scopes"] = scope_list(scopes);
  body["expires_in"] = sessions_.lifetime().count();
  Response res = json_response(201, body);
  res.headers.emplace_back("Set-Cookie", std::string(kCookie) + "=" + id + "; Path=/; HttpOnly; SameSite=Strict; Max-Age=" +
                                             std::to_string(sessions_.lifetime().count()) +
                                             (options_.tls ? "; Secure" : ""));
  res.headers.emplace_back("Cache-Control", "no-store");
  return res;
}

Response Api::end_session(const Request& r) {
  Parameters(r, {});
  if (auto cookie = session_cookie(r)) sessions_.end(*cookie);
  Response res;
  res.status = 204;
  res.headers.emplace_back("Set-Cookie", std::string(kCookie) + "=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
  return res;
}

Response Api::consumer(const Request& r, const std::string& name, bool checkpoint) {
  Parameters(r, {});
  Json body;
  body["consumer"] = name;
  if (!checkpoint) {
    const auto position = store_.checkpoint(name);
    body["checkpoint"] = position ? Json(position->to_string()) : Json(nullptr);
    return json_response(200, body);
  }
  const Json request = tool::parse_json_text(r.body, true);
  if (!request.is_object() || request.size() != 1 || !request.contains("position") || !request["position"].is_string()) {
    throw Error(ErrorCode::invalid_argument, "the body is {\"position\": ID}: the last event the consumer handled");
  }
  const EventId position = EventId::parse(request["position"].get_ref<const std::string&>());
  if (options_.hub) {
    options_.hub->acknowledge(name, position);
  } else {
    store_.set_checkpoint(name, position);
  }
  body["checkpoint"] = position.to_string();
  return json_response(200, body);
}

SubscriptionRequest Api::subscription_from_query(const Request& r) {
  const Parameters p(r, {"type", "type_prefix", "aggregate", "start", "after", "since", "consumer"});
  SubscriptionRequest s;
  s.types = p.all("type");
  if (auto v = p.get("type_prefix")) s.type_prefix = *v;
  if (auto v = p.get("aggregate")) s.aggregate = *v;
  if (auto v = p.get("consumer")) {
    if (v->empty()) throw Error(ErrorCode::invalid_argument, "parameter 'consumer' is empty");
    s.consumer = *v;
  }
  int starts = 0;
  if (auto v = p.get("start")) {
    ++starts;
    if (*v == "end") {
      s.start = SubscriptionRequest::Start::end;
    } else if (*v != "beginning") {
      throw Error(ErrorCode::invalid_argument, "parameter 'start' = '" + shown(*v) + "' is not beginning or end");
    }
  }
  if (auto v = p.get("after")) {
    ++starts;
    s.start = SubscriptionRequest::Start::after;
    s.after = EventId::parse(*v);
  }
  if (auto v = p.get("since")) {
    ++starts;
    s.start = SubscriptionRequest::Start::time;
    s.time_ns = parse_time(*v);
  }
  if (starts > 1) throw Error(ErrorCode::invalid_argument, "give one of 'start', 'after' and 'since'");
  // An EventSource that reconnects sends the last ID it received.
  if (auto last = header(r, "last-event-id"); last && !last->empty()) {
    s.start = SubscriptionRequest::Start::after;
    s.after = EventId::parse(*last);
  }
  return s;
}

}  // namespace lighthouse::serve
