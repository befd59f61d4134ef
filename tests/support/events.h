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

// Options for a test that counts events or sequences: the health monitor's
// triggers are off, so a slow machine's SLA warning (a `$health.*` event)
// does not take a sequence among the counted ones.
inline Options quiet_options() {
  Options o;
  o.health.enabled = false;
  return o;
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
