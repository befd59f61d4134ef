// Health states and the emergency degradation mode: a store that is
// overloaded, short of space or failing says so to every process on it,
// sheds what matters least first, and stops taking appends (while serving
// reads) before it can be damaged or lose what was acknowledged.
//
// A store is healthy, warning, degraded or in emergency. The state lives in
// the store (its `meta` database), so every process on the store obeys it:
//  * degraded — load shedding: appends below HealthOptions::degraded_min_priority
//    are refused with Error(degraded); higher ones commit, in bounded groups;
//  * emergency — read-only: reads keep working, appends are refused with
//    Error(emergency).
// Each writing process evaluates the triggers once a window (SLA breaches,
// map usage, free disk space, I/O errors and MDB_PANIC, corruption met while
// writing) with hysteresis, and records every transition as a `$health.<to>`
// event on the `$health` aggregate, in the same write transaction as the new
// state. An operator or the host program enters and clears a manual
// emergency (Store::enter_emergency, `lighthouse health`).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "lighthouse/export.h"

namespace lighthouse {

enum class HealthState : std::uint8_t { healthy = 0, warning = 1, degraded = 2, emergency = 3 };

// "healthy", "warning", "degraded", "emergency".
LIGHTHOUSE_API std::string_view to_string(HealthState state) noexcept;
LIGHTHOUSE_API std::optional<HealthState> parse_health_state(std::string_view name) noexcept;

// The priority of an append. A degraded store refuses appends below
// HealthOptions::degraded_min_priority; an emergency refuses every append.
enum class Priority : std::uint8_t { low = 0, normal = 1, high = 2, critical = 3 };

// "low", "normal", "high", "critical".
LIGHTHOUSE_API std::string_view to_string(Priority priority) noexcept;
LIGHTHOUSE_API std::optional<Priority> parse_priority(std::string_view name) noexcept;

// The triggers and their thresholds. Each trigger proposes a state for the
// window; the store's state follows the highest proposal with hysteresis.
//   SLA: append p99 over the target → warning; over degraded_latency_factor
//        × the target, or a growing backlog → degraded
//   map usage (used / Options::max_map_size; only when a maximum is set)
//   free space on the store's filesystem (free / size)
//   an I/O error or MDB_PANIC in this process → emergency at once
//   corruption met by this process while writing or reading → degraded,
//        until repair() or a clean verify()
//   replication lag (a replicator in this process) over its thresholds
struct HealthOptions {
  // Evaluate the triggers. Off: the state changes only by hand, but the
  // process still obeys the state in the store.
  bool enabled = true;
  // The length of a window: the writing process evaluates once per window,
  // also while idle. 0: only when the host calls Store::evaluate_health().
  double window_seconds = 1.0;
  // Enter a higher state after this many consecutive windows that call for
  // it (at least); leave for a lower one after this many that call for less.
  std::uint32_t enter_after = 3;
  std::uint32_t leave_after = 10;

  double degraded_latency_factor = 5.0;

  double map_usage_warning = 0.80;
  double map_usage_degraded = 0.90;
  double map_usage_emergency = 0.97;

  // Free fraction of the filesystem; at or below a threshold proposes that state.
  double disk_free_warning = 0.05;
  double disk_free_degraded = 0.02;
  double disk_free_emergency = 0.01;

  // Degraded: appends below this priority are refused; groups hold at most
  // degraded_max_group_events events (bounded latency for what is admitted).
  Priority degraded_min_priority = Priority::normal;
  std::size_t degraded_max_group_events = 1024;

  // Replication (lighthouse/replication.h): the replicator of this process
  // reports its lag — the age of the oldest event the stream has not
  // acknowledged — at or above which these states are proposed.
  double replication_lag_warning_seconds = 10.0;
  double replication_lag_degraded_seconds = 60.0;
};

// The state recorded in the store.
struct HealthStatus {
  HealthState state = HealthState::healthy;
  std::string reason;       // why it was entered (empty when healthy since creation)
  std::uint64_t since_ns = 0;  // wall clock, when it was entered (0: never changed)
  bool manual = false;      // an emergency entered by hand: only clear_emergency() ends it
  std::int64_t pid = 0;     // the process that recorded it
  // This process's own view: what its triggers propose now and why (empty
  // for a process that does not evaluate: read-only, or health off).
  HealthState proposed = HealthState::healthy;
  std::string proposed_reason;
};

// A transition, as recorded in its `$health.<to>` event and passed to callbacks.
struct HealthTransition {
  HealthState from = HealthState::healthy;
  HealthState to = HealthState::healthy;
  std::string reason;
  std::map<std::string, double> figures;  // the measurements behind it
  bool manual = false;
  std::uint64_t at_ns = 0;  // wall clock
  std::string event_id;     // the `$health.<to>` event ("" if it could not be written)
};

using HealthCallback = std::function<void(const HealthTransition&)>;

}  // namespace lighthouse
