#include "otlp/encoding.h"

#include <algorithm>
#include <cstring>
#include <nlohmann/json.hpp>

#include "lighthouse/version.h"

// A span is some forty small pieces: each writer is inlined where it is
// called, so that a piece's tag (a constant) is one byte stored, not a call
// with a varint loop.
#define LH_INLINE [[gnu::always_inline]] inline

namespace lighthouse::tool::otlp {
namespace {

constexpr const char* kScope = "lighthouse";

std::size_t varint_size(std::uint64_t v) {
  std::size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

// --- Protobuf's wire format: varints, fixed-width and length-delimited fields.
class Message {
 public:
  // proto3 leaves a scalar at its default out; a oneof's member is written
  // whatever its value (`even_default`).
  LH_INLINE void uint(unsigned field, std::uint64_t v, bool even_default = false) {
    if (v == 0 && !even_default) return;
    tagged_varint(field, 0, v);
  }
  LH_INLINE void fixed64(unsigned field, std::uint64_t v) {
    if (v == 0) return;
    little_endian(field, 1, v, 8);
  }
  LH_INLINE void fixed32(unsigned field, std::uint32_t v) {
    if (v == 0) return;
    little_endian(field, 5, v, 4);
  }
  void dbl(unsigned field, double d) {
    std::uint64_t bits = 0;
    std::memcpy(&bits, &d, sizeof bits);
    little_endian(field, 1, bits, 8);
  }
  LH_INLINE void bytes(unsigned field, std::string_view v, bool even_default = false) {
    if (v.empty() && !even_default) return;
    header(field, v.size());
    append(v);
  }
  // A length-delimited field whose content, `size` bytes, the caller
  // appends next (no buffer of its own for a message that holds the rest).
  LH_INLINE void header(unsigned field, std::size_t size) { tagged_varint(field, 2, size); }
  void message(unsigned field, const Message& m) {
    header(field, m.size_);
    append(m.view());
  }
  // A length-delimited field whose content `body(*this)` writes in place:
  // `kept` bytes are kept for the length (a span's, 128 to 16,383 bytes,
  // takes two; a link's or a status's, under 128, one), and the content is
  // moved only when its length takes another number of bytes. No scratch
  // buffer, no copy of the content.
  template <class Body>
  void nested(unsigned field, Body&& body, std::size_t kept = 2) {
    used(put_varint(room(12), static_cast<std::uint64_t>(field) << 3 | 2));
    const std::size_t at = size_;
    room(kept);
    size_ += kept;
    body(*this);
    const std::size_t length = size_ - at - kept;
    const std::size_t width = varint_size(length);
    if (width != kept) {
      if (width > kept) room(width - kept);
      std::memmove(out_.data() + at + width, out_.data() + at + kept, length);
      size_ = at + width + length;
    }
    put_varint(out_.data() + at, length);
  }
  LH_INLINE void append(std::string_view raw) {
    if (raw.empty()) return;
    char* p = room(raw.size());
    std::memcpy(p, raw.data(), raw.size());
    used(p + raw.size());
  }
  void clear() noexcept { size_ = 0; }
  void reserve(std::size_t n) {
    if (n > out_.size()) out_.resize(n);
  }
  std::size_t size() const noexcept { return size_; }
  std::string_view view() const noexcept { return {out_.data(), size_}; }
  std::string take() {
    out_.resize(size_);
    size_ = 0;
    return std::move(out_);
  }

 private:
  // The bytes are written through a pointer into `out_`, which is kept
  // larger than what is written (`size_`): a span is some forty small
  // pieces, each without a string's own bookkeeping.
  LH_INLINE char* room(std::size_t n) {
    if (out_.size() - size_ < n) [[unlikely]] grow(n);
    return out_.data() + size_;
  }
  [[gnu::noinline]] void grow(std::size_t n) { out_.resize(std::max(out_.size() * 2, size_ + n + 256)); }
  void used(char* end) noexcept { size_ = static_cast<std::size_t>(end - out_.data()); }
  LH_INLINE static char* put_varint(char* out, std::uint64_t v) noexcept {
    while (v >= 0x80) {
      *out++ = static_cast<char>((v & 0x7f) | 0x80);
      v >>= 7;
    }
    *out++ = static_cast<char>(v);
    return out;
  }
  LH_INLINE void tagged_varint(unsigned field, unsigned wire, std::uint64_t v) {
    char* p = put_varint(room(20), static_cast<std::uint64_t>(field) << 3 | wire);
    used(put_varint(p, v));
  }
  LH_INLINE void little_endian(unsigned field, unsigned wire, std::uint64_t v, int bytes) {
    char* p = put_varint(room(18), static_cast<std::uint64_t>(field) << 3 | wire);
    for (int i = 0; i < bytes; ++i) *p++ = static_cast<char>(v >> (8 * i));
    used(p);
  }

  std::string out_;
  std::size_t size_ = 0;
};

template <std::size_t N>
std::string_view raw(const std::array<std::uint8_t, N>& a) {
  return {reinterpret_cast<const char*>(a.data()), N};
}

// common.v1.AnyValue (string_value 1, bool_value 2, int_value 3,
// double_value 4) inside common.v1.KeyValue (key 1, value 2), repeated as
// field `field` of `into`: written in place, their sizes known beforehand
// (a span has a dozen attributes; no buffer per attribute).
// The KeyValue's header, its key and the AnyValue's header, for a value
// of `value_size` bytes that the caller writes next.
LH_INLINE void key_value(Message& into, unsigned field, std::string_view key, std::size_t value_size) {
  const std::size_t key_size = key.empty() ? 0 : 1 + varint_size(key.size()) + key.size();
  into.header(field, key_size + 1 + varint_size(value_size) + value_size);
  into.bytes(1, key);
  into.header(2, value_size);
}
LH_INLINE void string_attribute(Message& into, unsigned field, std::string_view key, std::string_view s) {
  key_value(into, field, key, 1 + varint_size(s.size()) + s.size());
  into.bytes(1, s, true);
}
LH_INLINE void bool_attribute(Message& into, unsigned field, std::string_view key, bool b) {
  key_value(into, field, key, 2);
  into.uint(2, b ? 1 : 0, true);
}
LH_INLINE void int_attribute(Message& into, unsigned field, std::string_view key, std::int64_t i) {
  key_value(into, field, key, 1 + varint_size(static_cast<std::uint64_t>(i)));
  into.uint(3, static_cast<std::uint64_t>(i), true);
}

void attribute(Message& into, unsigned field, std::string_view key, const tracing::AttributeValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) {
    string_attribute(into, field, key, *s);
  } else if (const auto* b = std::get_if<bool>(&v)) {
    bool_attribute(into, field, key, *b);
  } else if (const auto* i = std::get_if<std::int64_t>(&v)) {
    int_attribute(into, field, key, *i);
  } else {
    key_value(into, field, key, 9);
    into.dbl(4, std::get<double>(v));
  }
}

template <class Attributes>
void attributes(Message& into, unsigned field, const Attributes& attrs) {
  for (const auto& [key, value] : attrs) attribute(into, field, key, value);
}

// trace.v1.Span: trace_id 1, span_id 2, trace_state 3, parent_span_id 4,
// name 5, kind 6, start_time_unix_nano 7, end_time_unix_nano 8,
// attributes 9, events 11, links 13, status 15, flags 16.
void span_message(Message& m, const tracing::SpanData& s) {
  m.bytes(1, raw(s.context.trace_id.bytes));
  m.bytes(2, raw(s.context.span_id.bytes));
  m.bytes(3, s.context.tracestate);
  if (s.parent_span_id.valid()) m.bytes(4, raw(s.parent_span_id.bytes));
  m.bytes(5, s.name, true);
  m.uint(6, static_cast<std::uint64_t>(s.kind));
  m.fixed64(7, s.start_ns);
  m.fixed64(8, s.end_ns);
  attributes(m, 9, s.attributes);
  for (const auto& e : s.events) {  // Span.Event: time_unix_nano 1, name 2, attributes 3
    m.nested(11, [&](Message& em) {
      em.fixed64(1, e.time_ns);
      em.bytes(2, e.name);
      attributes(em, 3, e.attributes);
    });
  }
  for (const auto& l : s.links) {  // Span.Link: trace_id 1, span_id 2, trace_state 3, attributes 4, flags 6
    m.nested(13, [&](Message& lm) {
      lm.bytes(1, raw(l.context.trace_id.bytes));
      lm.bytes(2, raw(l.context.span_id.bytes));
      lm.bytes(3, l.context.tracestate);
      attributes(lm, 4, l.attributes);
      lm.fixed32(6, l.context.flags);
    }, 1);
  }
  if (s.status != tracing::StatusCode::unset) {  // Status: message 2, code 3
    m.nested(15, [&](Message& st) {
      st.bytes(2, s.status_message);
      st.uint(3, static_cast<std::uint64_t>(s.status));
    }, 1);
  }
  m.fixed32(16, s.context.flags);
}

// An AppendSpan, as span_message writes its to_span_data(): the same
// fields in the same order, byte for byte (a unit test compares them),
// with no SpanData made and each attribute's type known.
void span_message(Message& m, const tracing::AppendSpan& s) {
  m.bytes(1, raw(s.trace_id.bytes));
  m.bytes(2, raw(s.span_id.bytes));
  m.bytes(3, s.tracestate);
  if (s.parent_span_id.valid()) m.bytes(4, raw(s.parent_span_id.bytes));
  m.bytes(5, s.name, true);
  m.uint(6, static_cast<std::uint64_t>(s.kind));
  m.fixed64(7, s.start_ns);
  m.fixed64(8, s.end_ns);
  string_attribute(m, 9, "db.system", "lighthouse");
  string_attribute(m, 9, "db.operation.name", s.operation);
  int_attribute(m, 9, "lighthouse.batch.events", s.batch_events);
  int_attribute(m, 9, "lighthouse.queue_time_ns", s.queue_ns);
  if (!s.aggregate.empty()) string_attribute(m, 9, "lighthouse.aggregate", s.aggregate);
  if (s.has_first_sequence) {
    int_attribute(m, 9, "lighthouse.first_sequence", static_cast<std::int64_t>(s.first_sequence));
  }
  int_attribute(m, 9, "lighthouse.events", s.events);
  bool_attribute(m, 9, "lighthouse.replayed", s.replayed);
  if (s.commit_trace_id.valid() && s.commit_span_id.valid()) {
    m.nested(13, [&](Message& lm) {
      lm.bytes(1, raw(s.commit_trace_id.bytes));
      lm.bytes(2, raw(s.commit_span_id.bytes));
      lm.fixed32(6, s.commit_flags);
    }, 1);
  }
  m.fixed32(16, s.flags);
}

// --- OTLP/JSON -----------------------------------------------------------------

nlohmann::json any_json(const tracing::AttributeValue& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return {{"stringValue", *s}};
  if (const auto* b = std::get_if<bool>(&v)) return {{"boolValue", *b}};
  if (const auto* i = std::get_if<std::int64_t>(&v)) return {{"intValue", std::to_string(*i)}};
  return {{"doubleValue", std::get<double>(v)}};
}

template <class Attributes>
nlohmann::json attributes_json(const Attributes& attrs) {
  nlohmann::json out = nlohmann::json::array();
  for (const auto& [key, value] : attrs) out.push_back({{"key", std::string(key)}, {"value", any_json(value)}});
  return out;
}

nlohmann::json span_json(const tracing::SpanData& s) {
  nlohmann::json j = {{"traceId", s.context.trace_id.hex()},
                      {"spanId", s.context.span_id.hex()},
                      {"name", s.name},
                      {"kind", static_cast<int>(s.kind)},
                      {"startTimeUnixNano", std::to_string(s.start_ns)},
                      {"endTimeUnixNano", std::to_string(s.end_ns)},
                      {"attributes", attributes_json(s.attributes)},
                      {"flags", s.context.flags}};
  if (!s.context.tracestate.empty()) j["traceState"] = s.context.tracestate;
  if (s.parent_span_id.valid()) j["parentSpanId"] = s.parent_span_id.hex();
  if (!s.events.empty()) {
    j["events"] = nlohmann::json::array();
    for (const auto& e : s.events) {
      j["events"].push_back(
          {{"timeUnixNano", std::to_string(e.time_ns)}, {"name", e.name}, {"attributes", attributes_json(e.attributes)}});
    }
  }
  if (!s.links.empty()) {
    j["links"] = nlohmann::json::array();
    for (const auto& l : s.links) {
      nlohmann::json lj = {{"traceId", l.context.trace_id.hex()},
                           {"spanId", l.context.span_id.hex()},
                           {"attributes", attributes_json(l.attributes)},
                           {"flags", l.context.flags}};
      if (!l.context.tracestate.empty()) lj["traceState"] = l.context.tracestate;
      j["links"].push_back(lj);
    }
  }
  if (s.status != tracing::StatusCode::unset) {
    j["status"] = {{"code", static_cast<int>(s.status)}};
    if (!s.status_message.empty()) j["status"]["message"] = s.status_message;
  }
  return j;
}

}  // namespace

// collector.trace.v1.ExportTraceServiceRequest: resource_spans 1;
// ResourceSpans: resource 1, scope_spans 2; Resource: attributes 1;
// ScopeSpans: scope 1, spans 2; InstrumentationScope: name 1, version 2.
std::string encode_protobuf(const Resource& resource, const std::vector<tracing::SpanData>& spans,
                            const std::vector<tracing::AppendSpan>& appends) {
  // The spans are written once, each through one scratch buffer, into the
  // body of ScopeSpans; the messages around it are headers whose sizes are
  // then known.
  Message res;
  attributes(res, 1, resource.attributes);
  Message scope;
  scope.bytes(1, kScope);
  scope.bytes(2, LIGHTHOUSE_VERSION);
  // Scratch kept by the thread (the exporter's) from batch to batch: a
  // batch's body is some 100 KB, which a new buffer would take from fresh
  // pages each time.
  thread_local Message spans_body;
  spans_body.clear();
  for (const auto& s : spans) spans_body.nested(2, [&](Message& m) { span_message(m, s); });
  for (const auto& s : appends) spans_body.nested(2, [&](Message& m) { span_message(m, s); });
  Message scope_header;
  scope_header.message(1, scope);
  const std::size_t scope_spans_size = scope_header.size() + spans_body.size();
  Message resource_header;
  resource_header.message(1, res);
  // ResourceSpans: its resource, then ScopeSpans' tag (field 2: one byte), length and body.
  const std::size_t resource_spans_size =
      resource_header.size() + 1 + varint_size(scope_spans_size) + scope_spans_size;
  Message request;
  request.reserve(resource_spans_size + 16);
  request.header(1, resource_spans_size);  // ExportTraceServiceRequest.resource_spans
  request.append(resource_header.view());  // ResourceSpans.resource
  request.header(2, scope_spans_size);     // ResourceSpans.scope_spans
  request.append(scope_header.view());     // ScopeSpans.scope
  request.append(spans_body.view());       // ScopeSpans.spans
  return request.take();
}

std::string encode_json(const Resource& resource, const std::vector<tracing::SpanData>& spans,
                        const std::vector<tracing::AppendSpan>& appends) {
  nlohmann::json list = nlohmann::json::array();
  for (const auto& s : spans) list.push_back(span_json(s));
  for (const auto& s : appends) list.push_back(span_json(s.to_span_data()));
  const nlohmann::json request = {
      {"resourceSpans",
       {{{"resource", {{"attributes", attributes_json(resource.attributes)}}},
         {"scopeSpans", {{{"scope", {{"name", kScope}, {"version", LIGHTHOUSE_VERSION}}}, {"spans", list}}}}}}}};
  // Attribute values are the store's own strings: not always UTF-8 (an
  // event type may be any bytes); replace what is not.
  return request.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

}  // namespace lighthouse::tool::otlp
