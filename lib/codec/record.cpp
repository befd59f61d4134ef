#include "codec/record.h"

#include <zstd.h>

#include <msgpack.hpp>

#include "codec/sha256.h"
#include "lighthouse/error.h"

namespace lighthouse::codec {
namespace {

// msgpack-cxx packs into anything with write(const char*, size_t).
struct StringBuffer {
  std::string bytes;
  void write(const char* data, std::size_t size) { bytes.append(data, size); }
};

using Packer = msgpack::packer<StringBuffer>;

void pack_str(Packer& pk, std::string_view s) {
  pk.pack_str(static_cast<std::uint32_t>(s.size()));
  pk.pack_str_body(s.data(), static_cast<std::uint32_t>(s.size()));
}

void pack_bin(Packer& pk, std::string_view b) {
  pk.pack_bin(static_cast<std::uint32_t>(b.size()));
  pk.pack_bin_body(b.data(), static_cast<std::uint32_t>(b.size()));
}

void pack_metadata(Packer& pk, const Metadata& metadata) {
  pk.pack_map(static_cast<std::uint32_t>(metadata.size()));
  for (const auto& [key, value] : metadata) {  // std::map: sorted bytewise
    pack_str(pk, key);
    pack_str(pk, value);
  }
}

// Upper bound for a decompressed payload read back from disk, so a damaged
// frame header cannot make us allocate without limit.
constexpr unsigned long long kMaxDecompressed = 1ull << 31;

std::string compress(std::string_view data, int level) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  std::size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  if (ZSTD_isError(n)) {
    throw Error(ErrorCode::internal, std::string("zstd compression failed: ") +
                                         ZSTD_getErrorName(n));
  }
  out.resize(n);
  return out;
}

[[noreturn]] void corrupt(const EventId& id, std::string_view why) {
  throw Error(ErrorCode::corruption,
              "event " + id.to_string() + ": stored record is damaged (" + std::string(why) + ")");
}

std::string decompress(const EventId& id, std::string_view frame) {
  unsigned long long size = ZSTD_getFrameContentSize(frame.data(), frame.size());
  if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
      size > kMaxDecompressed) {
    corrupt(id, "bad zstd frame header");
  }
  std::string out(static_cast<std::size_t>(size), '\0');
  std::size_t n = ZSTD_decompress(out.data(), out.size(), frame.data(), frame.size());
  if (ZSTD_isError(n) || n != size) corrupt(id, "zstd frame does not decompress");
  return out;
}

std::string_view as_str(const EventId& id, const msgpack::object& o, const char* field) {
  if (o.type != msgpack::type::STR) corrupt(id, std::string(field) + " is not a string");
  return {o.via.str.ptr, o.via.str.size};
}

std::string_view as_bin(const EventId& id, const msgpack::object& o, const char* field) {
  if (o.type != msgpack::type::BIN) corrupt(id, std::string(field) + " is not binary");
  return {o.via.bin.ptr, o.via.bin.size};
}

std::uint64_t as_uint(const EventId& id, const msgpack::object& o, const char* field) {
  if (o.type != msgpack::type::POSITIVE_INTEGER) {
    corrupt(id, std::string(field) + " is not an unsigned integer");
  }
  return o.via.u64;
}

Sha256 as_digest(const EventId& id, const msgpack::object& o, const char* field) {
  auto bytes = as_bin(id, o, field);
  if (bytes.size() != 32) corrupt(id, std::string(field) + " is not 32 bytes");
  Sha256 out;
  std::copy(bytes.begin(), bytes.end(), reinterpret_cast<char*>(out.data()));
  return out;
}

constexpr std::uint32_t kRecordFields = 11;

}  // namespace

std::string canonical_encoding(const EventId& id, std::string_view type,
                               std::string_view aggregate, std::uint64_t aggregate_version,
                               ContentType content_type, const Metadata& metadata,
                               std::string_view data) {
  StringBuffer buf;
  buf.bytes.reserve(64 + type.size() + aggregate.size() + data.size());
  Packer pk(buf);
  pk.pack_array(7);
  pack_str(pk, id.to_string());
  pack_str(pk, type);
  pack_str(pk, aggregate);
  pk.pack_uint64(aggregate_version);
  pk.pack_uint8(static_cast<std::uint8_t>(content_type));
  pack_metadata(pk, metadata);
  pack_bin(pk, data);
  return std::move(buf.bytes);
}

Sha256 event_checksum(const RecordedEvent& e) {
  return sha256(canonical_encoding(e.id, e.type, e.aggregate, e.aggregate_version,
                                   e.content_type, e.metadata, e.data));
}

Sha256 chain_next(const Sha256& previous, const Sha256& checksum) {
  Sha256Hasher hasher;
  hasher.update(previous);
  hasher.update(checksum);
  return hasher.finish();
}

