#include "archive/archive_record.h"

#include "codec/msgpack_reader.h"
#include "codec/msgpack_writer.h"
#include "lighthouse/error.h"

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
  pk.pack_map(13);
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
  str(pk, "checksum");
  bin(pk, view(e.checksum));
  str(pk, "chain");
  bin(pk, view(e.chain));
  out = std::move(buf.bytes);
}

RecordedEvent decode_archive_record(std::string_view bytes, const std::string& where) {
  codec::MsgpackReader r(bytes);
  std::uint32_t fields = 0;
  if (!r.map(fields) || fields > 64) bad(where, "not a map");
  RecordedEvent e;
  std::string id_text;
  unsigned seen = 0;
  auto mark = [&](unsigned bit, std::string_view name) {
    if ((seen & bit) != 0) bad(where, "field '" + std::string(name) + "' twice");
    seen |= bit;
  };
  auto digest = [&](Sha256& out, std::string_view name) {
    std::string_view b;
    if (!r.bin(b) || b.size() != 32) bad(where, std::string(name) + " is not 32 bytes");
    std::copy(b.begin(), b.end(), reinterpret_cast<char*>(out.data()));
  };
  for (std::uint32_t i = 0; i < fields; ++i) {
    std::string_view key, s;
    std::uint64_t u = 0;
    if (!r.str(key)) bad(where, "a key is not a string");
    if (key == "id") {
      mark(1, key);
      if (!r.str(s)) bad(where, "id is not a string");
      id_text = s;
    } else if (key == "sequence") {
      mark(2, key);
      if (!r.uint(e.id.sequence)) bad(where, "sequence is not an unsigned integer");
    } else if (key == "timestamp_ns") {
      mark(4, key);
      if (!r.uint(e.id.timestamp_ns)) bad(where, "timestamp_ns is not an unsigned integer");
    } else if (key == "node_id") {
      mark(8, key);
      if (!r.uint(u) || u > 0xffffffffu) bad(where, "node_id is not a 32-bit unsigned integer");
      e.id.node_id = static_cast<std::uint32_t>(u);
    } else if (key == "type") {
      mark(16, key);
      if (!r.str(s)) bad(where, "type is not a string");
      e.type = s;
    } else if (key == "aggregate") {
      mark(32, key);
      if (!r.str(s)) bad(where, "aggregate is not a string");
      e.aggregate = s;
    } else if (key == "aggregate_version") {
      mark(64, key);
      if (!r.uint(e.aggregate_version)) bad(where, "aggregate_version is not an unsigned integer");
    } else if (key == "content_type") {
      mark(128, key);
      if (!r.uint(u) || u > static_cast<std::uint64_t>(ContentType::bytes)) {
        bad(where, "unknown content_type");
      }
      e.content_type = static_cast<ContentType>(u);
    } else if (key == "metadata") {
      mark(256, key);
      std::uint32_t pairs = 0;
      if (!r.map(pairs)) bad(where, "metadata is not a map");
      for (std::uint32_t k = 0; k < pairs; ++k) {
        std::string_view mk, mv;
        if (!r.str(mk) || !r.str(mv)) bad(where, "metadata entry is not a pair of strings");
        e.metadata.emplace(mk, mv);
      }
    } else if (key == "data") {
      mark(512, key);
      if (!r.bin(s)) bad(where, "data is not binary");
      e.data = s;
    } else if (key == "idempotency_key") {
      mark(1024, key);
      if (!r.nil()) {
        if (!r.str(s)) bad(where, "idempotency_key is neither a string nor nil");
        e.idempotency_key = std::string(s);
      }
    } else if (key == "checksum") {
      mark(2048, key);
      digest(e.checksum, key);
    } else if (key == "chain") {
      mark(4096, key);
      digest(e.chain, key);
    } else {
      bad(where, "unknown field '" + std::string(key.substr(0, 32)) + "'");
    }
  }
  if (seen != 8191) bad(where, "a field is missing");
  if (!r.done()) bad(where, "trailing bytes");
  if (id_text != e.id.to_string())
    bad(where, "id '" + id_text.substr(0, 64) + "' disagrees with its fields");
  return e;
}

}  // namespace lighthouse::archive
