// The MessagePack record stored in the `events` database, what its checksum
// covers, its fast check, and the content hash idempotency compares.
// docs/formats.md specifies them byte by byte, for record format 2 and for
// the format-1 records a store of format 1 holds (read-only, until
// `lighthouse upgrade`).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "lighthouse/event.h"

namespace lighthouse::tracing {
struct SpanContext;
}  // namespace lighthouse::tracing

namespace lighthouse::codec {

inline constexpr unsigned kRecordFormat1 = 1;
inline constexpr unsigned kRecordFormat2 = 2;
inline constexpr unsigned kFlagCompressed = 1u;
// A format-2 record ends with its fast check: XXH3-64, big-endian.
inline constexpr std::size_t kFastCheckBytes = 8;

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
  std::uint32_t schema_version = 1;
  const TraceContext* trace_context = nullptr;  // null: none
  // trace_context's traceparent in the 25 bytes a record stores it in
  // (store_traceparent), when the writer has them: made from the span's
  // context, not parsed from the text again per record. Null: from the text.
  const char* traceparent_bytes = nullptr;

  static RecordFields of(const RecordedEvent& e) { return of(e, e.aggregate_version); }
  // An event proposed (EventData) or stored (RecordedEvent), at `version`.
  template <typename Event>
  static RecordFields of(const Event& e, std::uint64_t version) {
    return {e.type,
            e.aggregate,
            version,
            e.content_type,
            &e.metadata,
            e.data,
            e.idempotency_key ? &*e.idempotency_key : nullptr,
            e.schema_version,
            e.trace_context ? &*e.trace_context : nullptr};
  }
};

// What a writer stamps on the events that carry no trace context of their
// own (an append made inside a trace): the context and, when the writer
// has them, its traceparent's 25 stored bytes.
struct TraceStamp {
  const TraceContext* context = nullptr;  // null: none
  const char* traceparent_bytes = nullptr;
};

// A traceparent of version 00 as a record stores it: trace ID (16) ‖ parent
// ID (8) ‖ flags (1), the bytes of `context.traceparent()`.
inline constexpr std::size_t kTraceparentBytes = 25;
void store_traceparent(const tracing::SpanContext& context, char (&out)[kTraceparentBytes]) noexcept;

// SHA-256 of the content fields an idempotent retry must repeat exactly:
// type, aggregate, content type, metadata, data (both formats).
Sha256 content_hash(const RecordFields& fields);
inline Sha256 content_hash(const EventData& e) { return content_hash(RecordFields::of(e, 0)); }

// Format 2: SHA-256 of the fields outside the content hash that do not
// depend on the transaction — idempotency key and trace context.
Sha256 extras_hash(const RecordFields& fields);

// What the appending thread hashes before it queues an event (format 2):
// everything of size proportional to the event. The transaction then hashes
// a fixed 96 + 64 bytes per event (checksum_v2, chain_next).
struct ContentHashes {
  Sha256 content;
  Sha256 extras;
};
inline ContentHashes content_hashes(const RecordFields& fields) {
  return {content_hash(fields), extras_hash(fields)};
}

// Format 2: SHA-256(content ‖ extras ‖ event key ‖ aggregate version u64 BE
// ‖ schema version u32 BE) — 96 bytes, two SHA-256 compressions.
Sha256 checksum_v2(const ContentHashes& hashes, const EventId& id, std::uint64_t aggregate_version,
                   std::uint32_t schema_version);

// Format 1: SHA-256 of the canonical encoding [ID text, type, aggregate,
// version, content type, metadata, data].
void append_canonical_v1(std::string& out, const EventId& id, const RecordFields& fields);
Sha256 checksum_v1(const EventId& id, const RecordFields& fields);

// The event's checksum as its record format defines it.
Sha256 event_checksum(const RecordedEvent& e);

// SHA-256(previous ‖ checksum): the same in both formats.
Sha256 chain_next(const Sha256& previous, const Sha256& checksum);

