#include "lighthouse/event_id.h"
#include "text.h"

#include <charconv>
#include <limits>

#include "lighthouse/error.h"

namespace lighthouse {
namespace {

void put_be(unsigned char* out, std::uint64_t value, int bytes) noexcept {
  for (int i = bytes - 1; i >= 0; --i) {
    out[i] = static_cast<unsigned char>(value & 0xff);
    value >>= 8;
  }
}

std::uint64_t get_be(const unsigned char* in, int bytes) noexcept {
  std::uint64_t value = 0;
  for (int i = 0; i < bytes; ++i) value = (value << 8) | in[i];
  return value;
}

// A canonical unsigned decimal: digits only, no leading zero unless "0".
template <typename T>
bool parse_field(std::string_view text, T& out) noexcept {
  if (text.empty() || text.size() > std::numeric_limits<T>::digits10 + 1) return false;
  if (text.size() > 1 && text[0] == '0') return false;
  for (char c : text) {
    if (c < '0' || c > '9') return false;
  }
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), out);
  return ec == std::errc() && end == text.data() + text.size();
}

}  // namespace

std::string EventId::to_string() const {
  return std::to_string(timestamp_ns) + '_' + std::to_string(sequence) + '_' +
         std::to_string(node_id);
}

EventId::Key EventId::to_key() const noexcept {
  Key key;
  put_be(key.data(), timestamp_ns, 8);
  put_be(key.data() + 8, sequence, 8);
  put_be(key.data() + 16, node_id, 4);
  return key;
}

std::optional<EventId> EventId::try_parse(std::string_view text) noexcept {
  auto first = text.find('_');
  if (first == std::string_view::npos) return std::nullopt;
  auto second = text.find('_', first + 1);
  if (second == std::string_view::npos) return std::nullopt;
  EventId id;
  if (!parse_field(text.substr(0, first), id.timestamp_ns) ||
      !parse_field(text.substr(first + 1, second - first - 1), id.sequence) ||
      !parse_field(text.substr(second + 1), id.node_id)) {
    return std::nullopt;
  }
  return id;
}

EventId EventId::parse(std::string_view text) {
  if (auto id = try_parse(text)) return *id;
  throw Error(ErrorCode::invalid_argument,
              "malformed event ID " + text::quoted(text, 80) +
                  ": expected {timestamp_ns}_{sequence}_{node_id}, unsigned decimals "
                  "without sign, spaces or leading zeros");
}

EventId EventId::from_key(std::string_view key) {
  if (key.size() != kKeySize) {
    throw Error(ErrorCode::invalid_argument,
                "event key of " + std::to_string(key.size()) + " bytes: expected " +
                    std::to_string(kKeySize));
  }
  const auto* p = reinterpret_cast<const unsigned char*>(key.data());
  EventId id;
  id.timestamp_ns = get_be(p, 8);
  id.sequence = get_be(p + 8, 8);
  id.node_id = static_cast<std::uint32_t>(get_be(p + 16, 4));
  return id;
}

}  // namespace lighthouse
