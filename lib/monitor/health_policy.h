// Health: what the triggers propose for one window, the hysteresis that
// turns proposals into a state, and the state's record in `meta`.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

#include "lighthouse/health.h"
#include "lighthouse/sla.h"

namespace lighthouse::monitor {

// What one window measured. Absent figures propose nothing.
struct HealthInputs {
  // SLA: the recent append latencies and the breaches the monitor found.
  bool sla = false;
  LatencySummary append;
  double append_target_seconds = 0;
  std::uint64_t min_samples = 0;
  bool latency_breach = false;
  bool backlog_breach = false;
  std::string backlog_detail;
  std::optional<double> map_usage;  // used / maximum
  std::optional<double> disk_free;  // free / size of the filesystem
  std::uint64_t disk_free_bytes = 0;
  std::string failure;     // an I/O error or MDB_PANIC in this process
  std::string corruption;  // corruption met by this process
  // The replicator of this process (when one runs): its stream, its lag in
  // events and the age of the oldest unacknowledged event.
  std::string replication_stream;
  std::uint64_t replication_lag_events = 0;
  std::optional<double> replication_lag_seconds;
};

struct Proposal {
  HealthState state = HealthState::healthy;
  std::string reason;  // every cause, "; "-separated
  std::map<std::string, double> figures;
  bool immediate = false;  // an I/O failure: no hysteresis
};

// The highest state any trigger calls for, with every cause that calls for
// more than healthy.
Proposal propose(const HealthInputs& inputs, const HealthOptions& options);

// Enter a higher state after `enter_after` consecutive proposals above the
// current one (the lowest of them), leave for a lower one after
// `leave_after` consecutive proposals below it (the highest of them).
class Hysteresis {
 public:
  Hysteresis(std::uint32_t enter_after, std::uint32_t leave_after);
  HealthState feed(HealthState proposed, bool immediate = false);
  HealthState level() const noexcept { return level_; }
  void reset(HealthState level) noexcept;

 private:
  std::uint32_t enter_after_, leave_after_;
  HealthState level_ = HealthState::healthy;
  std::uint32_t up_ = 0, down_ = 0;
  HealthState up_min_ = HealthState::healthy, down_max_ = HealthState::healthy;
};

// The `health` key of `meta` (JSON; docs/formats.md).
struct HealthRecord {
  HealthState state = HealthState::healthy;
  std::string reason;
  std::uint64_t since_ns = 0;
  bool manual = false;
  // Entered because the recording process's store failed (I/O error,
  // MDB_PANIC): cleared as soon as that process reopens the store or ends.
  bool failure = false;
  std::int64_t pid = 0;
};

std::string encode_health(const HealthRecord& record);
// nullopt when the bytes are not a health record.
std::optional<HealthRecord> decode_health(std::string_view bytes);

// The JSON of a `$health.<to>` event.
std::string transition_json(const HealthTransition& transition, std::int64_t pid);

}  // namespace lighthouse::monitor
