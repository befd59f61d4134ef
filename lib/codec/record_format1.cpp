// Record format 1's checksum: SHA-256 of the canonical encoding, the
// MessagePack array [ID text, type, aggregate, version, content type,
// metadata, data] (docs/formats.md, "Record format 1").
#include "codec/record_internal.h"
#include "codec/sha256.h"

namespace lighthouse::codec {

using internal::pack_checksummed_fields;

void append_canonical_v1(std::string& out, const EventId& id, const RecordFields& f) {
  StringBuffer buf{std::move(out)};
  Packer pk(buf);
  pk.pack_array(7);
  internal::pack_id(pk, id);
  pack_checksummed_fields(pk, f, f.data);
  out = std::move(buf.bytes);
}

Sha256 checksum_v1(const EventId& id, const RecordFields& fields) {
  thread_local std::string buffer;
  buffer.clear();
  append_canonical_v1(buffer, id, fields);
  return sha256(buffer);
}

namespace internal {

// The checksum of a format-1 record in canonical form, from its stored
// fields 2 to 7 as they are: the canonical head, then those bytes.
Sha256 stored_checksum_v1(const EventId& id, std::string_view stored_tail) {
  thread_local StringBuffer head;
  head.bytes.clear();
  Packer pk(head);
  pk.pack_array(7);
  pack_id(pk, id);
  Sha256Hasher hasher;
  hasher.update(head.bytes);
  hasher.update(stored_tail);
  return hasher.finish();
}

}  // namespace internal
}  // namespace lighthouse::codec
