#include "monitor/health_policy.h"

#include <algorithm>
#include <nlohmann/json.hpp>

namespace lighthouse {

namespace {

constexpr std::string_view kStateNames[] = {"healthy", "warning", "degraded", "emergency"};
constexpr std::string_view kPriorityNames[] = {"low", "normal", "high", "critical"};

// An enum whose values are 0..N-1, named by `names`.
template <typename E, std::size_t N>
std::string_view name_of(const std::string_view (&names)[N], E value) noexcept {
  const auto i = static_cast<std::size_t>(value);
  return i < N ? names[i] : "unknown";
}

template <typename E, std::size_t N>
std::optional<E> parse_name(const std::string_view (&names)[N], std::string_view name) noexcept {
  for (std::size_t i = 0; i < N; ++i) {
    if (names[i] == name) return static_cast<E>(i);
  }
  return std::nullopt;
}

}  // namespace

std::string_view to_string(HealthState state) noexcept { return name_of(kStateNames, state); }

std::optional<HealthState> parse_health_state(std::string_view name) noexcept {
  return parse_name<HealthState>(kStateNames, name);
}

std::string_view to_string(Priority priority) noexcept { return name_of(kPriorityNames, priority); }

std::optional<Priority> parse_priority(std::string_view name) noexcept {
  return parse_name<Priority>(kPriorityNames, name);
}

}  // namespace lighthouse

namespace lighthouse::monitor {

namespace {

using Json = nlohmann::ordered_json;

std::string percent(double fraction) { return std::to_string(fraction * 100.0).substr(0, 5) + " %"; }

void raise_to(Proposal& p, HealthState state, const std::string& cause) {
  p.state = std::max(p.state, state);
  if (!p.reason.empty()) p.reason += "; ";
  p.reason += cause;
}

}  // namespace

Proposal propose(const HealthInputs& in, const HealthOptions& o) {
  Proposal p;
  if (!in.failure.empty()) {
    raise_to(p, HealthState::emergency, "the store failed: " + in.failure);
    p.immediate = true;
  }
  if (!in.corruption.empty()) raise_to(p, HealthState::degraded, "corruption met: " + in.corruption);
  if (in.sla) {
    p.figures["append_p99_seconds"] = in.append.p99;
    p.figures["append_count"] = static_cast<double>(in.append.count);
    const bool judged = in.append.count >= in.min_samples;
    if (judged && in.append.p99 > o.degraded_latency_factor * in.append_target_seconds) {
      raise_to(p, HealthState::degraded,
               "append p99 " + std::to_string(in.append.p99 * 1000) + " ms is over " +
                   std::to_string(o.degraded_latency_factor) + " x the target " +
                   std::to_string(in.append_target_seconds * 1000) + " ms");
    } else if (judged && (in.latency_breach || in.append.p99 > in.append_target_seconds)) {
      raise_to(p, HealthState::warning,
               "append p99 " + std::to_string(in.append.p99 * 1000) + " ms is over the target " +
                   std::to_string(in.append_target_seconds * 1000) + " ms");
    }
    if (in.backlog_breach) raise_to(p, HealthState::degraded, in.backlog_detail);
  }
  if (in.map_usage) {
    const double u = *in.map_usage;
    p.figures["map_usage"] = u;
    const std::string what = "map usage " + percent(u) + " of Options::max_map_size";
    if (u >= o.map_usage_emergency) raise_to(p, HealthState::emergency, what);
    else if (u >= o.map_usage_degraded) raise_to(p, HealthState::degraded, what);
    else if (u >= o.map_usage_warning) raise_to(p, HealthState::warning, what);
  }
  if (in.disk_free) {
    const double f = *in.disk_free;
    p.figures["disk_free"] = f;
    p.figures["disk_free_bytes"] = static_cast<double>(in.disk_free_bytes);
    const std::string what = "free disk space " + percent(f) + " (" + std::to_string(in.disk_free_bytes) +
                             " bytes)";
    if (f <= o.disk_free_emergency) raise_to(p, HealthState::emergency, what);
    else if (f <= o.disk_free_degraded) raise_to(p, HealthState::degraded, what);
    else if (f <= o.disk_free_warning) raise_to(p, HealthState::warning, what);
  }
  if (in.replication_lag_seconds) {
    const double lag = *in.replication_lag_seconds;
    p.figures["replication_lag_seconds"] = lag;
    p.figures["replication_lag_events"] = static_cast<double>(in.replication_lag_events);
    const std::string what = "replication to stream '" + in.replication_stream + "' lags " +
                             std::to_string(in.replication_lag_events) + " events, the oldest unacknowledged " +
                             std::to_string(lag).substr(0, 6) + " s old";
    if (lag >= o.replication_lag_degraded_seconds) raise_to(p, HealthState::degraded, what);
    else if (lag >= o.replication_lag_warning_seconds) raise_to(p, HealthState::warning, what);
  }
  return p;
}

Hysteresis::Hysteresis(std::uint32_t enter_after, std::uint32_t leave_after)
    : enter_after_(std::max<std::uint32_t>(1, enter_after)),
      leave_after_(std::max<std::uint32_t>(1, leave_after)) {}

void Hysteresis::reset(HealthState level) noexcept {
  level_ = level;
  up_ = down_ = 0;
}

HealthState Hysteresis::feed(HealthState proposed, bool immediate) {
  if (proposed > level_) {
    down_ = 0;
    up_min_ = up_ == 0 ? proposed : std::min(up_min_, proposed);
    if (immediate) up_min_ = proposed;
    if (immediate || ++up_ >= enter_after_) reset(up_min_);
  } else if (proposed < level_) {
    up_ = 0;
    down_max_ = down_ == 0 ? proposed : std::max(down_max_, proposed);
    if (++down_ >= leave_after_) reset(down_max_);
  } else {
    up_ = down_ = 0;
  }
  return level_;
}

std::string encode_health(const HealthRecord& r) {
  Json j;
  j["state"] = std::string(to_string(r.state));
  j["reason"] = r.reason;
  j["since_ns"] = r.since_ns;
  j["manual"] = r.manual;
  j["failure"] = r.failure;
  j["pid"] = r.pid;
  // Reasons quote OS and corruption messages: never throw on bad UTF-8.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::optional<HealthRecord> decode_health(std::string_view bytes) {
  Json j = Json::parse(bytes, nullptr, false);
  if (!j.is_object()) return std::nullopt;
  HealthRecord r;
  try {
    auto state = parse_health_state(j.at("state").get<std::string>());
    if (!state) return std::nullopt;
    r.state = *state;
    r.reason = j.at("reason").get<std::string>();
    r.since_ns = j.at("since_ns").get<std::uint64_t>();
    r.manual = j.at("manual").get<bool>();
    r.failure = j.value("failure", false);
    r.pid = j.at("pid").get<std::int64_t>();
  } catch (const Json::exception&) {
    return std::nullopt;
  }
  return r;
}

std::string transition_json(const HealthTransition& t, std::int64_t pid) {
  Json j;
  j["from"] = std::string(to_string(t.from));
  j["to"] = std::string(to_string(t.to));
  j["reason"] = t.reason;
  j["manual"] = t.manual;
  j["pid"] = pid;
  j["figures"] = Json::object();
  for (const auto& [name, value] : t.figures) j["figures"][name] = value;
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

}  // namespace lighthouse::monitor
