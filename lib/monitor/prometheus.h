// Prometheus text exposition (format 0.0.4) of a store's measures.
#pragma once

#include <map>
#include <string>

#include "lighthouse/store.h"
#include "monitor/sla_monitor.h"

namespace lighthouse::monitor {

// Gauges come from `stats`; histograms and counters from `measures`.
std::string prometheus_text(const StoreStats& stats, const MeasuresSnapshot& measures,
                            const std::map<std::string, std::uint64_t>& errors,
                            std::uint64_t readers_in_use, const HealthStatus& health);

// The since-open measures and error counts as JSON (sparse histogram
// buckets), and back: what the writing process persists in `meta`.
std::string measures_json(const SlaReport& report, const MeasuresSnapshot& measures,
                          const std::map<std::string, std::uint64_t>& errors, std::uint64_t wall_ns);
void parse_measures_json(const std::string& json, MeasuresSnapshot& measures,
                         std::map<std::string, std::uint64_t>& errors);

}  // namespace lighthouse::monitor
