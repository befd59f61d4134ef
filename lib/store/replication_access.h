// What the replication layer (lib/replication) may ask of a store beyond the
// public API, as archive_access.h is for the archive layer. lib/store knows
// nothing of NATS: it keeps lib/replication's keys in `meta` (under
// schema::meta::kReplicationPrefix) and obeys two of them, kReplicaOf and
// kHighWater (quorum mode).
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "lighthouse/export.h"
#include "lighthouse/store.h"

namespace lighthouse::replication_access {

// The value of `meta` key "replication/<name>" in one read snapshot, if any.
// Errors: closed, io_error.
LIGHTHOUSE_API std::optional<std::string> read(const Store& store, std::string_view name);

// Throws Error(read_only) iff `store` (the handle or the store) may not write.
LIGHTHOUSE_API void refuse_writes_if_read_only(const Store& store);

// Sets (a value) or removes (nullopt) keys "replication/<name>" in one
// synced write transaction, an exclusive task of the committer.
// Errors: read_only, store_failed, corruption (damage mark), closed, io_error.
using Entry = std::pair<std::string, std::optional<std::string>>;
LIGHTHOUSE_API void write(Store& store, const std::vector<Entry>& entries);

// Writes events received from the primary as they are (IDs, checksums,
// chain: as an archive's import, WriteTxn::import), and `entries`, in one
// synced write transaction, if the store is still a read replica (holds
// kReplicaOf). Errors: invalid_argument (not a replica; an event that does
// not follow the store's last), corruption (the chain does not follow), read_only, closed, io_error.
LIGHTHOUSE_API void apply(Store& store, const std::vector<RecordedEvent>& events, const std::vector<Entry>& entries = {});

// Appends the store's own event (a '$' type: `$replication.promoted`).
// Errors: those of Store::append_batch.
LIGHTHOUSE_API AppendResult append_own(Store& store, Batch batch);

// The name (under "replication/") of the high-water mark that puts a store
// in quorum mode (schema::meta::kHighWater).
inline constexpr std::string_view kHighWater = "high_water";

// Quorum mode (store/replication_gate.h). enter_quorum stores the
// high-water mark `mark` in `meta` (the store is in quorum mode from then
// on, for every process) and attaches this process's replicator: it moves
// the mark (advance_high_water) as acknowledgements arrive and is woken by
// `wake` when an append waits. leave_quorum removes the mark (async mode);
// detach_quorum is the replicator's stop. Errors: those of write().
LIGHTHOUSE_API void enter_quorum(Store& store, std::uint64_t mark, std::function<void()> wake);
LIGHTHOUSE_API void leave_quorum(Store& store);
LIGHTHOUSE_API void advance_high_water(Store& store, std::uint64_t mark);
LIGHTHOUSE_API void detach_quorum(Store& store) noexcept;
// The lag of this process's replicator, a health trigger
// (HealthOptions::replication_lag_*); nothing: it stopped.
LIGHTHOUSE_API void note_lag(Store& store, const std::string& stream, std::uint64_t events, double seconds);
LIGHTHOUSE_API void clear_lag(Store& store) noexcept;
// Appends of this process waiting for the stream now (quorum mode).
LIGHTHOUSE_API std::size_t appends_waiting(const Store& store);

// Reads of the calling thread see past the high-water mark from now on (the
// replicator reads what it has yet to publish).
LIGHTHOUSE_API void read_past_high_water() noexcept;

// The message of an event: its archive record (docs/archive-format.md),
// self-contained — ID, sequence, every field, checksum and chain.
LIGHTHOUSE_API std::string encode_message(const RecordedEvent& event);
// The largest message an event of `store` can make (its largest record).
LIGHTHOUSE_API std::uint64_t max_message_bytes(const Store& store);
// Decodes a message and checks its checksum; throws Error(corruption)
// naming `where` otherwise.
LIGHTHOUSE_API RecordedEvent decode_message(std::string_view bytes, const std::string& where);

}  // namespace lighthouse::replication_access
