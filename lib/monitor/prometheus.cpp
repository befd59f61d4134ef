#include "monitor/prometheus.h"

#include <nlohmann/json.hpp>
#include <sstream>

namespace lighthouse::monitor {
namespace {

using Json = nlohmann::ordered_json;

constexpr double kLatencyBounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
                                     0.025,  0.05,    0.1,    0.25,  0.5,    1,     2.5, 10};
constexpr double kGroupBounds[] = {1, 2, 4, 8, 16, 64, 256, 1024, 4096, 16384};

void histogram(std::ostringstream& out, const std::string& name, const std::string& help,
               const Histogram::Snapshot& s, const double* bounds, std::size_t n, double scale) {
  out << "# HELP " << name << ' ' << help << '\n' << "# TYPE " << name << " histogram\n";
  for (std::size_t i = 0; i < n; ++i) {
    out << name << "_bucket{le=\"" << bounds[i] << "\"} "
        << s.at_most(static_cast<std::uint64_t>(bounds[i] * scale)) << '\n';
  }
  out << name << "_bucket{le=\"+Inf\"} " << s.count << '\n';
  out << name << "_sum " << static_cast<double>(s.sum) / scale << '\n';
  out << name << "_count " << s.count << '\n';
}

void metric(std::ostringstream& out, const std::string& name, const char* type, const std::string& help,
            double value) {
  out << "# HELP " << name << ' ' << help << '\n'
      << "# TYPE " << name << ' ' << type << '\n'
      << name << ' ' << value << '\n';
}

Json snapshot_json(const Histogram::Snapshot& s) {
  Json buckets = Json::object();
  for (std::size_t i = 0; i < s.counts.size(); ++i) {
    if (s.counts[i] != 0) buckets[std::to_string(i)] = s.counts[i];
  }
  return {{"count", s.count}, {"sum", s.sum}, {"max", s.max}, {"buckets", buckets}};
}

void parse_snapshot(const Json& j, Histogram::Snapshot& s) {
  s.count = j.value("count", std::uint64_t{0});
  s.sum = j.value("sum", std::uint64_t{0});
  s.max = j.value("max", std::uint64_t{0});
  if (j.contains("buckets") && j["buckets"].is_object()) {
    for (const auto& [k, v] : j["buckets"].items()) {
      std::size_t i = std::stoul(k);
      if (i < s.counts.size() && v.is_number_unsigned()) s.counts[i] = v.get<std::uint64_t>();
    }
  }
}

Json summary_json(const LatencySummary& l) {
  return {{"count", l.count}, {"p50", l.p50}, {"p90", l.p90}, {"p99", l.p99}, {"p999", l.p999}, {"max", l.max}};
}

}  // namespace

std::string prometheus_text(const StoreStats& stats, const MeasuresSnapshot& m,
                            const std::map<std::string, std::uint64_t>& errors,
                            std::uint64_t readers_in_use, const HealthStatus& health) {
  std::ostringstream out;
  out.precision(10);
  histogram(out, "lighthouse_append_duration_seconds",
            "Append latency from the call to the durable acknowledgement.", m.append, kLatencyBounds,
            std::size(kLatencyBounds), 1e9);
  histogram(out, "lighthouse_append_queue_wait_seconds",
            "Time an append waited for the committer.", m.queue_wait, kLatencyBounds,
            std::size(kLatencyBounds), 1e9);
  histogram(out, "lighthouse_transaction_duration_seconds",
            "Time inside a write transaction before its commit.", m.transaction, kLatencyBounds,
            std::size(kLatencyBounds), 1e9);
  histogram(out, "lighthouse_commit_duration_seconds", "Time to commit a write transaction, syncs included.",
            m.commit, kLatencyBounds, std::size(kLatencyBounds), 1e9);
  histogram(out, "lighthouse_query_duration_seconds", "Time spent planning and reading a query.", m.query,
            kLatencyBounds, std::size(kLatencyBounds), 1e9);
  histogram(out, "lighthouse_commit_group_events", "Events committed together in one transaction.",
            m.group_events, kGroupBounds, std::size(kGroupBounds), 1);
  metric(out, "lighthouse_events_appended_total", "counter", "Events appended.", static_cast<double>(m.events));
  metric(out, "lighthouse_appended_bytes_total", "counter", "Content bytes appended.",
         static_cast<double>(m.bytes));
  metric(out, "lighthouse_transactions_total", "counter", "Write transactions committed.",
         static_cast<double>(m.transactions));
  metric(out, "lighthouse_queries_total", "counter", "Queries run.", static_cast<double>(m.queries));
  metric(out, "lighthouse_query_results_total", "counter", "Events returned by queries.",
         static_cast<double>(m.query_results));
  out << "# HELP lighthouse_errors_total Failed appends and queries by error code.\n"
      << "# TYPE lighthouse_errors_total counter\n";
  for (const auto& [code, n] : errors) out << "lighthouse_errors_total{code=\"" << code << "\"} " << n << '\n';
  metric(out, "lighthouse_map_size_bytes", "gauge", "Size of the LMDB memory map.",
         static_cast<double>(stats.map_size_bytes));
  metric(out, "lighthouse_map_used_bytes", "gauge", "Bytes of the map in use.",
         static_cast<double>(stats.map_used_bytes));
  metric(out, "lighthouse_readers_in_use", "gauge", "LMDB reader slots in use.",
         static_cast<double>(readers_in_use));
  metric(out, "lighthouse_last_sequence", "gauge", "Sequence of the last event.",
         static_cast<double>(stats.last_sequence));
  metric(out, "lighthouse_events", "gauge", "Events the store holds.", static_cast<double>(stats.event_count));
  metric(out, "lighthouse_append_backlog", "gauge", "Appends queued for the committer.",
         static_cast<double>(stats.append_backlog));
  out << "# HELP lighthouse_health_state The store's health state: 1 for the state in force, 0 for the others.\n"
      << "# TYPE lighthouse_health_state gauge\n";
  for (auto state : {HealthState::healthy, HealthState::warning, HealthState::degraded, HealthState::emergency}) {
    out << "lighthouse_health_state{state=\"" << to_string(state) << "\"} " << (health.state == state ? 1 : 0)
        << '\n';
  }
  metric(out, "lighthouse_health_manual_emergency", "gauge", "1 while an emergency entered by hand is in force.",
         health.manual ? 1 : 0);
  metric(out, "lighthouse_health_state_since_timestamp_seconds", "gauge",
         "When the state in force was entered (Unix time; 0: never changed).",
         static_cast<double>(health.since_ns) / 1e9);
  return out.str();
}

