#include "archive/archive_record.h"

#include "codec/msgpack_reader.h"
#include "codec/msgpack_writer.h"
#include "codec/record.h"
#include "lighthouse/error.h"
#include "store/replication_access.h"
#include "text.h"

namespace lighthouse::archive {
namespace {

using codec::Packer;
using codec::StringBuffer;
constexpr auto str = codec::pack_str;
constexpr auto bin = codec::pack_bin;
std::string_view view(const Sha256& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

[[noreturn]] void bad(const std::string& where, const std::string& why) {
  throw Error(ErrorCode::corruption, where + ": not a valid archive record (" + why + ")");
}

}  // namespace

void encode_archive_record(std::string& out, const RecordedEvent& e) {
  StringBuffer buf{std::move(out)};
  buf.bytes.clear();
  Packer pk(buf);
  const bool v2 = e.record_format != codec::kRecordFormat1;
  pk.pack_map(v2 ? 16 : 13);
  str(pk, "id");
  str(pk, e.id.to_string());
  str(pk, "sequence");
  pk.pack_uint64(e.id.sequence);
  str(pk, "timestamp_ns");
  pk.pack_uint64(e.id.timestamp_ns);
  str(pk, "node_id");
  pk.pack_uint32(e.id.node_id);
  str(pk, "type");
  str(pk, e.type);
  str(pk, "aggregate");
  str(pk, e.aggregate);
  str(pk, "aggregate_version");
  pk.pack_uint64(e.aggregate_version);
  str(pk, "content_type");
  pk.pack_uint8(static_cast<std::uint8_t>(e.content_type));
  str(pk, "metadata");
  pk.pack_map(static_cast<std::uint32_t>(e.metadata.size()));
  for (const auto& [k, v] : e.metadata) {
    str(pk, k);
    str(pk, v);
  }
  str(pk, "data");
  bin(pk, e.data);
  str(pk, "idempotency_key");
  if (e.idempotency_key)
    str(pk, *e.idempotency_key);
  else
    pk.pack_nil();
  if (v2) {
    str(pk, "schema_version");
    pk.pack_uint32(e.schema_version);
    str(pk, "trace_context");
    if (e.trace_context) {
      pk.pack_array(2);
      str(pk, e.trace_context->traceparent);
      str(pk, e.trace_context->tracestate);
    } else {
      pk.pack_nil();
    }
    str(pk, "record_format");
    pk.pack_uint8(e.record_format);
  }
  str(pk, "checksum");
  bin(pk, view(e.checksum));
  str(pk, "chain");
  bin(pk, view(e.chain));
  out = std::move(buf.bytes);
}

namespace {

// A record being decoded: the reader, the event so far, and where it is.
struct Decoding {
  codec::MsgpackReader r;
  const std::string& where;
  RecordedEvent e;
  std::string id_text;

