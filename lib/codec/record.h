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

// The content of an event, by reference: what the checksum and the record
// are made of. Nothing is copied to build one.
struct RecordFields {
  std::string_view type;
  std::string_view aggregate;
  std::uint64_t aggregate_version = 0;
  ContentType content_type = ContentType::msgpack;
  const Metadata* metadata = nullptr;
  std::string_view data;
  const std::string* idempotency_key = nullptr;  // null: none

  static RecordFields of(const RecordedEvent& e) {
    return {e.type, e.aggregate, e.aggregate_version, e.content_type, &e.metadata, e.data,
            e.idempotency_key ? &*e.idempotency_key : nullptr};
  }
};

// Appends the canonical encoding of the checksummed fields to `out`.
void append_canonical(std::string& out, const EventId& id, const RecordFields& fields);
inline std::string canonical_encoding(const EventId& id, const RecordFields& fields) {
  std::string out;
  append_canonical(out, id, fields);
  return out;
}

// SHA-256 of the canonical encoding.
Sha256 event_checksum(const EventId& id, const RecordFields& fields);
inline Sha256 event_checksum(const RecordedEvent& e) {
  return event_checksum(e.id, RecordFields::of(e));
}

// SHA-256(previous ‖ checksum).
Sha256 chain_next(const Sha256& previous, const Sha256& checksum);

// SHA-256 of the content fields an idempotent retry must repeat exactly:
// type, aggregate, content type, metadata, data.
Sha256 content_hash(const RecordFields& fields);
inline Sha256 content_hash(const EventData& e) {
  return content_hash(RecordFields{e.type, e.aggregate, 0, e.content_type, &e.metadata, e.data, nullptr});
}

// The leading fields of a stored record, read without decoding the rest.
struct RecordHead {
  std::string_view type;
  std::string_view aggregate;
  std::uint64_t aggregate_version = 0;
};
// Returns false when the bytes do not start like a record.
bool peek_record(std::string_view bytes, RecordHead& head) noexcept;

struct EncodeOptions {
  std::size_t compression_threshold = 0;  // 0: never compress
  int compression_level = 3;
};

// Replaces `out` with the stored record (everything but the ID, which is the key).
void encode_record(std::string& out, const RecordFields& fields, const Sha256& checksum,
                   const Sha256& chain, const EncodeOptions& options);
inline std::string encode_record(const RecordedEvent& e, const EncodeOptions& options) {
  std::string out;
  encode_record(out, RecordFields::of(e), e.checksum, e.chain, options);
  return out;
}

// Replaces `out` with the stored record of a new event: computes its checksum
// (from the record's own bytes when the data is stored uncompressed, so the
// fields are encoded once) and its chain value from `previous_chain`.
struct SealedRecord {
  Sha256 checksum;
  Sha256 chain;
};
SealedRecord seal_record(std::string& out, const EventId& id, const RecordFields& fields,
                         const Sha256& previous_chain, const EncodeOptions& options);

// Decodes a stored record for the event with `id`. Throws
// Error(corruption) naming the ID when the bytes are not a valid record.
// Does not verify the checksum (see verify_checksum). When `stored_tail` is
// given, it receives the stored bytes of fields 2 to 7 (type to data) if the
// data is stored uncompressed and the metadata keys are in strictly
// ascending order — for a record Lighthouse wrote, the canonical encoding
// after the ID — and is empty otherwise.
RecordedEvent decode_record(const EventId& id, std::string_view bytes,
                            std::string_view* stored_tail = nullptr);

// SHA-256 of the ID's canonical encoding followed by `stored_tail` as it is:
// the checksum of a record in canonical form, without re-encoding it.
Sha256 stored_checksum(const EventId& id, std::string_view stored_tail);

// True iff the event's checksum matches. With the `stored_tail` of its
// record, the stored bytes are hashed as they are (no re-encoding); only when
// they do not match, or there are none, is the canonical encoding rebuilt
// from the fields, so a record that is valid but not byte-canonical still
// verifies.
bool checksum_matches(const RecordedEvent& event, std::string_view stored_tail = {});

// Throws Error(corruption) naming the ID iff the checksum does not match.
void verify_checksum(const RecordedEvent& event, std::string_view stored_tail = {});

}  // namespace lighthouse::codec