std::string measures_json(const SlaReport& report, const MeasuresSnapshot& m,
                          const std::map<std::string, std::uint64_t>& errors, std::uint64_t wall_ns) {
  Json windows = Json::array();
  for (const auto& w : report.windows) {
    windows.push_back({{"seconds", w.seconds},
                       {"append", summary_json(w.append)},
                       {"queue_wait", summary_json(w.queue_wait)},
                       {"transaction", summary_json(w.transaction)},
                       {"commit", summary_json(w.commit)},
                       {"query", summary_json(w.query)},
                       {"events", w.events},
                       {"bytes", w.bytes},
                       {"transactions", w.transactions},
                       {"events_per_second", w.events_per_second}});
  }
  Json breaches = Json::array();
  for (const auto& b : report.breaches) breaches.push_back({{"kind", b.kind}, {"detail", b.detail}});
  Json j;
  j["pid"] = report.pid;
  j["written_ns"] = wall_ns;
  j["targets"] = {{"append_p99_seconds", report.targets.append_p99_seconds},
                  {"capacity_events_per_second", report.targets.capacity_events_per_second}};
  j["windows"] = windows;
  j["backlog"] = report.backlog;
  j["breaches"] = breaches;
  j["histograms"] = {{"append", snapshot_json(m.append)},       {"queue_wait", snapshot_json(m.queue_wait)},
                     {"transaction", snapshot_json(m.transaction)}, {"commit", snapshot_json(m.commit)},
                     {"query", snapshot_json(m.query)},         {"group_events", snapshot_json(m.group_events)}};
  j["counters"] = {{"events", m.events},
                   {"bytes", m.bytes},
                   {"transactions", m.transactions},
                   {"queries", m.queries},
                   {"query_results", m.query_results}};
  j["errors"] = errors;
  return j.dump();
}

void parse_measures_json(const std::string& text, MeasuresSnapshot& m, std::map<std::string, std::uint64_t>& errors) {
  Json j = Json::parse(text, nullptr, false);
  if (!j.is_object()) return;
  if (j.contains("histograms") && j["histograms"].is_object()) {
    const Json& h = j["histograms"];
    std::pair<const char*, Histogram::Snapshot*> parts[] = {
        {"append", &m.append}, {"queue_wait", &m.queue_wait}, {"transaction", &m.transaction},
        {"commit", &m.commit}, {"query", &m.query},           {"group_events", &m.group_events}};
    for (auto& [name, s] : parts) {
      if (h.contains(name) && h[name].is_object()) parse_snapshot(h[name], *s);
    }
  }
  if (j.contains("counters") && j["counters"].is_object()) {
    const Json& c = j["counters"];
    m.events = c.value("events", std::uint64_t{0});
    m.bytes = c.value("bytes", std::uint64_t{0});
    m.transactions = c.value("transactions", std::uint64_t{0});
    m.queries = c.value("queries", std::uint64_t{0});
    m.query_results = c.value("query_results", std::uint64_t{0});
  }
  if (j.contains("errors") && j["errors"].is_object()) {
    for (const auto& [k, v] : j["errors"].items()) {
      if (v.is_number_unsigned()) errors[k] = v.get<std::uint64_t>();
    }
  }
}

}  // namespace lighthouse::monitor
