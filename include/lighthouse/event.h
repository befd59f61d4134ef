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

  // The size the event-size limit applies to.
  std::size_t content_size() const noexcept;
};

using Sha256 = std::array<unsigned char, 32>;

// An event as stored. `checksum` is SHA-256 of the canonical encoding of
// (id, type, aggregate, aggregate_version, content_type, metadata, data) —
// see docs/formats.md; `chain` is SHA-256(previous chain ‖ checksum).
struct LIGHTHOUSE_API RecordedEvent {
  EventId id;
  std::string type;
  std::string aggregate;
  std::uint64_t aggregate_version = 0;  // 1-based within the aggregate; 0 without one
  ContentType content_type = ContentType::msgpack;
  Metadata metadata;
  std::string data;
  std::optional<std::string> idempotency_key;
  Sha256 checksum{};
  Sha256 chain{};
};

// Lower-case hexadecimal of a digest.
LIGHTHOUSE_API std::string to_hex(const Sha256& digest);

}  // namespace lighthouse
