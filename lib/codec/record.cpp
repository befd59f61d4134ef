#include "codec/record.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

#include <algorithm>
#include <cstring>
#include <optional>

#include "codec/msgpack_reader.h"
#include "codec/record_internal.h"
#include "codec/sha256.h"
#include "lighthouse/error.h"
#include "lighthouse/tracing.h"

namespace lighthouse::codec {

using internal::corrupt;
using internal::metadata_of;
using internal::pack_checksummed_fields;
using internal::pack_digest;

namespace {

constexpr std::uint32_t kFieldsV1 = 11;
constexpr std::uint32_t kFieldsV2 = 13;

void put_be(char* out, std::uint64_t value, int bytes) {
  for (int i = bytes - 1; i >= 0; --i) {
    out[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
}

std::string_view key_bytes(const EventId::Key& key) {
  return {reinterpret_cast<const char*>(key.data()), key.size()};
}

std::uint64_t get_be64(const char* in) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
  return v;
}

// A format-1 record starts with fixarray 11 and the uint 1; anything else
// is read as format 2 (one flipped byte cannot turn one into the other).
bool is_format1(std::string_view bytes) noexcept {
  return bytes.size() >= 2 && static_cast<unsigned char>(bytes[0]) == 0x9b && bytes[1] == 0x01;
}

// False when `text` is not of version 00, the one form the bytes give back
// exactly (SpanContext::parse takes lower-case hex only).
bool traceparent_bytes(std::string_view text, char (&out)[kTraceparentBytes]) {
  if (!text.starts_with("00")) return false;
  const auto context = tracing::SpanContext::parse(text);
  if (!context) return false;
  store_traceparent(*context, out);
  return true;
}

std::string traceparent_text(std::string_view bytes) {
  tracing::SpanContext context;
  std::memcpy(context.trace_id.bytes.data(), bytes.data(), 16);
  std::memcpy(context.span_id.bytes.data(), bytes.data() + 16, 8);
  context.flags = static_cast<std::uint8_t>(bytes[24]);
  return context.traceparent();
}

// What the extras hash covers: [traceparent text, tracestate], whichever
// form the record stores it in.
void pack_trace_context(Packer& pk, const TraceContext* context) {
  if (context == nullptr) {
    pk.pack_nil();
    return;
  }
  pk.pack_array(2);
  pack_str(pk, context->traceparent);
  pack_str(pk, context->tracestate);
}

// What a record stores: [bin 25, tracestate]. A traceparent not of that one
// form (none passes validation) is stored as its text, the form records had
// before 2026-12, which are read as well.
void pack_stored_trace_context(Packer& pk, const TraceContext* context, const char* known) {
  if (context == nullptr) {
    pk.pack_nil();
    return;
  }
  pk.pack_array(2);
  char bytes[kTraceparentBytes];
  if (known != nullptr) {
    pack_bin(pk, std::string_view(known, kTraceparentBytes));
  } else if (traceparent_bytes(context->traceparent, bytes)) {
    pack_bin(pk, std::string_view(bytes, sizeof bytes));
  } else {
    pack_str(pk, context->traceparent);
  }
  pack_str(pk, context->tracestate);
}

void pack_idempotency_key(Packer& pk, const std::string* key) {
  if (key != nullptr) {
    pack_str(pk, *key);
  } else {
    pk.pack_nil();
  }
}

}  // namespace

void store_traceparent(const tracing::SpanContext& context, char (&out)[kTraceparentBytes]) noexcept {
  std::memcpy(out, context.trace_id.bytes.data(), 16);
  std::memcpy(out + 16, context.span_id.bytes.data(), 8);
  out[24] = static_cast<char>(context.flags);
}

Sha256 content_hash(const RecordFields& f) {
  thread_local StringBuffer buf;
  buf.bytes.clear();
  Packer pk(buf);
  pk.pack_array(5);
  pack_str(pk, f.type);
  pack_str(pk, f.aggregate);
  pk.pack_uint8(static_cast<std::uint8_t>(f.content_type));
  internal::pack_metadata(pk, metadata_of(f));
  pack_bin(pk, f.data);
  return sha256(buf.bytes);
}

Sha256 extras_hash(const RecordFields& f) {
  // Most events have neither: their extras hash is one constant.
  static const Sha256 kNone = sha256(std::string_view("\x92\xc0\xc0", 3));
  if (f.idempotency_key == nullptr && f.trace_context == nullptr) return kNone;
  thread_local StringBuffer buf;  // a traced append's extras, per event: no allocation once warm
  buf.bytes.clear();
  Packer pk(buf);
  pk.pack_array(2);
  pack_idempotency_key(pk, f.idempotency_key);
  pack_trace_context(pk, f.trace_context);
  return sha256(buf.bytes);
}

Sha256 checksum_v2(const ContentHashes& hashes, const EventId& id, std::uint64_t aggregate_version,
                   std::uint32_t schema_version) {
  char in[96];
  std::memcpy(in, hashes.content.data(), 32);
  std::memcpy(in + 32, hashes.extras.data(), 32);
  const EventId::Key key = id.to_key();
  std::memcpy(in + 64, key.data(), 20);
  put_be(in + 84, aggregate_version, 8);
  put_be(in + 92, schema_version, 4);
  return sha256(std::string_view(in, sizeof in));
}

Sha256 event_checksum(const RecordedEvent& e) {
  const RecordFields f = RecordFields::of(e);
  if (e.record_format == kRecordFormat1) return checksum_v1(e.id, f);
  return checksum_v2(content_hashes(f), e.id, e.aggregate_version, e.schema_version);
}

Sha256 chain_next(const Sha256& previous, const Sha256& checksum) {
  Sha256Hasher hasher;
  hasher.update(previous);
  hasher.update(checksum);
  return hasher.finish();
}

void to_format2(RecordedEvent& e, Sha256& chain) {
  if (e.record_format == kRecordFormat1) {
    e.record_format = kRecordFormat2;
    e.checksum = event_checksum(e);
    e.chain = chain_next(chain, e.checksum);
  }
  chain = e.chain;
}

std::uint64_t fast_check(std::string_view event_key, std::string_view packed) {
  const XXH64_hash_t seed = XXH3_64bits(event_key.data(), event_key.size());
  return XXH3_64bits_withSeed(packed.data(), packed.size(), seed);
}

bool peek_record(std::string_view bytes, RecordHead& head) noexcept {
  MsgpackReader r(bytes);
  std::uint32_t fields = 0;
  std::uint64_t version = 0, flags = 0;
  return r.array(fields) && r.uint(version) &&
         ((fields == kFieldsV1 && version == kRecordFormat1) || (fields == kFieldsV2 && version == kRecordFormat2)) &&
         r.uint(flags) && r.str(head.type) && r.str(head.aggregate) && r.uint(head.aggregate_version);
}

namespace {

// The record up to and including its data field, compressed when the
// options say so and it helps.
void pack_record_fields(StringBuffer& buf, const RecordFields& f, const EncodeOptions& options, unsigned format) {
  unsigned flags = 0;
  std::string compressed;
  std::string_view data = f.data;
  if (options.compression_threshold != 0 && f.data.size() >= options.compression_threshold) {
    compressed = internal::compress(f.data, options.compression_level);
    if (compressed.size() < f.data.size()) {
      flags |= kFlagCompressed;
      data = compressed;
    }
  }
  buf.bytes.clear();
  buf.bytes.reserve(192 + f.type.size() + f.aggregate.size() + data.size() +
                    (f.idempotency_key != nullptr ? f.idempotency_key->size() : 0));
  Packer pk(buf);
  pk.pack_array(format == kRecordFormat1 ? kFieldsV1 : kFieldsV2);
  pk.pack_uint8(static_cast<std::uint8_t>(format));
  pk.pack_uint8(static_cast<std::uint8_t>(flags));
  pack_checksummed_fields(pk, f, data);
  pack_idempotency_key(pk, f.idempotency_key);
  if (format != kRecordFormat1) {
    pk.pack_uint32(f.schema_version);
    pack_stored_trace_context(pk, f.trace_context, f.traceparent_bytes);
  }
}

// Checksum, chain and (format 2) the fast check over the whole record.
void pack_record_trailer(StringBuffer& buf, const EventId& id, const Sha256& checksum, const Sha256& chain,
                         unsigned format) {
  Packer pk(buf);
  pack_digest(pk, checksum);
  pack_digest(pk, chain);
  if (format == kRecordFormat1) return;
  const EventId::Key key = id.to_key();
  char check[kFastCheckBytes];
  put_be(check, fast_check(key_bytes(key), buf.bytes), 8);
  buf.bytes.append(check, sizeof check);
}

}  // namespace

void encode_record(std::string& out, const EventId& id, const RecordFields& f, const Sha256& checksum,
                   const Sha256& chain, const EncodeOptions& options, unsigned format) {
  StringBuffer buf{std::move(out)};
  pack_record_fields(buf, f, options, format);
  pack_record_trailer(buf, id, checksum, chain, format);
  out = std::move(buf.bytes);
}

SealedRecord seal_record(std::string& out, const EventId& id, const RecordFields& f, const ContentHashes& hashes,
                         const Sha256& previous_chain, const EncodeOptions& options) {
  StringBuffer buf{std::move(out)};
  pack_record_fields(buf, f, options, kRecordFormat2);
  SealedRecord sealed;
  sealed.checksum = checksum_v2(hashes, id, f.aggregate_version, f.schema_version);
  sealed.chain = chain_next(previous_chain, sealed.checksum);
  pack_record_trailer(buf, id, sealed.checksum, sealed.chain, kRecordFormat2);
  out = std::move(buf.bytes);
  return sealed;
}

bool fast_check_matches(std::string_view event_key, std::string_view bytes) noexcept {
  if (is_format1(bytes)) return true;
  if (bytes.size() <= kFastCheckBytes) return false;
  const std::string_view packed = bytes.substr(0, bytes.size() - kFastCheckBytes);
  return fast_check(event_key, packed) == get_be64(bytes.data() + packed.size());
}

bool fast_check_matches(const EventId& id, std::string_view bytes) noexcept {
  const EventId::Key key = id.to_key();
  return fast_check_matches(key_bytes(key), bytes);
}

void require_fast_check(const EventId& id, std::string_view bytes) {
  if (!fast_check_matches(id, bytes)) corrupt(id, "its fast check does not match");
}

void require_fast_check(const EventId& id, std::string_view event_key, std::string_view bytes) {
  if (!fast_check_matches(event_key, bytes)) corrupt(id, "its fast check does not match");
}

namespace {

// Fields 8 to the end of a record (after the data).
void decode_trailer(MsgpackReader& r, const EventId& id, unsigned format, RecordedEvent& e) {
  std::string_view key, checksum, chain;
  if (r.nil()) {
    e.idempotency_key.reset();
  } else {
    if (!r.str(key)) corrupt(id, "idempotency key is neither a string nor nil");
    e.idempotency_key.emplace(key);
  }
  e.schema_version = 1;
  e.trace_context.reset();
  if (format != kRecordFormat1) {
    std::uint64_t schema = 0;
    if (!r.uint(schema) || schema == 0 || schema > 0xffffffffu) corrupt(id, "schema version is not 1 to 2^32-1");
    e.schema_version = static_cast<std::uint32_t>(schema);
    if (!r.nil()) {
      std::uint32_t n = 0;
      std::string_view parent, state;
      bool binary = false;
      if (!r.array(n) || n != 2 || !((binary = r.bin(parent)) || r.str(parent)) || !r.str(state) ||
          (binary && parent.size() != kTraceparentBytes)) {
        corrupt(id, "trace context is neither nil nor a traceparent (25 bytes or its text) and a tracestate");
      }
      e.trace_context.emplace();
      if (binary) e.trace_context->traceparent = traceparent_text(parent);
      else e.trace_context->traceparent.assign(parent);
      e.trace_context->tracestate.assign(state);
    }
  }
  if (!r.bin(checksum) || checksum.size() != 32) corrupt(id, "checksum is not 32 bytes");
  if (!r.bin(chain) || chain.size() != 32) corrupt(id, "chain is not 32 bytes");
  if (!r.done()) corrupt(id, "trailing bytes after the record");
  std::copy(checksum.begin(), checksum.end(), reinterpret_cast<char*>(e.checksum.data()));
  std::copy(chain.begin(), chain.end(), reinterpret_cast<char*>(e.chain.data()));
}

}  // namespace

void decode_record_into(const EventId& id, std::string_view bytes, std::string_view* stored_tail, RecordedEvent& e) {
  const unsigned format = is_format1(bytes) ? kRecordFormat1 : kRecordFormat2;
  if (format == kRecordFormat2) {
    if (bytes.size() <= kFastCheckBytes) corrupt(id, "shorter than its fast check");
    bytes.remove_suffix(kFastCheckBytes);
  }
  MsgpackReader r(bytes);
  std::uint32_t fields = 0;
  std::uint64_t version = 0, flags = 0, content_type = 0;
  const std::uint32_t expected = format == kRecordFormat1 ? kFieldsV1 : kFieldsV2;
  if (!r.array(fields) || fields != expected) corrupt(id, "not an array of " + std::to_string(expected) + " fields");
  if (!r.uint(version) || version != format) corrupt(id, "unknown record version");
  if (!r.uint(flags) || (flags & ~std::uint64_t{kFlagCompressed}) != 0) corrupt(id, "unknown flags");
  e.id = id;
  e.record_format = static_cast<std::uint8_t>(format);
  const char* tail_begin = r.position();
  std::string_view type, aggregate, data;
  if (!r.str(type)) corrupt(id, "type is not a string");
  if (!r.str(aggregate)) corrupt(id, "aggregate is not a string");
  if (!r.uint(e.aggregate_version)) corrupt(id, "aggregate version is not an unsigned integer");
  if (!r.uint(content_type) || content_type > static_cast<std::uint64_t>(ContentType::bytes)) {
    corrupt(id, "unknown content type");
  }
  e.type.assign(type);
  e.aggregate.assign(aggregate);
  e.content_type = static_cast<ContentType>(content_type);
  std::uint32_t pairs = 0;
  if (!r.map(pairs)) corrupt(id, "metadata is not a map");
  e.metadata.clear();
  // Keys stored out of order or twice decode (sorted, the first kept), but
  // then the stored bytes are not the canonical encoding of what is read.
  bool canonical_metadata = true;
  std::string_view previous_key;
  for (std::uint32_t i = 0; i < pairs; ++i) {
    std::string_view k, v;
    if (!r.str(k) || !r.str(v)) corrupt(id, "metadata entry is not a pair of strings");
    if (i != 0 && !(previous_key < k)) canonical_metadata = false;
    previous_key = k;
    e.metadata.emplace_hint(e.metadata.end(), k, v);
  }
  if (!r.bin(data)) corrupt(id, "data is not binary");
  if (stored_tail != nullptr) {
    *stored_tail = format != kRecordFormat1 || (flags & kFlagCompressed) != 0 || !canonical_metadata
                       ? std::string_view()
                       : std::string_view(tail_begin, static_cast<std::size_t>(r.position() - tail_begin));
  }
  if ((flags & kFlagCompressed) != 0) {
    e.data = internal::decompress(id, data);
  } else {
    e.data.assign(data);
  }
  decode_trailer(r, id, format, e);
}

RecordedEvent decode_record(const EventId& id, std::string_view bytes, std::string_view* stored_tail) {
  RecordedEvent e;
  decode_record_into(id, bytes, stored_tail, e);
  return e;
}

RecordedEvent read_record(const EventId& id, std::string_view bytes, ReadCheck check) {
  if (check != ReadCheck::off) require_fast_check(id, bytes);
  std::string_view stored_tail;
  RecordedEvent e = decode_record(id, bytes, &stored_tail);
  if (check == ReadCheck::full || (check == ReadCheck::fast && e.record_format == kRecordFormat1)) {
    verify_checksum(e, stored_tail);
  }
  return e;
}

bool checksum_matches(const RecordedEvent& event, std::string_view stored_tail) {
  if (event.record_format == kRecordFormat1 && !stored_tail.empty() &&
      internal::stored_checksum_v1(event.id, stored_tail) == event.checksum) {
    return true;
  }
  return event_checksum(event) == event.checksum;
}

void verify_checksum(const RecordedEvent& event, std::string_view stored_tail) {
  if (!checksum_matches(event, stored_tail)) {
    throw Error(ErrorCode::corruption, "event " + event.id.to_string() +
                                           ": checksum mismatch (stored " + to_hex(event.checksum) +
                                           ")");
  }
}

}  // namespace lighthouse::codec
