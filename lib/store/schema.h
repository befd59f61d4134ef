// The storage schema: the named LMDB databases of a store, the keys of
// `meta`, and one encoder and one strict decoder for every key and value the
// store writes (docs/formats.md describes them for readers of the files).
// Nobody else packs these bytes. A value of the wrong size is
// Error(corruption) wherever it is read.
#pragma once

#include <lmdb.h>

#include <array>
#include <cstdint>
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include "lighthouse/event.h"
#include "lighthouse/event_id.h"
#include "lighthouse/options.h"
#include "lmdb/lmdb.h"

namespace lighthouse {

// The handles of a store's named databases, opened once per environment.
struct Databases {
  MDB_dbi events = 0;
  MDB_dbi by_type = 0;
  MDB_dbi by_aggregate = 0;
  MDB_dbi aggregate_heads = 0;
  MDB_dbi by_idempotency_key = 0;
  MDB_dbi meta = 0;
};

namespace schema {

inline constexpr const char* kEvents = "events";
inline constexpr const char* kByType = "by_type";
inline constexpr const char* kByAggregate = "by_aggregate";
inline constexpr const char* kAggregateHeads = "aggregate_heads";
inline constexpr const char* kByIdempotencyKey = "by_idempotency_key";
inline constexpr const char* kMeta = "meta";

// Returns true iff `name` is one of the store's own databases.
bool is_store_database(std::string_view name) noexcept;

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
// "replication/...": what lib/replication keeps (docs/replication.md). The
// core reads two keys: a store that holds kReplicaOf is a read replica, and
// refuses appends and writes no `$health.*` events of its own; a store that
// holds kHighWater is in quorum mode (store/replication_gate.h).
inline constexpr std::string_view kReplicationPrefix = "replication/";
inline constexpr std::string_view kReplicaOf = "replication/replica_of";  // UTF-8: what it follows
inline constexpr std::string_view kHighWater = "replication/high_water";  // decimal: the acknowledged sequence
}  // namespace meta

// --- Integers, big-endian --------------------------------------------------

std::string be64(std::uint64_t v);
std::string be32(std::uint32_t v);
// REQUIRES: bytes.size() >= width.
std::uint64_t read_be(std::string_view bytes, std::size_t width) noexcept;

// --- Event keys (the key of `events`, the value of `by_type`) ---------------

inline std::string_view key_view(const EventId::Key& key) noexcept {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}
inline std::string_view digest_view(const Sha256& digest) noexcept {
  return {reinterpret_cast<const char*>(digest.data()), digest.size()};
}
// The ID of a 20-byte key; Error(corruption) naming `where` for another size.
EventId decode_event_key(std::string_view key, std::string_view where);

// --- by_aggregate: version (u64 BE) ‖ event key (20 bytes) -----------------

inline constexpr std::size_t kAggregateEntrySize = 28;
struct AggregateEntry {
  std::uint64_t version = 0;
  std::string_view key;  // the event's 20-byte key, into the decoded bytes
};
std::string encode_aggregate_entry(std::uint64_t version, std::string_view event_key);
// Writes the entry into `out` without allocating.
void encode_aggregate_entry(char (&out)[kAggregateEntrySize], std::uint64_t version, std::string_view event_key);
// The smallest entry of `version`: the bound a cursor seeks with.
std::string aggregate_entry_bound(std::uint64_t version);
AggregateEntry decode_aggregate_entry(std::string_view bytes, std::string_view aggregate);

// --- aggregate_heads: the last version of an aggregate whose events were
// all truncated (u64 BE) ----------------------------------------------------

std::uint64_t decode_aggregate_head(std::string_view bytes, std::string_view aggregate);

// --- by_idempotency_key: event key (20) ‖ content hash (32), and for an
// event dropped by truncation ‖ its aggregate version (u64 BE), so that a
// retry still replays ----------------------------------------------------------

inline constexpr std::size_t kIdempotencyEntrySize = 52;
inline constexpr std::size_t kDroppedIdempotencyEntrySize = 60;
struct IdempotencyEntry {
  std::string_view key;           // the event's 20-byte key
  std::string_view content_hash;  // 32 bytes
  std::optional<std::uint64_t> dropped_version;  // set for a truncated event
};
std::string encode_idempotency_entry(std::string_view event_key, const Sha256& content_hash);
std::string encode_dropped_idempotency_entry(std::string_view event_key, std::string_view content_hash,
                                             std::uint64_t version);
IdempotencyEntry decode_idempotency_entry(std::string_view bytes, std::string_view idempotency_key);

// --- meta -----------------------------------------------------------------

// The checkpoint key of a consumer.
std::string consumer_key(std::string_view consumer);

// Strict reads of one `meta` value in `txn`: `missing` when absent,
// Error(corruption) naming the key when its size is wrong.
std::uint64_t read_u64(MDB_txn* txn, const Databases& dbs, std::string_view key, std::uint64_t missing);
std::uint32_t read_u32(MDB_txn* txn, const Databases& dbs, std::string_view key, std::uint32_t missing);
std::optional<Sha256> read_digest(MDB_txn* txn, const Databases& dbs, std::string_view key);
std::optional<EventId> read_checkpoint(MDB_txn* txn, const Databases& dbs, std::string_view consumer);
// What a read replica follows (meta::kReplicaOf), or nothing for a store
// that is not one. The view lives as long as `txn`.
std::optional<std::string_view> read_replica_of(MDB_txn* txn, const Databases& dbs);
// The replication high-water mark (meta::kHighWater) of a store in quorum
// mode, or nothing. Error(corruption) when it is not a decimal number.
std::optional<std::uint64_t> read_high_water(MDB_txn* txn, const Databases& dbs);
// The size a `meta` value of `key` must have (0: any).
std::size_t meta_value_size(std::string_view key) noexcept;

// The counters the write path derives IDs, chain and versions from, and the
// base a truncation left.
struct Counters {
  std::uint64_t last_sequence = 0;
  std::uint64_t last_timestamp_ns = 0;
  Sha256 last_chain{};
  bool has_last_chain = false;
  std::uint64_t aggregate_count = 0;
  std::uint64_t base_sequence = 1;
  Sha256 base_chain{};
};
Counters read_counters(MDB_txn* txn, const Databases& dbs);
// Writes last_sequence, last_timestamp_ns, last_chain and aggregate_count.
void write_counters(MDB_txn* txn, const Databases& dbs, const Counters& counters);

// --- Opening ----------------------------------------------------------------

// What a store's `meta` says about the store itself.
struct Identity {
  Databases dbs;
  std::uint32_t format_version = 0;
  std::uint32_t node_id = 0;      // the node id this opening writes with
  bool importing = false;         // an import was interrupted
};
// Opens the named databases inside `txn` (creating them and the identity of
// a new store unless the environment is read-only). `now_ns` stamps a new
// store. Errors: corruption (a database missing, an LMDB environment that is
// not a store, events without a format version, meta values of the wrong
// size), unsupported_format (a newer format), not_found (a read-only open of
// an environment that holds no store).
Identity open_databases(MDB_txn* txn, const std::filesystem::path& path, const Options& options,
                        std::uint64_t now_ns);

}  // namespace schema
}  // namespace lighthouse