  std::string_view string(const char* name) {
    std::string_view s;
    if (!r.str(s)) bad(where, std::string(name) + " is not a string");
    return s;
  }
  std::uint64_t unsigned_int(const char* name) {
    std::uint64_t u = 0;
    if (!r.uint(u)) bad(where, std::string(name) + " is not an unsigned integer");
    return u;
  }
  void digest(Sha256& out, const char* name) {
    std::string_view b;
    if (!r.bin(b) || b.size() != 32) bad(where, std::string(name) + " is not 32 bytes");
    std::copy(b.begin(), b.end(), reinterpret_cast<char*>(out.data()));
  }
  void metadata() {
    std::uint32_t pairs = 0;
    if (!r.map(pairs)) bad(where, "metadata is not a map");
    for (std::uint32_t k = 0; k < pairs; ++k) {
      std::string_view mk, mv;
      if (!r.str(mk) || !r.str(mv)) bad(where, "metadata entry is not a pair of strings");
      e.metadata.emplace(mk, mv);
    }
  }
};

// Every field of a record, each read by its own line.
struct Field {
  const char* name;
  void (*read)(Decoding&);
};
constexpr Field kFields[] = {
    {"id", [](Decoding& d) { d.id_text = d.string("id"); }},
    {"sequence", [](Decoding& d) { d.e.id.sequence = d.unsigned_int("sequence"); }},
    {"timestamp_ns", [](Decoding& d) { d.e.id.timestamp_ns = d.unsigned_int("timestamp_ns"); }},
    {"node_id",
     [](Decoding& d) {
       std::uint64_t u = 0;
       if (!d.r.uint(u) || u > 0xffffffffu) bad(d.where, "node_id is not a 32-bit unsigned integer");
       d.e.id.node_id = static_cast<std::uint32_t>(u);
     }},
    {"type", [](Decoding& d) { d.e.type = d.string("type"); }},
    {"aggregate", [](Decoding& d) { d.e.aggregate = d.string("aggregate"); }},
    {"aggregate_version", [](Decoding& d) { d.e.aggregate_version = d.unsigned_int("aggregate_version"); }},
    {"content_type",
     [](Decoding& d) {
       std::uint64_t u = 0;
       if (!d.r.uint(u) || u > static_cast<std::uint64_t>(ContentType::bytes)) bad(d.where, "unknown content_type");
       d.e.content_type = static_cast<ContentType>(u);
     }},
    {"metadata", [](Decoding& d) { d.metadata(); }},
    {"data",
     [](Decoding& d) {
       std::string_view s;
       if (!d.r.bin(s)) bad(d.where, "data is not binary");
       d.e.data = s;
     }},
    {"idempotency_key",
     [](Decoding& d) {
       if (d.r.nil()) return;
       std::string_view s;
       if (!d.r.str(s)) bad(d.where, "idempotency_key is neither a string nor nil");
       d.e.idempotency_key = std::string(s);
     }},
    {"checksum", [](Decoding& d) { d.digest(d.e.checksum, "checksum"); }},
    {"chain", [](Decoding& d) { d.digest(d.e.chain, "chain"); }},
    // Record format 2 (absent from format-1 records).
    {"schema_version",
     [](Decoding& d) {
       std::uint64_t u = 0;
       if (!d.r.uint(u) || u == 0 || u > 0xffffffffu) bad(d.where, "schema_version is not 1 to 2^32-1");
       d.e.schema_version = static_cast<std::uint32_t>(u);
     }},
    {"trace_context",
     [](Decoding& d) {
       if (d.r.nil()) return;
       std::uint32_t n = 0;
       std::string_view parent, state;
       if (!d.r.array(n) || n != 2 || !d.r.str(parent) || !d.r.str(state)) {
         bad(d.where, "trace_context is neither nil nor a pair of strings");
       }
       d.e.trace_context = TraceContext{std::string(parent), std::string(state)};
     }},
    {"record_format",
     [](Decoding& d) {
       std::uint64_t u = 0;
       if (!d.r.uint(u) || u != codec::kRecordFormat2) bad(d.where, "record_format is not 2");
       d.e.record_format = codec::kRecordFormat2;
     }},
};
constexpr std::size_t kFormat1Fields = 13;  // the first 13 of kFields
constexpr std::size_t kFieldCount = sizeof kFields / sizeof kFields[0];

}  // namespace

RecordedEvent decode_archive_record(std::string_view bytes, const std::string& where) {
  Decoding d{codec::MsgpackReader(bytes), where, {}, {}};
  std::uint32_t fields = 0;
  if (!d.r.map(fields) || fields > 64) bad(where, "not a map");
  std::uint32_t seen = 0;  // a bit per field of kFields
  for (std::uint32_t i = 0; i < fields; ++i) {
    std::string_view key;
    if (!d.r.str(key)) bad(where, "a key is not a string");
    std::size_t f = 0;
    while (f < kFieldCount && key != kFields[f].name) ++f;
    if (f == kFieldCount) bad(where, "unknown field " + text::quoted(key, 32));
    if ((seen & (1u << f)) != 0) bad(where, "field '" + std::string(key) + "' twice");
    seen |= 1u << f;
    kFields[f].read(d);
  }
  // A format-1 record has the first 13 fields; a format-2 record all.
  d.e.record_format = (seen >> kFormat1Fields) != 0 ? codec::kRecordFormat2 : codec::kRecordFormat1;
  const std::uint32_t required =
      d.e.record_format == codec::kRecordFormat1 ? (1u << kFormat1Fields) - 1 : (1u << kFieldCount) - 1;
  if (seen != required) bad(where, "a field is missing");
  if (!d.r.done()) bad(where, "trailing bytes");
  if (d.id_text != d.e.id.to_string()) bad(where, "id " + text::quoted(d.id_text) + " disagrees with its fields");
  return std::move(d.e);
}

}  // namespace lighthouse::archive

// The messages of replication (store/replication_access.h) are archive
// records: a record of the archive is self-contained. Here, in the archive's
// room, because lib/store knows nothing of archives.
namespace lighthouse::replication_access {

std::string encode_message(const RecordedEvent& event) {
  std::string out;
  archive::encode_archive_record(out, event);
  return out;
}

std::uint64_t max_message_bytes(const Store& store) {
  return archive::max_record_bytes(store.options().limits.max_event_bytes);
}

RecordedEvent decode_message(std::string_view bytes, const std::string& where) {
  RecordedEvent event = archive::decode_archive_record(bytes, where);
  if (!codec::checksum_matches(event)) {
    throw Error(ErrorCode::corruption, where + ": the checksum of event " + event.id.to_string() + " does not match its fields");
  }
  return event;
}

}  // namespace lighthouse::replication_access
