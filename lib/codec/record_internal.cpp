// Pieces of the stored record shared by record.cpp (format 2 and the
// common parts) and record_format1.cpp (the format-1 canonical encoding).
#include "codec/record_internal.h"

#include <zstd.h>

#include <algorithm>
#include <charconv>

#include "lighthouse/error.h"

namespace lighthouse::codec::internal {
namespace {
// The most one event's data may decompress to: far above any configured
// event limit, a bound for damaged records only.
constexpr unsigned long long kMaxDecompressed = 1ull << 30;

}  // namespace

void pack_metadata(Packer& pk, const Metadata& metadata) {
  pk.pack_map(static_cast<std::uint32_t>(metadata.size()));
  for (const auto& [key, value] : metadata) {  // std::map: sorted bytewise
    pack_str(pk, key);
    pack_str(pk, value);
  }
}

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

void pack_checksummed_fields(Packer& pk, const RecordFields& f, std::string_view data) {
  pack_str(pk, f.type);
  pack_str(pk, f.aggregate);
  pk.pack_uint64(f.aggregate_version);
  pk.pack_uint8(static_cast<std::uint8_t>(f.content_type));
  pack_metadata(pk, metadata_of(f));
  pack_bin(pk, data);
}

namespace {
const Metadata kNoMetadata;
}  // namespace

const Metadata& metadata_of(const RecordFields& f) { return f.metadata != nullptr ? *f.metadata : kNoMetadata; }

}  // namespace lighthouse::codec::internal
