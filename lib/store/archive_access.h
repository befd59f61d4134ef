// What the archive layer (lib/archive) may ask of a store beyond the public
// API: the one internal header of lib/store it includes. lib/store knows
// nothing of archives.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "lighthouse/store.h"

namespace lighthouse::store_access {

// The options the store was opened with (its tracing, for the archive's spans).
const Options& options(const Store& store);

// Throws Error(read_only) iff `store` (the handle or the store) may not write.
void refuse_read_only(const Store& store);

// Import, each an exclusive task of the committer: begin_import() marks the
// store as being imported into (synced: an interrupted import is refused
// on open), import_events() writes archived events as they are (IDs,
// checksums, chain — see WriteTxn::import), end_import() clears the mark.
void begin_import(Store& store);
void import_events(Store& store, const std::vector<RecordedEvent>& events);
void end_import(Store& store);

// Truncation: drops the events from the base to `to_sequence` in one write
// transaction and records the new base and `archive` (store/retention.h).
void drop_events(Store& store, std::uint64_t to_sequence, const std::string& archive);

}  // namespace lighthouse::store_access
