// The named LMDB databases of a store and the keys of `meta`
// (docs/formats.md describes them for readers of the files).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

namespace lighthouse::schema {

inline constexpr const char* kEvents = "events";
inline constexpr const char* kByType = "by_type";
inline constexpr const char* kByAggregate = "by_aggregate";
inline constexpr const char* kAggregateHeads = "aggregate_heads";
inline constexpr const char* kByIdempotencyKey = "by_idempotency_key";
inline constexpr const char* kMeta = "meta";

namespace meta {
inline constexpr std::string_view kFormatVersion = "format_version";  // u32 BE
inline constexpr std::string_view kNodeId = "node_id";                // u32 BE
inline constexpr std::string_view kCreatedNs = "created_ns";          // u64 BE
inline constexpr std::string_view kLastSequence = "last_sequence";    // u64 BE
inline constexpr std::string_view kLastTimestamp = "last_timestamp_ns";  // u64 BE
inline constexpr std::string_view kLastChain = "last_chain";          // 32 bytes
inline constexpr std::string_view kAggregateCount = "aggregate_count";  // u64 BE
inline constexpr std::string_view kImportInProgress = "import_in_progress";  // present while importing
// After truncation: the first sequence the store still holds, the chain value
// its first event follows, and the archive that holds what was dropped.
inline constexpr std::string_view kBaseSequence = "base_sequence";  // u64 BE (absent: 1)
inline constexpr std::string_view kBaseChain = "base_chain";        // 32 bytes (absent: zeros)
inline constexpr std::string_view kBaseArchive = "base_archive";    // path, UTF-8
inline constexpr std::string_view kSlaReport = "sla_report";        // JSON, by the writing process
inline constexpr std::string_view kHealth = "health";               // JSON (absent: healthy)
// "consumer/NAME": a subscription consumer's checkpoint, an event key (20 bytes).
inline constexpr std::string_view kConsumerPrefix = "consumer/";
}  // namespace meta

// by_aggregate value: version (u64 BE) ‖ event key (20 bytes).
inline constexpr std::size_t kAggregateEntrySize = 28;
// by_idempotency_key value: event key (20 bytes) ‖ content hash (32 bytes);
// for an event dropped by truncation, followed by its aggregate version
// (u64 BE), so that a retry still replays.
inline constexpr std::size_t kIdempotencyEntrySize = 52;
inline constexpr std::size_t kDroppedIdempotencyEntrySize = 60;

inline std::string be64(std::uint64_t v) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

inline std::string be32(std::uint32_t v) {
  std::string out(4, '\0');
  for (int i = 3; i >= 0; --i) {
    out[static_cast<std::size_t>(i)] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

// REQUIRES: bytes.size() >= width.
inline std::uint64_t read_be(std::string_view bytes, std::size_t width) {
  std::uint64_t v = 0;
  for (std::size_t i = 0; i < width; ++i) v = (v << 8) | static_cast<unsigned char>(bytes[i]);
  return v;
}

}  // namespace lighthouse::schema
