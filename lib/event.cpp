#include "lighthouse/event.h"
#include "text.h"

#include "lighthouse/error.h"
#include "lighthouse/expected_version.h"

namespace lighthouse {

std::string_view to_string(ContentType type) noexcept {
  switch (type) {
    case ContentType::msgpack: return "msgpack";
    case ContentType::json: return "json";
    case ContentType::bytes: return "bytes";
  }
  return "unknown";
}

ContentType parse_content_type(std::string_view text) {
  if (text == "msgpack") return ContentType::msgpack;
  if (text == "json") return ContentType::json;
  if (text == "bytes") return ContentType::bytes;
  throw Error(ErrorCode::invalid_argument,
              "unknown content type " + text::quoted(text) + ": expected msgpack, json or bytes");
}

std::size_t EventData::content_size() const noexcept {
  std::size_t size = type.size() + aggregate.size() + data.size();
  for (const auto& [key, value] : metadata) size += key.size() + value.size();
  return size;
}

std::string to_hex(const Sha256& digest) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(digest.size() * 2);
  for (unsigned char b : digest) {
    out += kDigits[b >> 4];
    out += kDigits[b & 0xf];
  }
  return out;
}

std::string ExpectedVersion::to_string() const {
  switch (kind_) {
    case Kind::any: return "any";
    case Kind::no_stream: return "no_stream";
    case Kind::stream_exists: return "stream_exists";
    case Kind::exact: return std::to_string(version_);
  }
  return "unknown";
}

}  // namespace lighthouse