// Carries an event into record format 2 after `chain` (updated to the
// event's chain): a format-1 event gets its format-2 checksum and the chain
// value that follows `chain`; a format-2 event stays as it is. What import
// of a format-1 archive, upgrade and salvage of a format-1 store do to each
// event, in order.
void to_format2(RecordedEvent& event, Sha256& chain);

// The fast check of a format-2 record: XXH3-64 of the record's MessagePack
// bytes with the XXH3-64 of the 20-byte event key as seed.
std::uint64_t fast_check(std::string_view event_key, std::string_view packed);

// The leading fields of a stored record, read without decoding the rest.
struct RecordHead {
  std::string_view type;
  std::string_view aggregate;
  std::uint64_t aggregate_version = 0;
};
// Returns false when the bytes do not start like a record (either format).
bool peek_record(std::string_view bytes, RecordHead& head) noexcept;

struct EncodeOptions {
  std::size_t compression_threshold = 0;  // 0: never compress
  int compression_level = 3;
};

// Replaces `out` with the stored record of an event whose checksum and
// chain are known (import, salvage, upgrade), in record format `format`.
void encode_record(std::string& out, const EventId& id, const RecordFields& fields, const Sha256& checksum,
                   const Sha256& chain, const EncodeOptions& options, unsigned format = kRecordFormat2);
inline std::string encode_record(const RecordedEvent& e, const EncodeOptions& options) {
  std::string out;
  encode_record(out, e.id, RecordFields::of(e), e.checksum, e.chain, options, e.record_format);
  return out;
}

// Replaces `out` with the format-2 record of a new event: its checksum from
// `hashes` (content_hashes of `fields`, computed by the appending thread)
// and its chain value from `previous_chain`.
struct SealedRecord {
  Sha256 checksum;
  Sha256 chain;
};
SealedRecord seal_record(std::string& out, const EventId& id, const RecordFields& fields,
                         const ContentHashes& hashes, const Sha256& previous_chain, const EncodeOptions& options);

// Decodes a stored record (either format) for the event with `id`, after
// checking what `check` asks (Options::verify_on_read): `fast` — a format-2
// record's fast check, before anything is decoded; `full` — that and the
// SHA-256 checksum. A format-1 record has no fast check: `fast` and `full`
// both verify its checksum. Throws Error(corruption) naming the ID when the
// bytes are not a valid record or a check fails.
RecordedEvent read_record(const EventId& id, std::string_view bytes, ReadCheck check);

// The fast check alone (true for a format-1 record, which has none).
bool fast_check_matches(const EventId& id, std::string_view bytes) noexcept;
// The same for the stored key of the event (its 20 bytes, as read).
bool fast_check_matches(std::string_view event_key, std::string_view bytes) noexcept;
// Throws Error(corruption) naming the ID iff the fast check does not match.
void require_fast_check(const EventId& id, std::string_view bytes);
// The same with the event's stored key at hand (`id` decoded from it).
void require_fast_check(const EventId& id, std::string_view event_key, std::string_view bytes);

// Decodes without any check (see read_record). When `stored_tail` is given,
// a format-1 record in canonical form stores it the bytes its checksum covers
// after the ID (an empty view otherwise), for checksum_matches.
RecordedEvent decode_record(const EventId& id, std::string_view bytes, std::string_view* stored_tail = nullptr);
// The same into `e`, every field of it set, reusing its strings' storage
// (a cursor's chunk decodes without allocating once its events have grown).
// On an error `e` holds part of the record.
void decode_record_into(const EventId& id, std::string_view bytes, std::string_view* stored_tail, RecordedEvent& e);

// True iff the event's checksum matches its fields (by its record format).
bool checksum_matches(const RecordedEvent& event, std::string_view stored_tail = {});

// Throws Error(corruption) naming the ID iff the checksum does not match.
void verify_checksum(const RecordedEvent& event, std::string_view stored_tail = {});

}  // namespace lighthouse::codec
