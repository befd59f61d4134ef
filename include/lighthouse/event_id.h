// EventId — the store-wide, monotonic identity of an event.
//
// Text form: "{timestamp_ns}_{sequence}_{node_id}", decimal, no padding.
// Binary key: 20 bytes big-endian (u64 timestamp_ns, u64 sequence, u32
// node_id), so byte order is numeric order. Inside one store both timestamps
// and sequences strictly increase with every event, so IDs sort by either.
#pragma once

#include <array>
#include <compare>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "lighthouse/export.h"

namespace lighthouse {

struct LIGHTHOUSE_API EventId {
  static constexpr std::size_t kKeySize = 20;
  using Key = std::array<unsigned char, kKeySize>;

  std::uint64_t timestamp_ns = 0;  // wall clock, made strictly increasing per event
  std::uint64_t sequence = 0;      // store-wide, gap-free position, starting at 1
  std::uint32_t node_id = 0;       // the writer that assigned the ID

  std::string to_string() const;
  Key to_key() const noexcept;

  // Parses the text form strictly: three decimal fields separated by '_', no
  // sign, space or leading zero (a lone "0" is allowed), each within its type.
  // Errors: invalid_argument naming the text otherwise.
  static EventId parse(std::string_view text);
  // Returns the parsed ID, or nothing when `text` is not a valid ID.
  static std::optional<EventId> try_parse(std::string_view text) noexcept;
  // REQUIRES: key.size() == kKeySize.
  // Errors: invalid_argument (a key of another size).
  static EventId from_key(std::string_view key);

  friend auto operator<=>(const EventId&, const EventId&) = default;
  friend bool operator==(const EventId&, const EventId&) = default;
};

}  // namespace lighthouse
