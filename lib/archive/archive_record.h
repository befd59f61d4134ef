// The self-contained record of an archive segment: a MessagePack map with
// named fields (docs/archive-format.md), readable by any MessagePack library.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "lighthouse/event.h"

namespace lighthouse::archive {

// The largest record an event within `max_event_bytes` can make: the content,
// its MessagePack headers (at most 5 bytes per metadata string, and a
// metadata entry has at least 2 bytes of content), and a fixed envelope.
inline std::uint64_t max_record_bytes(std::uint64_t max_event_bytes) { return 4 * max_event_bytes + 4096; }

// Replaces `out` with the record of `event`.
void encode_archive_record(std::string& out, const RecordedEvent& event);

// Decodes a record; throws Error(corruption) naming `where` when it is not
// a valid record (not MessagePack, a field missing, of the wrong type, or an
// ID that disagrees with its sequence, timestamp and node).
RecordedEvent decode_archive_record(std::string_view bytes, const std::string& where);

}  // namespace lighthouse::archive
