// The MessagePack record stored in the `events` database, the canonical
// encoding its checksum covers, and the content hash idempotency compares.
// docs/formats.md specifies all three byte by byte.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "lighthouse/event.h"

namespace lighthouse::codec {

inline constexpr unsigned kRecordVersion = 1;
inline constexpr unsigned kFlagCompressed = 1u;

// Returns the canonical encoding of the checksummed fields of `event`.
std::string canonical_encoding(const EventId& id, std::string_view type,
                               std::string_view aggregate, std::uint64_t aggregate_version,
                               ContentType content_type, const Metadata& metadata,
                               std::string_view data);

// SHA-256 of canonical_encoding(...).
Sha256 event_checksum(const RecordedEvent& event);

// SHA-256(previous ‖ checksum).
Sha256 chain_next(const Sha256& previous, const Sha256& checksum);

// SHA-256 of the content fields an idempotent retry must repeat exactly:
// type, aggregate, content type, metadata, data.
Sha256 content_hash(const EventData& event);

struct EncodeOptions {
  std::size_t compression_threshold = 0;  // 0: never compress
  int compression_level = 3;
};

// Encodes the stored record (everything but the ID, which is the key).
std::string encode_record(const RecordedEvent& event, const EncodeOptions& options);

// Decodes a stored record for the event with `id`. Throws
// Error(corruption) naming the ID when the bytes are not a valid record.
// Does not verify the checksum (see verify_checksum).
RecordedEvent decode_record(const EventId& id, std::string_view bytes);

// Throws Error(corruption) naming the ID iff the checksum does not match.
void verify_checksum(const RecordedEvent& event);

}  // namespace lighthouse::codec
