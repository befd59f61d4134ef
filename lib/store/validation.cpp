#include "store/validation.h"

#include <set>
#include <string>

namespace lighthouse::validation {
namespace {

std::string shown(std::string_view value) {
  constexpr std::size_t kShown = 64;
  std::string out(value.substr(0, kShown));
  if (value.size() > kShown) out += "...";
  return out;
}

[[noreturn]] void fail(ErrorCode code, const std::string& message) { throw Error(code, message); }

void check_text(std::string_view what, std::string_view value) {
  if (!is_valid_utf8(value)) {
    fail(ErrorCode::invalid_argument, std::string(what) + " '" + shown(value) +
                                          "' is not valid UTF-8");
  }
}

}  // namespace

void check_consumer(std::string_view name) {
  if (name.empty() || name.size() > 128) {
    fail(ErrorCode::invalid_argument,
         "consumer name must be 1 to 128 bytes, got " + std::to_string(name.size()));
  }
  check_text("consumer name", name);
}

bool is_valid_utf8(std::string_view text) noexcept {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    unsigned char c = *p;
    if (c < 0x80) {
      ++p;
      continue;
    }
    int extra;
    std::uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      extra = 1;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      extra = 2;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (end - p <= extra) return false;
    for (int i = 1; i <= extra; ++i) {
      if ((p[i] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i] & 0x3f);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    static constexpr std::uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
    if (cp < kMin[extra] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    p += extra + 1;
  }
  return true;
}

void check_name(std::string_view what, std::string_view name, const Limits& limits,
                bool allow_empty, bool allow_reserved) {
  if (name.empty() && !allow_empty) {
    fail(ErrorCode::invalid_argument, std::string(what) + " is empty: it needs 1 to " +
                                          std::to_string(limits.max_name_bytes) + " bytes");
  }
  if (name.size() > limits.max_name_bytes) {
    fail(ErrorCode::limit_exceeded, std::string(what) + " '" + shown(name) + "' is " +
                                        std::to_string(name.size()) + " bytes: the limit is " +
                                        std::to_string(limits.max_name_bytes));
  }
  if (!allow_reserved && !name.empty() && name[0] == '$') {
    fail(ErrorCode::invalid_argument, std::string(what) + " '" + shown(name) +
                                          "' starts with '$', which is reserved for the "
                                          "store's own events");
  }
  check_text(what, name);
}

void check_totals(std::size_t events, std::size_t bytes, const Limits& limits) {
  if (events > limits.max_batch_events) {
    fail(ErrorCode::limit_exceeded, "batch of " + std::to_string(events) +
                                        " events: the limit is " +
                                        std::to_string(limits.max_batch_events));
  }
  if (bytes > limits.max_batch_bytes) {
    fail(ErrorCode::limit_exceeded, "batch of " + std::to_string(bytes) +
                                        " content bytes: the limit is " +
                                        std::to_string(limits.max_batch_bytes));
  }
}

std::size_t check_batch(const Batch& batch, const Limits& limits, bool allow_reserved) {
  if (batch.events.empty()) {
    fail(ErrorCode::invalid_argument, "a batch needs at least one event");
  }
  if (batch.checkpoint) check_consumer(batch.checkpoint->consumer);
  std::size_t bytes = 0;
  std::set<std::string_view> keys;
  for (std::size_t i = 0; i < batch.events.size(); ++i) {
    const EventData& e = batch.events[i];
    try {
      check_name("event type", e.type, limits, false, allow_reserved);
      check_name("aggregate", e.aggregate, limits, true, allow_reserved);
      for (const auto& [key, value] : e.metadata) {
        if (key.empty() || key.size() > limits.max_name_bytes) {
          fail(key.empty() ? ErrorCode::invalid_argument : ErrorCode::limit_exceeded,
               "metadata key '" + shown(key) + "' is " + std::to_string(key.size()) +
                   " bytes: it needs 1 to " + std::to_string(limits.max_name_bytes));
        }
        check_text("metadata key", key);
        check_text("metadata value of '" + shown(key) + "'", value);
      }
      if (e.content_type > ContentType::bytes) {
        fail(ErrorCode::invalid_argument, "unknown content type " +
                                              std::to_string(static_cast<int>(e.content_type)));
      }
      if (e.idempotency_key) {
        const std::string& key = *e.idempotency_key;
        if (key.empty() || key.size() > limits.max_idempotency_key_bytes) {
          fail(key.empty() ? ErrorCode::invalid_argument : ErrorCode::limit_exceeded,
               "idempotency key '" + shown(key) + "' is " + std::to_string(key.size()) +
                   " bytes: it needs 1 to " + std::to_string(limits.max_idempotency_key_bytes));
        }
        check_text("idempotency key", key);
        if (!keys.insert(key).second) {
          fail(ErrorCode::invalid_argument,
               "idempotency key '" + shown(key) + "' appears twice in one batch");
        }
      }
      std::size_t size = e.content_size();
      if (size > limits.max_event_bytes) {
        fail(ErrorCode::limit_exceeded, "event of type '" + shown(e.type) + "' is " +
                                            std::to_string(size) + " bytes: the limit is " +
                                            std::to_string(limits.max_event_bytes));
      }
      bytes += size;
    } catch (Error& error) {
      throw error.with_index(i);
    }
  }
  std::set<std::string_view> aggregates;
  for (const auto& expectation : batch.expectations) {
    check_name("aggregate of an expectation", expectation.aggregate, limits, false,
               allow_reserved);
    if (!aggregates.insert(expectation.aggregate).second) {
      fail(ErrorCode::invalid_argument, "two expectations for aggregate '" +
                                            shown(expectation.aggregate) +
                                            "': a batch takes one per aggregate");
    }
  }
  check_totals(batch.events.size(), bytes, limits);
  return bytes;
}

}  // namespace lighthouse::validation
