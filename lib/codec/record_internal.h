// Internal to lib/codec: the pieces both record formats are made of.
#pragma once

#include <string>
#include <string_view>

#include "codec/msgpack_writer.h"
#include "codec/record.h"

namespace lighthouse::codec::internal {

// A map of str → str in the metadata's (bytewise ascending) order.
void pack_metadata(Packer& pk, const Metadata& metadata);
const Metadata& metadata_of(const RecordFields& f);
// The decimal text of an ID, without allocating.
void pack_id(Packer& pk, const EventId& id);
void pack_digest(Packer& pk, const Sha256& digest);

std::string compress(std::string_view data, int level);
// Decompresses a stored zstd frame, bounded by what actually decompresses.
std::string decompress(const EventId& id, std::string_view frame);

// Throws Error(corruption): "event ID: stored record is damaged (why)".
[[noreturn]] void corrupt(const EventId& id, std::string_view why);

// Type, aggregate, version, content type, metadata, data (as given: the
// stored bytes may be compressed): fields 2 to 7 of a record of either
// format, and the format-1 canonical encoding after the ID.
void pack_checksummed_fields(Packer& pk, const RecordFields& f, std::string_view data);

}  // namespace lighthouse::codec::internal

namespace lighthouse::codec::internal {
// SHA-256 of a format-1 canonical head for `id` followed by `stored_tail`.
Sha256 stored_checksum_v1(const EventId& id, std::string_view stored_tail);
}  // namespace lighthouse::codec::internal
