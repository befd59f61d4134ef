// libFuzzer target: the stored-record decoder (what every read of `events`
// runs on bytes from disk). Any input must decode or raise
// Error(corruption): never crash, overread or hang.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "codec/record.h"
#include "lighthouse/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  lighthouse::codec::RecordHead head;
  (void)lighthouse::codec::peek_record(bytes, head);
  const lighthouse::EventId id{1, 1, 1};  // the seeds' fast checks are computed for this key
  try {
    lighthouse::RecordedEvent e = lighthouse::codec::decode_record(id, bytes);  // no check: the decoder itself
    lighthouse::codec::verify_checksum(e);
  } catch (const lighthouse::Error& error) {
    if (error.code() != lighthouse::ErrorCode::corruption) __builtin_trap();
  }
  for (auto check : {lighthouse::ReadCheck::fast, lighthouse::ReadCheck::full}) {
    try {
      (void)lighthouse::codec::read_record(id, bytes, check);
    } catch (const lighthouse::Error& error) {
      if (error.code() != lighthouse::ErrorCode::corruption) __builtin_trap();
    }
  }
  return 0;
}