Sha256 content_hash(const EventData& e) {
  StringBuffer buf;
  Packer pk(buf);
  pk.pack_array(5);
  pack_str(pk, e.type);
  pack_str(pk, e.aggregate);
  pk.pack_uint8(static_cast<std::uint8_t>(e.content_type));
  pack_metadata(pk, e.metadata);
  pack_bin(pk, e.data);
  return sha256(buf.bytes);
}

std::string encode_record(const RecordedEvent& e, const EncodeOptions& options) {
  unsigned flags = 0;
  std::string compressed;
  std::string_view data = e.data;
  if (options.compression_threshold != 0 && e.data.size() >= options.compression_threshold) {
    compressed = compress(e.data, options.compression_level);
    if (compressed.size() < e.data.size()) {
      flags |= kFlagCompressed;
      data = compressed;
    }
  }
  StringBuffer buf;
  buf.bytes.reserve(128 + e.type.size() + e.aggregate.size() + data.size());
  Packer pk(buf);
  pk.pack_array(kRecordFields);
  pk.pack_uint8(kRecordVersion);
  pk.pack_uint8(static_cast<std::uint8_t>(flags));
  pack_str(pk, e.type);
  pack_str(pk, e.aggregate);
  pk.pack_uint64(e.aggregate_version);
  pk.pack_uint8(static_cast<std::uint8_t>(e.content_type));
  pack_metadata(pk, e.metadata);
  pack_bin(pk, data);
  if (e.idempotency_key) {
    pack_str(pk, *e.idempotency_key);
  } else {
    pk.pack_nil();
  }
  pack_bin(pk, std::string_view(reinterpret_cast<const char*>(e.checksum.data()), 32));
  pack_bin(pk, std::string_view(reinterpret_cast<const char*>(e.chain.data()), 32));
  return std::move(buf.bytes);
}

RecordedEvent decode_record(const EventId& id, std::string_view bytes) {
  msgpack::object_handle handle;
  try {
    std::size_t offset = 0;
    // Strings and binaries reference `bytes` (no copy); the limits keep a
    // damaged header from asking for huge allocations.
    const msgpack::unpack_limit limits(/*array=*/16, /*map=*/65536, /*str=*/1u << 30,
                                       /*bin=*/1u << 30, /*ext=*/0, /*depth=*/4);
    handle = msgpack::unpack(
        bytes.data(), bytes.size(), offset,
        [](msgpack::type::object_type, std::size_t, void*) { return true; }, nullptr, limits);
    if (offset != bytes.size()) corrupt(id, "trailing bytes after the record");
  } catch (const msgpack::unpack_error& e) {
    corrupt(id, std::string("not MessagePack: ") + e.what());
  } catch (const std::bad_alloc&) {
    corrupt(id, "not MessagePack: implausible sizes");
  } catch (const msgpack::type_error&) {
    corrupt(id, "not MessagePack");
  }
  const msgpack::object& root = handle.get();
  if (root.type != msgpack::type::ARRAY || root.via.array.size != kRecordFields) {
    corrupt(id, "not an array of " + std::to_string(kRecordFields) + " fields");
  }
  const msgpack::object* f = root.via.array.ptr;
  if (as_uint(id, f[0], "record version") != kRecordVersion) corrupt(id, "unknown record version");
  std::uint64_t flags = as_uint(id, f[1], "flags");
  if ((flags & ~std::uint64_t{kFlagCompressed}) != 0) corrupt(id, "unknown flags");

  RecordedEvent e;
  e.id = id;
  e.type = as_str(id, f[2], "type");
  e.aggregate = as_str(id, f[3], "aggregate");
  e.aggregate_version = as_uint(id, f[4], "aggregate version");
  std::uint64_t content_type = as_uint(id, f[5], "content type");
  if (content_type > static_cast<std::uint64_t>(ContentType::bytes)) {
    corrupt(id, "unknown content type");
  }
  e.content_type = static_cast<ContentType>(content_type);
  if (f[6].type != msgpack::type::MAP) corrupt(id, "metadata is not a map");
  for (std::uint32_t i = 0; i < f[6].via.map.size; ++i) {
    const auto& kv = f[6].via.map.ptr[i];
    e.metadata.emplace(as_str(id, kv.key, "metadata key"), as_str(id, kv.val, "metadata value"));
  }
  auto data = as_bin(id, f[7], "data");
  e.data = (flags & kFlagCompressed) != 0 ? decompress(id, data) : std::string(data);
  if (f[8].type != msgpack::type::NIL) e.idempotency_key = std::string(as_str(id, f[8], "key"));
  e.checksum = as_digest(id, f[9], "checksum");
  e.chain = as_digest(id, f[10], "chain");
  return e;
}

void verify_checksum(const RecordedEvent& event) {
  if (event_checksum(event) != event.checksum) {
    throw Error(ErrorCode::corruption,
                "event " + event.id.to_string() + ": checksum mismatch (stored " +
                    to_hex(event.checksum) + ")");
  }
}

}  // namespace lighthouse::codec
