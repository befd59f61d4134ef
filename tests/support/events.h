// Small builders for test events.
#pragma once

#include <string>

#include "lighthouse/lighthouse.h"

namespace lighthouse::testing {

inline EventData event(std::string type, std::string aggregate = "", std::string data = "\xc0") {
  EventData e;
  e.type = std::move(type);
  e.aggregate = std::move(aggregate);
  e.data = std::move(data);
  return e;
}

inline EventData keyed(std::string type, std::string aggregate, std::string key,
                       std::string data = "\xc0") {
  EventData e = event(std::move(type), std::move(aggregate), std::move(data));
  e.idempotency_key = std::move(key);
  return e;
}

// Runs `f` and returns the ErrorCode of the lighthouse::Error it throws.
template <typename F>
ErrorCode error_code_of(F&& f) {
  try {
    f();
  } catch (const Error& e) {
    return e.code();
  }
  throw std::logic_error("expected a lighthouse::Error, nothing was thrown");
}

}  // namespace lighthouse::testing
