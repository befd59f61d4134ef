#include "codec/record.h"

#include <zstd.h>

#include <algorithm>

#include <charconv>
#include <optional>

#include "codec/msgpack_reader.h"
#include "codec/msgpack_writer.h"
#include "codec/sha256.h"
#include "lighthouse/error.h"

namespace lighthouse::codec {
namespace {

void pack_metadata(Packer& pk, const Metadata& metadata) {
  pk.pack_map(static_cast<std::uint32_t>(metadata.size()));
  for (const auto& [key, value] : metadata) {  // std::map: sorted bytewise
    pack_str(pk, key);
    pack_str(pk, value);
  }
}

// Upper bound for a decompressed payload read back from disk, so a damaged
// frame header cannot make us allocate without limit.
// The most one event's data may decompress to: far above any configured
// event limit, a bound for damaged records only.
constexpr unsigned long long kMaxDecompressed = 1ull << 30;

std::string compress(std::string_view data, int level) {
  std::string out(ZSTD_compressBound(data.size()), '\0');
  std::size_t n = ZSTD_compress(out.data(), out.size(), data.data(), data.size(), level);
  if (ZSTD_isError(n)) {
    throw Error(ErrorCode::internal,
                std::string("zstd compression failed: ") + ZSTD_getErrorName(n));
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
  // Streamed into a buffer that grows with what actually decompresses: a
  // damaged header that claims a huge size costs no memory (found by
  // fuzzing: fuzz/corpus/fuzz_record/regression-zstd-size).
  struct DCtx {
    ZSTD_DCtx* p = ZSTD_createDCtx();
    ~DCtx() { ZSTD_freeDCtx(p); }
  } dctx;
  if (dctx.p == nullptr) throw Error(ErrorCode::internal, "ZSTD_createDCtx failed");
  std::string out;
  ZSTD_inBuffer in{frame.data(), frame.size(), 0};
  std::size_t ret = 1;
  while (ret != 0) {
    const std::size_t have = out.size();
    if (have >= size) {
      // The claimed size is reached: the frame must end here.
      char probe;
      ZSTD_outBuffer o{&probe, 1, 0};
      ret = ZSTD_decompressStream(dctx.p, &o, &in);
      if (ZSTD_isError(ret) || o.pos != 0 || ret != 0) corrupt(id, "zstd frame does not decompress");
      break;
    }
    const std::size_t step = static_cast<std::size_t>(std::min<unsigned long long>(size - have, 1u << 20));
    out.resize(have + step);
    ZSTD_outBuffer o{out.data() + have, step, 0};
    const std::size_t before = in.pos;
    ret = ZSTD_decompressStream(dctx.p, &o, &in);
    if (ZSTD_isError(ret)) corrupt(id, "zstd frame does not decompress");
    out.resize(have + o.pos);
    if (ret != 0 && o.pos == 0 && in.pos == before) corrupt(id, "zstd frame is cut short");
  }
  if (out.size() != size) corrupt(id, "zstd frame does not decompress to its stated size");
  return out;
}

constexpr std::uint32_t kRecordFields = 11;

// Writes the decimal text of an ID without allocating.
void pack_id(Packer& pk, const EventId& id) {
  char buf[64];  // at most 20 + 1 + 20 + 1 + 10 characters
  char* p = std::to_chars(buf, buf + 20, id.timestamp_ns).ptr;
  *p++ = '_';
  p = std::to_chars(p, p + 20, id.sequence).ptr;
  *p++ = '_';
  p = std::to_chars(p, p + 10, id.node_id).ptr;
  pack_str(pk, std::string_view(buf, static_cast<std::size_t>(p - buf)));
}

void pack_digest(Packer& pk, const Sha256& digest) {
  pack_bin(pk, std::string_view(reinterpret_cast<const char*>(digest.data()), digest.size()));
}

const Metadata kNoMetadata;

}  // namespace

namespace {

// The canonical encoding up to the ID: [array of 7, ID].
void pack_canonical_head(Packer& pk, const EventId& id) {
  pk.pack_array(7);
  pack_id(pk, id);
}

// Type, aggregate, version, content type, metadata, data: the rest of the
// canonical encoding and fields 2 to 7 of the stored record (with `data`
// compressed there or not). One function writes both, so a record's stored
// fields are byte for byte the canonical ones that stored_checksum hashes.
void pack_checksummed_fields(Packer& pk, const RecordFields& f, std::string_view data) {
  pack_str(pk, f.type);
  pack_str(pk, f.aggregate);
  pk.pack_uint64(f.aggregate_version);
  pk.pack_uint8(static_cast<std::uint8_t>(f.content_type));
  pack_metadata(pk, f.metadata != nullptr ? *f.metadata : kNoMetadata);
  pack_bin(pk, data);
}

}  // namespace

void append_canonical(std::string& out, const EventId& id, const RecordFields& f) {
  StringBuffer buf{std::move(out)};
  Packer pk(buf);
  pack_canonical_head(pk, id);
  pack_checksummed_fields(pk, f, f.data);
  out = std::move(buf.bytes);
}

Sha256 event_checksum(const EventId& id, const RecordFields& fields) {
  thread_local std::string buffer;
  buffer.clear();
  append_canonical(buffer, id, fields);
  return sha256(buffer);
}

Sha256 chain_next(const Sha256& previous, const Sha256& checksum) {
  Sha256Hasher hasher;
  hasher.update(previous);
  hasher.update(checksum);
  return hasher.finish();
}

Sha256 content_hash(const RecordFields& f) {
  StringBuffer buf;
  Packer pk(buf);
  pk.pack_array(5);
  pack_str(pk, f.type);
  pack_str(pk, f.aggregate);
  pk.pack_uint8(static_cast<std::uint8_t>(f.content_type));
  pack_metadata(pk, f.metadata != nullptr ? *f.metadata : kNoMetadata);
  pack_bin(pk, f.data);
  return sha256(buf.bytes);
}

bool peek_record(std::string_view bytes, RecordHead& head) noexcept {
  MsgpackReader r(bytes);
  std::uint32_t fields = 0;
  std::uint64_t version = 0, flags = 0;
  return r.array(fields) && fields == kRecordFields && r.uint(version) &&
         version == kRecordVersion && r.uint(flags) && r.str(head.type) && r.str(head.aggregate) &&
         r.uint(head.aggregate_version);
}

namespace {

// The record up to and including its data field. The data is compressed
// when the options say so and it helps; uncompressed, returns where field 2
// (the type) starts: from there the bytes are the canonical encoding after
// the ID.
std::optional<std::size_t> pack_record_fields(StringBuffer& buf, const RecordFields& f,
                                              const EncodeOptions& options) {
  unsigned flags = 0;
  std::string compressed;
  std::string_view data = f.data;
  if (options.compression_threshold != 0 && f.data.size() >= options.compression_threshold) {
    compressed = compress(f.data, options.compression_level);
    if (compressed.size() < f.data.size()) {
      flags |= kFlagCompressed;
      data = compressed;
    }
  }
  buf.bytes.clear();
  buf.bytes.reserve(128 + f.type.size() + f.aggregate.size() + data.size() +
                    (f.idempotency_key != nullptr ? f.idempotency_key->size() : 0));
  Packer pk(buf);
  pk.pack_array(kRecordFields);
  pk.pack_uint8(kRecordVersion);
  pk.pack_uint8(static_cast<std::uint8_t>(flags));
  const std::size_t tail = buf.bytes.size();
  pack_checksummed_fields(pk, f, data);
  if (flags != 0) return std::nullopt;
  return tail;
}

void pack_record_trailer(StringBuffer& buf, const RecordFields& f, const Sha256& checksum,
                         const Sha256& chain) {
  Packer pk(buf);
  if (f.idempotency_key != nullptr) {
    pack_str(pk, *f.idempotency_key);
  } else {
    pk.pack_nil();
  }
  pack_digest(pk, checksum);
  pack_digest(pk, chain);
}

}  // namespace

void encode_record(std::string& out, const RecordFields& f, const Sha256& checksum,
                   const Sha256& chain, const EncodeOptions& options) {
  StringBuffer buf{std::move(out)};
  pack_record_fields(buf, f, options);
  pack_record_trailer(buf, f, checksum, chain);
  out = std::move(buf.bytes);
}

SealedRecord seal_record(std::string& out, const EventId& id, const RecordFields& f,
                         const Sha256& previous_chain, const EncodeOptions& options) {
  StringBuffer buf{std::move(out)};
  const std::optional<std::size_t> tail = pack_record_fields(buf, f, options);
  // Uncompressed, the fields just written are the canonical encoding after
  // the ID: hash them where they are instead of encoding them twice.
  SealedRecord sealed;
  sealed.checksum = tail ? stored_checksum(id, std::string_view(buf.bytes).substr(*tail))
                         : event_checksum(id, f);
  sealed.chain = chain_next(previous_chain, sealed.checksum);
  pack_record_trailer(buf, f, sealed.checksum, sealed.chain);
  out = std::move(buf.bytes);
  return sealed;
}

RecordedEvent decode_record(const EventId& id, std::string_view bytes, std::string_view* stored_tail) {
  MsgpackReader r(bytes);
  std::uint32_t fields = 0;
  std::uint64_t version = 0, flags = 0, content_type = 0;
  if (!r.array(fields) || fields != kRecordFields) {
    corrupt(id, "not an array of " + std::to_string(kRecordFields) + " fields");
  }
  if (!r.uint(version) || version != kRecordVersion) corrupt(id, "unknown record version");
  if (!r.uint(flags) || (flags & ~std::uint64_t{kFlagCompressed}) != 0)
    corrupt(id, "unknown flags");
  RecordedEvent e;
  e.id = id;
  const char* tail_begin = r.position();
  std::string_view type, aggregate, data, key, checksum, chain;
  if (!r.str(type)) corrupt(id, "type is not a string");
  if (!r.str(aggregate)) corrupt(id, "aggregate is not a string");
  if (!r.uint(e.aggregate_version)) corrupt(id, "aggregate version is not an unsigned integer");
  if (!r.uint(content_type) || content_type > static_cast<std::uint64_t>(ContentType::bytes)) {
    corrupt(id, "unknown content type");
  }
  e.type = type;
  e.aggregate = aggregate;
  e.content_type = static_cast<ContentType>(content_type);
  std::uint32_t pairs = 0;
  if (!r.map(pairs)) corrupt(id, "metadata is not a map");
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
    *stored_tail = (flags & kFlagCompressed) != 0 || !canonical_metadata
                       ? std::string_view()
                       : std::string_view(tail_begin, static_cast<std::size_t>(r.position() - tail_begin));
  }
  e.data = (flags & kFlagCompressed) != 0 ? decompress(id, data) : std::string(data);
  if (!r.nil()) {
    if (!r.str(key)) corrupt(id, "idempotency key is neither a string nor nil");
    e.idempotency_key = std::string(key);
  }
  if (!r.bin(checksum) || checksum.size() != 32) corrupt(id, "checksum is not 32 bytes");
  if (!r.bin(chain) || chain.size() != 32) corrupt(id, "chain is not 32 bytes");
  if (!r.done()) corrupt(id, "trailing bytes after the record");
  std::copy(checksum.begin(), checksum.end(), reinterpret_cast<char*>(e.checksum.data()));
  std::copy(chain.begin(), chain.end(), reinterpret_cast<char*>(e.chain.data()));
  return e;
}

Sha256 stored_checksum(const EventId& id, std::string_view stored_tail) {
  // The canonical encoding is its head, then fields 2..7 of the record as
  // they are stored.
  thread_local StringBuffer head;
  head.bytes.clear();
  Packer pk(head);
  pack_canonical_head(pk, id);
  Sha256Hasher hasher;
  hasher.update(head.bytes);
  hasher.update(stored_tail);
  return hasher.finish();
}

bool checksum_matches(const RecordedEvent& event, std::string_view stored_tail) {
  if (!stored_tail.empty() && stored_checksum(event.id, stored_tail) == event.checksum) return true;
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
