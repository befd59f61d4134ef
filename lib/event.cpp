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

std::string_view to_string(ReadCheck check) noexcept {
  switch (check) {
    case ReadCheck::off: return "off";
    case ReadCheck::fast: return "fast";
    case ReadCheck::full: return "full";
  }
  return "unknown";
}

ReadCheck parse_read_check(std::string_view text) {
  if (text == "off") return ReadCheck::off;
  if (text == "fast") return ReadCheck::fast;
  if (text == "full") return ReadCheck::full;
  throw Error(ErrorCode::invalid_argument,
              "unknown read check " + text::quoted(text) + ": expected off, fast or full");
}

namespace {

bool lower_hex(std::string_view s) noexcept {
  for (char c : s) {
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  }
  return true;
}

bool all_zeros(std::string_view s) noexcept { return s.find_first_not_of('0') == std::string_view::npos; }

}  // namespace

void check_trace_context(const TraceContext& context) {
  const std::string_view p = context.traceparent;
  // version "00": 2 + 1 + 32 + 1 + 16 + 1 + 2 characters.
  const bool shape = p.size() == 55 && p[2] == '-' && p[35] == '-' && p[52] == '-' && lower_hex(p.substr(0, 2)) &&
                     lower_hex(p.substr(3, 32)) && lower_hex(p.substr(36, 16)) && lower_hex(p.substr(53, 2));
  if (!shape || p.substr(0, 2) != "00") {
    throw Error(ErrorCode::invalid_argument,
                "trace context: traceparent " + text::quoted(p) +
                    " is not a W3C traceparent of version 00 (00-<32 hex>-<16 hex>-<2 hex>, lower case)");
  }
  if (all_zeros(p.substr(3, 32)) || all_zeros(p.substr(36, 16))) {
    throw Error(ErrorCode::invalid_argument,
                "trace context: traceparent " + text::quoted(p) + " has an all-zero trace or parent id");
  }
  const std::string_view state = context.tracestate;
  if (state.size() > 512) {
    throw Error(ErrorCode::invalid_argument, "trace context: tracestate is " + std::to_string(state.size()) +
                                                 " bytes: the limit is 512");
  }
  if (!text::printable_ascii(state)) {
    throw Error(ErrorCode::invalid_argument, "trace context: tracestate " + text::quoted(state) +
                                                 " holds a character outside printable ASCII");
  }
}

std::string to_hex(const Sha256& digest) {
  return text::lower_hex({reinterpret_cast<const char*>(digest.data()), digest.size()});
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
