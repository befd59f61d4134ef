#include "store/validation.h"

#include "text.h"

#include <zstd.h>

#include <cmath>
#include <limits>
#include <set>
#include <sstream>
#include <string>

namespace lighthouse::validation {
namespace {

std::string shown(std::string_view value) { return text::shown(value); }

[[noreturn]] void fail(ErrorCode code, const std::string& message) { throw Error(code, message); }

void check_text(std::string_view what, std::string_view value) {
  if (!is_valid_utf8(value)) {
    fail(ErrorCode::invalid_argument, std::string(what) + " '" + shown(value) +
                                          "' is not valid UTF-8");
  }
}

}  // namespace

void check_consumer(std::string_view name) {
  if (name.empty() || name.size() > 128) {
    fail(ErrorCode::invalid_argument,
         "consumer name must be 1 to 128 bytes, got " + std::to_string(name.size()));
  }
  check_text("consumer name", name);
}

bool is_valid_utf8(std::string_view text) noexcept { return text::is_valid_utf8(text); }

void check_name(std::string_view what, std::string_view name, const Limits& limits,
                bool allow_empty, bool allow_reserved) {
  if (name.empty() && !allow_empty) {
    fail(ErrorCode::invalid_argument, std::string(what) + " is empty: it needs 1 to " +
                                          std::to_string(limits.max_name_bytes) + " bytes");
  }
  if (name.size() > limits.max_name_bytes) {
    fail(ErrorCode::limit_exceeded, std::string(what) + " '" + shown(name) + "' is " +
                                        std::to_string(name.size()) + " bytes: the limit is " +
                                        std::to_string(limits.max_name_bytes));
  }
  if (!allow_reserved && !name.empty() && name[0] == '$') {
    fail(ErrorCode::invalid_argument, std::string(what) + " '" + shown(name) +
                                          "' starts with '$', which is reserved for the "
                                          "store's own events");
  }
  check_text(what, name);
}

void check_totals(std::size_t events, std::size_t bytes, const Limits& limits) {
  if (events > limits.max_batch_events) {
    fail(ErrorCode::limit_exceeded, "batch of " + std::to_string(events) +
                                        " events: the limit is " +
                                        std::to_string(limits.max_batch_events));
  }
  if (bytes > limits.max_batch_bytes) {
    fail(ErrorCode::limit_exceeded, "batch of " + std::to_string(bytes) +
                                        " content bytes: the limit is " +
                                        std::to_string(limits.max_batch_bytes));
  }
}

std::size_t check_batch(const Batch& batch, const Limits& limits, bool allow_reserved) {
  if (batch.events.empty()) {
    fail(ErrorCode::invalid_argument, "a batch needs at least one event");
  }
  if (batch.checkpoint) check_consumer(batch.checkpoint->consumer);
  check_priority(batch.priority);
  std::size_t bytes = 0;
  std::set<std::string_view> keys;
  for (std::size_t i = 0; i < batch.events.size(); ++i) {
    const EventData& e = batch.events[i];
    try {
      check_name("event type", e.type, limits, false, allow_reserved);
      check_name("aggregate", e.aggregate, limits, true, allow_reserved);
      for (const auto& [key, value] : e.metadata) {
        if (key.empty() || key.size() > limits.max_name_bytes) {
          fail(key.empty() ? ErrorCode::invalid_argument : ErrorCode::limit_exceeded,
               "metadata key '" + shown(key) + "' is " + std::to_string(key.size()) +
                   " bytes: it needs 1 to " + std::to_string(limits.max_name_bytes));
        }
        check_text("metadata key", key);
        check_text("metadata value of '" + shown(key) + "'", value);
      }
      if (e.content_type > ContentType::bytes) {
        fail(ErrorCode::invalid_argument, "unknown content type " +
                                              std::to_string(static_cast<int>(e.content_type)));
      }
      if (e.idempotency_key) {
        const std::string& key = *e.idempotency_key;
        if (key.empty() || key.size() > limits.max_idempotency_key_bytes) {
          fail(key.empty() ? ErrorCode::invalid_argument : ErrorCode::limit_exceeded,
               "idempotency key '" + shown(key) + "' is " + std::to_string(key.size()) +
                   " bytes: it needs 1 to " + std::to_string(limits.max_idempotency_key_bytes));
        }
        check_text("idempotency key", key);
        if (!keys.insert(key).second) {
          fail(ErrorCode::invalid_argument,
               "idempotency key '" + shown(key) + "' appears twice in one batch");
        }
      }
      if (e.schema_version == 0) {
        fail(ErrorCode::invalid_argument, "event of type '" + shown(e.type) + "' has schema version 0: versions start at 1");
      }
      if (e.trace_context) check_trace_context(*e.trace_context);
      std::size_t size = e.content_size();
      if (size > limits.max_event_bytes) {
        fail(ErrorCode::limit_exceeded, "event of type '" + shown(e.type) + "' is " +
                                            std::to_string(size) + " bytes: the limit is " +
                                            std::to_string(limits.max_event_bytes));
      }
      bytes += size;
    } catch (Error& error) {
      throw error.with_index(i);
    }
  }
  std::set<std::string_view> aggregates;
  for (const auto& expectation : batch.expectations) {
    check_name("aggregate of an expectation", expectation.aggregate, limits, false,
               allow_reserved);
    if (!aggregates.insert(expectation.aggregate).second) {
      fail(ErrorCode::invalid_argument, "two expectations for aggregate '" +
                                            shown(expectation.aggregate) +
                                            "': a batch takes one per aggregate");
    }
  }
  check_totals(batch.events.size(), bytes, limits);
  return bytes;
}

namespace {

[[noreturn]] void bad_option(const std::string& name, const std::string& why) {
  throw Error(ErrorCode::invalid_argument, "Options::" + name + " " + why);
}

void in_range(const std::string& name, double value, double lo, double hi) {
  if (!std::isfinite(value) || value < lo || value > hi) {
    std::ostringstream text;
    text << "is " << value << ": it must be from " << lo << " to " << hi;
    bad_option(name, text.str());
  }
}

void at_least(const std::string& name, std::uint64_t value, std::uint64_t lo) {
  if (value < lo) bad_option(name, "is " + std::to_string(value) + ": it must be at least " + std::to_string(lo));
}

void at_most(const std::string& name, std::uint64_t value, std::uint64_t hi) {
  if (value > hi) bad_option(name, "is " + std::to_string(value) + ": it must be at most " + std::to_string(hi));
}

bool is_priority(Priority priority) {
  return static_cast<unsigned>(priority) <= static_cast<unsigned>(Priority::critical);
}

}  // namespace

void check_priority(Priority priority) {
  if (!is_priority(priority)) {
    fail(ErrorCode::invalid_argument,
         "priority " + std::to_string(static_cast<unsigned>(priority)) + " is not low, normal, high or critical");
  }
}

void check_options(const Options& o) {
  const Limits& l = o.limits;
  at_least("limits.max_event_bytes", l.max_event_bytes, 1);
  at_least("limits.max_batch_events", l.max_batch_events, 1);
  at_least("limits.max_batch_bytes", l.max_batch_bytes, 1);
  at_least("limits.max_name_bytes", l.max_name_bytes, 1);
  at_most("limits.max_name_bytes", l.max_name_bytes, 255);  // LMDB keys of the indexes
  at_least("limits.max_idempotency_key_bytes", l.max_idempotency_key_bytes, 1);
  at_most("limits.max_idempotency_key_bytes", l.max_idempotency_key_bytes, 511);  // LMDB's key size
  at_most("verify_on_read", static_cast<std::uint64_t>(o.verify_on_read), static_cast<std::uint64_t>(ReadCheck::full));
  if (o.file_mode > 0777u || (o.file_mode & 0600u) != 0600u) {
    std::ostringstream text;
    text << "is 0" << std::oct << o.file_mode
         << ": it must be permission bits (at most 0777) that let the owner read and write";
    bad_option("file_mode", text.str());
  }
  if (o.durability != Durability::sync && o.durability != Durability::no_meta_sync) {
    bad_option("durability", "is " + std::to_string(static_cast<unsigned>(o.durability)) +
                                 ": it must be sync or no_meta_sync");
  }
  at_least("map_size", o.map_size, std::size_t{64} << 10);
  at_most("map_size", o.map_size, std::size_t{1} << 46);
  // A max_map_size below map_size caps the map (it is not an error).
  if (o.max_map_size != 0) at_most("max_map_size", o.max_map_size, std::size_t{1} << 46);
  at_least("max_group_events", o.max_group_events, 1);
  at_least("max_group_bytes", o.max_group_bytes, 1);
  in_range("compression_level", o.compression_level, ZSTD_minCLevel(), ZSTD_maxCLevel());
  in_range("sla.append_p99_seconds", o.sla.append_p99_seconds, 1e-9, 3600);
  in_range("sla.capacity_events_per_second", o.sla.capacity_events_per_second, 0, 1e12);
  const HealthOptions& h = o.health;
  in_range("health.window_seconds", h.window_seconds, 0, 86'400);
  at_least("health.enter_after", h.enter_after, 1);
  at_least("health.leave_after", h.leave_after, 1);
  in_range("health.degraded_latency_factor", h.degraded_latency_factor, 1, std::numeric_limits<double>::max());
  in_range("health.map_usage_warning", h.map_usage_warning, 0, 1);
  in_range("health.map_usage_degraded", h.map_usage_degraded, h.map_usage_warning, 1);
  in_range("health.map_usage_emergency", h.map_usage_emergency, h.map_usage_degraded, 1);
  in_range("health.disk_free_emergency", h.disk_free_emergency, 0, 1);
  in_range("health.disk_free_degraded", h.disk_free_degraded, h.disk_free_emergency, 1);
  in_range("health.disk_free_warning", h.disk_free_warning, h.disk_free_degraded, 1);
  if (!is_priority(h.degraded_min_priority)) {
    bad_option("health.degraded_min_priority",
               "is " + std::to_string(static_cast<unsigned>(h.degraded_min_priority)) +
                   ": it must be low, normal, high or critical");
  }
  at_least("health.degraded_max_group_events", h.degraded_max_group_events, 1);
  in_range("health.replication_lag_warning_seconds", h.replication_lag_warning_seconds, 0, 1e9);
  in_range("health.replication_lag_degraded_seconds", h.replication_lag_degraded_seconds,
           h.replication_lag_warning_seconds, 1e9);
  in_range("quorum_timeout_seconds", o.quorum_timeout_seconds, 0.001, 86'400);
  in_range("tracing.sampler.ratio", o.tracing.sampler.ratio, 0, 1);
  at_most("tracing.sampler.kind", static_cast<std::uint64_t>(o.tracing.sampler.kind),
          static_cast<std::uint64_t>(tracing::SamplerKind::parent_based_trace_id_ratio));
  in_range("tracing.child_within_seconds", o.tracing.child_within_seconds, 0, 86'400);
}

}  // namespace lighthouse::validation
