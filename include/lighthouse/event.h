// Events as a caller proposes them (EventData) and as the store returns them
// (RecordedEvent).
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "lighthouse/event_id.h"
#include "lighthouse/export.h"

namespace lighthouse {

// What the bytes in `data` are. Stored as a field; never guessed.
enum class ContentType : std::uint8_t {
  msgpack = 0,
  json = 1,
  bytes = 2,  // opaque
};

LIGHTHOUSE_API std::string_view to_string(ContentType type) noexcept;
// Accepts "msgpack", "json", "bytes".
// Errors: invalid_argument naming the text.
LIGHTHOUSE_API ContentType parse_content_type(std::string_view text);

// Metadata is ordered by key, so that it has one canonical encoding.
using Metadata = std::map<std::string, std::string>;

// The W3C Trace Context of the operation that appended an event
// (https://www.w3.org/TR/trace-context/): `traceparent` is
// "00-<32 hex trace id>-<16 hex parent id>-<2 hex flags>" in lower case,
// neither ID all zeros; `tracestate` is empty or at most 512 bytes of
// printable ASCII. Stored with the event and covered by its checksum, but
// not by the content an idempotent retry must repeat: a retry from another
// trace is still the same event.
struct LIGHTHOUSE_API TraceContext {
  std::string traceparent;
  std::string tracestate;

  friend bool operator==(const TraceContext&, const TraceContext&) = default;
};

// Errors: invalid_argument saying what is wrong with the trace context.
LIGHTHOUSE_API void check_trace_context(const TraceContext& context);

// An event proposed for appending.
//
// Limits (Options::limits): type 1–255 bytes; aggregate 0–255 bytes (empty
// means the event belongs to no aggregate); idempotency key, when present,
// 1–128 bytes; metadata keys 1–255 bytes. Names starting with '$' (type and
// aggregate) are reserved for the store's own events. The event's size —
// type + aggregate + metadata keys and values + data — is at most
// Limits::max_event_bytes.
struct LIGHTHOUSE_API EventData {
  std::string type;
  std::string aggregate;
  ContentType content_type = ContentType::msgpack;
  Metadata metadata;
  std::string data;
  std::optional<std::string> idempotency_key;
  // The version of the event's schema, set by the writer (1 and up): what a
  // reader that upcasts old events goes by. Covered by the checksum; like
  // the trace context, not part of the content an idempotent retry compares.
  std::uint32_t schema_version = 1;
  std::optional<TraceContext> trace_context;

  // The size the event-size limit applies to.
  std::size_t content_size() const noexcept;
};

using Sha256 = std::array<unsigned char, 32>;

// An event as stored. `checksum` is SHA-256 over every field (record
// format 2: over the content hash, the other fields' hash, the ID, the
// aggregate version and the schema version — docs/formats.md); `chain` is
// SHA-256(previous chain ‖ checksum).
struct LIGHTHOUSE_API RecordedEvent {
  EventId id;
  std::string type;
  std::string aggregate;
  std::uint64_t aggregate_version = 0;  // 1-based within the aggregate; 0 without one
  ContentType content_type = ContentType::msgpack;
  Metadata metadata;
  std::string data;
  std::optional<std::string> idempotency_key;
  std::uint32_t schema_version = 1;
  std::optional<TraceContext> trace_context;
  Sha256 checksum{};
  Sha256 chain{};
  // The record format the checksum was computed by: 2, or 1 for an event of
  // a format-1 store or archive (no schema version, no trace context).
  std::uint8_t record_format = 2;
};

// What a read checks of each event: see Options::verify_on_read.
enum class ReadCheck : std::uint8_t { off, fast, full };
LIGHTHOUSE_API std::string_view to_string(ReadCheck check) noexcept;
// Accepts "off", "fast", "full". Errors: invalid_argument naming the text.
LIGHTHOUSE_API ReadCheck parse_read_check(std::string_view text);

// Lower-case hexadecimal of a digest.
LIGHTHOUSE_API std::string to_hex(const Sha256& digest);

}  // namespace lighthouse
