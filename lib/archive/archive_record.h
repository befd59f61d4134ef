// The self-contained record of an archive segment: a MessagePack map with
// named fields (docs/archive-format.md), readable by any MessagePack library.
#pragma once

#include <string>
#include <string_view>

#include "lighthouse/event.h"

namespace lighthouse::archive {

// Replaces `out` with the record of `event`.
void encode_archive_record(std::string& out, const RecordedEvent& event);

// Decodes a record; throws Error(corruption) naming `where` when it is not
// a valid record (not MessagePack, a field missing, of the wrong type, or an
// ID that disagrees with its sequence, timestamp and node).
RecordedEvent decode_archive_record(std::string_view bytes, const std::string& where);

}  // namespace lighthouse::archive
