// `lighthouse verify`, `repair` and `backup`.
#pragma once

#include <ostream>
#include <string>

namespace lighthouse::tool {

// Prints the report (a summary line, or with `json` one JSON object) and
// returns the exit code: 0 when clean, 5 when anything is wrong.
// With `archive`, also checks that archive plus store form one unbroken chain.
int run_verify(const std::string& path, bool json, const std::string& archive, std::ostream& out);

// Rebuilds indexes and counters; prints what it did as JSON. Returns 0 when
// the store verifies afterwards, 5 when problems remain (events left for
// the operator).
int run_repair(const std::string& path, std::ostream& out);

void run_truncate(const std::string& path, const std::string& archive, const std::string& before,
                  std::ostream& out);
void run_compact(const std::string& path, std::ostream& out);
void run_upgrade(const std::string& path, std::ostream& out);

// The SLA report the writing process last persisted, with its age.
void run_sla(const std::string& path, std::ostream& out);

// `lighthouse health`: prints the state recorded in the store (read-only
// open), or enters / clears a manual emergency and prints the new state.
void run_health(const std::string& path, const std::string& enter_reason, bool clear, std::ostream& out);
// Prometheus text: the store's gauges and the persisted histograms.
// With `archive`, also the lag of its export checkpoint behind the store.
void run_metrics(const std::string& path, const std::string& archive, std::ostream& out);

void run_backup(const std::string& path, const std::string& destination, std::ostream& out);

// A new store in `destination` from what can still be read of a damaged one;
// prints the report. Exit code 0 when nothing was lost, 5 when events were.
int run_salvage(const std::string& path, const std::string& destination, std::ostream& out);

}  // namespace lighthouse::tool
