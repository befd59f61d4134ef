// The messages of replication (replication_access.h): archive records, since
// a record of the archive is self-contained. Here, in the archive's room,
// because lib/store knows nothing of archives.
#include "archive/archive_record.h"
#include "codec/record.h"
#include "store/replication_access.h"

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
