// The tool's JSON forms of events: an input line of `lighthouse append`
// becomes a Batch of one event; appended and recorded events become one
// JSON line each.
#pragma once

#include <string>
#include <string_view>

#include "lighthouse/event.h"
#include "lighthouse/health.h"
#include "output.h"
#include "lighthouse/store.h"

namespace lighthouse::tool {

// JSON deeper than this is refused on input and shown as data_base64 on
// output, so that no recursive encoder or decoder can exhaust the stack.
inline constexpr int kMaxJsonDepth = 256;

// Returns true iff `line` holds nothing but JSON whitespace.
bool is_blank(std::string_view line) noexcept;

// Parses one input line: a JSON object with the fields `type` (required),
// `aggregate`, `metadata`, `expected_version`, `idempotency_key`,
// `content_type`, and `data` or (content type bytes) `data_base64`.
// Returns a batch of the one event, with its expectation unless it is `any`.
// Throws Error(invalid_argument) naming the offending field and value.
Batch parse_event_line(std::string_view line);
// The same for an object already parsed (the server's request bodies).
Batch parse_event_object(const Json& object);
// Parses `text` as JSON, refusing nesting deeper than kMaxJsonDepth and —
// when `unique_keys` — an object naming one field twice. Errors:
// invalid_argument, in the tool's words (where, what, the input there).
Json parse_json_text(std::string_view text, bool unique_keys);
// An expected version as JSON gives it: a number, or "any", "no_stream",
// "stream_exists". Errors: invalid_argument.
ExpectedVersion parse_expected_version(const Json& value);

// {"id", "sequence", "aggregate_version"}; the line adds "replayed": true
// for a replay.
Json appended_event(const AppendedEvent& event);
std::string appended_event_json(const AppendedEvent& event, bool replayed);

// {"state", "reason", "since" (RFC 3339 or null), "since_ns", "manual",
// "pid"}: what `lighthouse health` prints.
Json health_json(const HealthStatus& status);

// Every field of a stored event. `data` is decoded for msgpack and json
// content; content that is bytes or does not decode is `data_base64`.
std::string recorded_event_json(const RecordedEvent& event);

std::string stats_json(const StoreStats& stats);

}  // namespace lighthouse::tool
