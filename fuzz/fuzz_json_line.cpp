// libFuzzer target: the tool's JSON event-line parser (`lighthouse append`
// input). Any line parses into a batch or raises a lighthouse::Error.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "json_event.h"
#include "lighthouse/error.h"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  try {
    lighthouse::Batch batch =
        lighthouse::tool::parse_event_line(std::string_view(reinterpret_cast<const char*>(data), size));
    if (batch.events.size() != 1) __builtin_trap();
  } catch (const lighthouse::Error&) {
  }
  return 0;
}
