#include "json_event.h"
#include "output.h"

#include <cmath>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <vector>

#include "base64.h"
#include "lighthouse/error.h"
#include "lighthouse/time.h"
#include "parse.h"

namespace lighthouse::tool {
namespace {

constexpr const char* kFields[] = {"type",
                                   "aggregate",
                                   "data",
                                   "data_base64",
                                   "metadata",
                                   "expected_version",
                                   "idempotency_key",
                                   "content_type",
                                   "schema_version",
                                   "trace_context"};

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorCode::invalid_argument, message);
}

// "number 42", "string \"x\"", "object".
std::string describe(const Json& value) {
  std::string out = value.type_name();
  if (!value.is_structured()) out += " " + shown(dump(value));
  return out;
}

struct TooDeep {};

// The JSON library's description of a problem, without its exception tag
// ("[json.exception.parse_error.101]") or its quote of the last bytes read.
std::string json_problem(const Json::exception& error) {
  std::string what = error.what();
  if (auto tag = what.find("] "); tag != std::string::npos) what.erase(0, tag + 2);
  if (auto last = what.find("; last read"); last != std::string::npos) what.resize(last);
  return what;
}

// Parses `text` as JSON, refusing nesting deeper than kMaxJsonDepth and —
// when `unique_keys` — an object naming one field twice.
}  // namespace

Json parse_json_text(std::string_view text, bool unique_keys) {
  std::vector<std::set<std::string>> open_objects;
  std::optional<std::string> duplicate;
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    switch (event) {
      case Json::parse_event_t::object_start:
      case Json::parse_event_t::array_start:
        // `depth` counts the containers around this one.
        if (depth >= kMaxJsonDepth) throw TooDeep{};
        if (event == Json::parse_event_t::object_start) open_objects.emplace_back();
        break;
      case Json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Json::parse_event_t::key:
        if (unique_keys && !open_objects.empty() && !duplicate &&
            !open_objects.back().insert(parsed.get<std::string>()).second) {
          duplicate = parsed.get<std::string>();
        }
        break;
      default:
        break;
    }
    return true;
  };
  Json result;
  try {
    result = Json::parse(text.begin(), text.end(), callback);
  } catch (const TooDeep&) {
    invalid("JSON nested " + std::to_string(kMaxJsonDepth + 1) + " levels deep: the limit is " +
            std::to_string(kMaxJsonDepth));
  } catch (const Json::parse_error& error) {
    // In the tool's words: where, what, and the input there (the JSON
    // library's own message quotes its last bytes, possibly half a character;
    // lighthouse::Error shows bytes that are not UTF-8 as \xNN).
    const std::size_t at = error.byte > 0 ? error.byte - 1 : 0;
    invalid("malformed JSON at byte " + std::to_string(error.byte) + ": " + json_problem(error) + " (near '" +
            shown(text.substr(at > 8 ? at - 8 : 0), 24) + "')");
  } catch (const Json::exception& error) {
    // out_of_range: a number too large for a double (found by fuzzing:
    // fuzz/corpus/fuzz_json_line/regression-number-overflow).
    invalid("malformed JSON: " + json_problem(error));
  }
  if (duplicate) invalid("field '" + shown(*duplicate) + "' appears twice in one object");
  return result;
}

namespace {

const Json* field(const Json& object, const char* name) {
  auto it = object.find(name);
  return it == object.end() ? nullptr : &*it;
}

std::string string_field(const Json& value, const char* name) {
  if (!value.is_string()) {
    invalid(std::string("field '") + name + "' must be a string, got " + describe(value));
  }
  return value.get<std::string>();
}

}  // namespace

ExpectedVersion parse_expected_version(const Json& value) {
  static const std::string kAllowed =
      "a non-negative integer or \"any\", \"no_stream\", \"stream_exists\"";
  if (value.is_number_unsigned()) return ExpectedVersion::exact(value.get<std::uint64_t>());
  if (value.is_number_integer()) {
    auto version = value.get<std::int64_t>();
    if (version >= 0) return ExpectedVersion::exact(static_cast<std::uint64_t>(version));
    invalid("expected_version " + dump(value) + " is negative: it must be " + kAllowed);
  }
  if (value.is_number_float()) {
    invalid("expected_version " + shown(dump(value)) + " is not an integer: it must be " +
            kAllowed);
  }
  if (value.is_string()) {
    const auto& text = value.get_ref<const std::string&>();
    if (text == "any") return ExpectedVersion::any();
    if (text == "no_stream") return ExpectedVersion::no_stream();
    if (text == "stream_exists") return ExpectedVersion::stream_exists();
    invalid("expected_version '" + shown(text) + "' is not " + kAllowed);
  }
  invalid("field 'expected_version' must be " + kAllowed + ", got " + describe(value));
}

namespace {

Metadata parse_metadata(const Json& value) {
  if (!value.is_object()) {
    invalid("field 'metadata' must be an object of strings, got " + describe(value));
  }
  Metadata metadata;
  for (const auto& [key, entry] : value.items()) {
    if (!entry.is_string()) {
      invalid("metadata value of '" + shown(key) + "' must be a string, got " + describe(entry));
    }
    metadata.emplace(key, entry.get<std::string>());
  }
  return metadata;
}

std::string encode_data(const Json* data, const Json* data_base64, ContentType type) {
  if (type == ContentType::bytes) {
    if (data) invalid("field 'data' is not allowed with content_type bytes: give data_base64");
    if (!data_base64) invalid("content_type bytes needs field 'data_base64'");
    try {
      return base64_decode(string_field(*data_base64, "data_base64"));
    } catch (const Error& error) {
      invalid(std::string("field 'data_base64': ") + error.what());
    }
  }
  if (data_base64) {
    invalid("field 'data_base64' is only allowed with content_type bytes, not " +
            std::string(to_string(type)));
  }
  static const Json kNull;
  const Json& value = data ? *data : kNull;
  if (type == ContentType::json) return dump(value);
  std::vector<std::uint8_t> packed = Json::to_msgpack(value);
  return std::string(packed.begin(), packed.end());
}

// Checks nesting depth without recursing deeper than the limit.
class DepthCheck : public nlohmann::json_sax<Json> {
 public:
  bool null() override { return true; }
  bool boolean(bool) override { return true; }
  bool number_integer(number_integer_t) override { return true; }
  bool number_unsigned(number_unsigned_t) override { return true; }
  bool number_float(number_float_t value, const string_t&) override {
    return std::isfinite(value);  // JSON has no NaN or infinity
  }
  bool string(string_t&) override { return true; }
  bool binary(binary_t&) override { return false; }  // JSON has no binary
  bool start_object(std::size_t) override { return ++depth_ <= kMaxJsonDepth; }
  bool key(string_t&) override { return true; }
  bool end_object() override {
    --depth_;
    return true;
  }
  bool start_array(std::size_t) override { return ++depth_ <= kMaxJsonDepth; }
  bool end_array() override {
    --depth_;
    return true;
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception&) override {
    return false;
  }

 private:
  int depth_ = 0;
};

// The event's data as JSON, or nothing when it is bytes or does not decode
// to something JSON can show faithfully.
std::optional<Json> decoded_data(const RecordedEvent& event) {
  if (event.content_type == ContentType::bytes) return std::nullopt;
  const std::string& data = event.data;
  const auto format = event.content_type == ContentType::msgpack
                          ? nlohmann::detail::input_format_t::msgpack
                          : nlohmann::detail::input_format_t::json;
  DepthCheck check;
  try {
    if (!Json::sax_parse(data.begin(), data.end(), &check, format)) return std::nullopt;
    Json value = format == nlohmann::detail::input_format_t::msgpack
                     ? Json::from_msgpack(data.begin(), data.end())
                     : Json::parse(data.begin(), data.end());
    (void)value.dump();  // throws when a string is not UTF-8
    return value;
  } catch (const Json::exception&) {
    return std::nullopt;
  }
}

// {"traceparent": "00-…", "tracestate": "…"} (tracestate optional).
TraceContext parse_trace_context(const Json& v) {
  if (!v.is_object()) invalid("trace_context must be an object {\"traceparent\", \"tracestate\"}, got " + describe(v));
  TraceContext context;
  for (const auto& [name, value] : v.items()) {
    if (name == "traceparent") {
      context.traceparent = string_field(value, "trace_context.traceparent");
    } else if (name == "tracestate") {
      context.tracestate = string_field(value, "trace_context.tracestate");
    } else {
      invalid("unknown field '" + shown(name) + "' in trace_context");
    }
  }
  if (v.find("traceparent") == v.end()) invalid("trace_context has no traceparent");
  check_trace_context(context);
  return context;
}

}  // namespace

bool is_blank(std::string_view line) noexcept {
  return line.find_first_not_of(" \t\r\n") == std::string_view::npos;
}

Batch parse_event_line(std::string_view line) {
  const Json object = parse_json_text(line, true);
  if (!object.is_object()) invalid("a line must be a JSON object, got " + describe(object));
  return parse_event_object(object);
}

Batch parse_event_object(const Json& object) {
  if (!object.is_object()) invalid("an event must be a JSON object, got " + describe(object));
  for (const auto& [name, value] : object.items()) {
    bool known = false;
    for (const char* f : kFields) known = known || name == f;
    if (!known) invalid("unknown field '" + shown(name) + "'");
  }

  EventData event;
  const Json* type = field(object, "type");
  if (!type) invalid("missing field 'type'");
  event.type = string_field(*type, "type");
  if (const Json* v = field(object, "aggregate")) event.aggregate = string_field(*v, "aggregate");
  if (const Json* v = field(object, "metadata")) event.metadata = parse_metadata(*v);
  if (const Json* v = field(object, "idempotency_key")) {
    event.idempotency_key = string_field(*v, "idempotency_key");
  }
  if (const Json* v = field(object, "content_type")) {
    event.content_type = parse_content_type(string_field(*v, "content_type"));
  }
  event.data = encode_data(field(object, "data"), field(object, "data_base64"), event.content_type);
  if (const Json* v = field(object, "schema_version")) {
    if (!v->is_number_unsigned() || v->get<std::uint64_t>() == 0 || v->get<std::uint64_t>() > 0xffffffffu) {
      invalid("schema_version must be an integer from 1 to 4294967295, got " + describe(*v));
    }
    event.schema_version = static_cast<std::uint32_t>(v->get<std::uint64_t>());
  }
  if (const Json* v = field(object, "trace_context")) event.trace_context = parse_trace_context(*v);

  Batch batch;
  if (const Json* v = field(object, "expected_version")) {
    ExpectedVersion expected = parse_expected_version(*v);
    if (expected.kind() != ExpectedVersion::Kind::any) {
      if (event.aggregate.empty()) {
        invalid("expected_version " + expected.to_string() +
                " given for an event without aggregate");
      }
      batch.expectations.push_back({event.aggregate, expected});
    }
  }
  batch.events.push_back(std::move(event));
  return batch;
}

Json appended_event(const AppendedEvent& event) {
  Json out;
  out["id"] = event.id.to_string();
  out["sequence"] = event.id.sequence;
  out["aggregate_version"] = event.aggregate_version;
  return out;
}

std::string appended_event_json(const AppendedEvent& event, bool replayed) {
  Json out = appended_event(event);
  if (replayed) out["replayed"] = true;
  return dump(out);
}

Json health_json(const HealthStatus& h) {
  Json j;
  j["state"] = std::string(to_string(h.state));
  j["reason"] = h.reason;
  j["since"] = h.since_ns != 0 ? Json(format_time(h.since_ns)) : Json(nullptr);
  j["since_ns"] = h.since_ns;
  j["manual"] = h.manual;
  j["pid"] = h.pid;
  return j;
}

std::string recorded_event_json(const RecordedEvent& event) {
  Json out;
  out["id"] = event.id.to_string();
  out["sequence"] = event.id.sequence;
  out["timestamp_ns"] = event.id.timestamp_ns;
  out["node_id"] = event.id.node_id;
  out["type"] = event.type;
  out["aggregate"] = event.aggregate;
  out["aggregate_version"] = event.aggregate_version;
  out["content_type"] = std::string(to_string(event.content_type));
  out["metadata"] = Json::object();
  for (const auto& [key, value] : event.metadata) out["metadata"][key] = value;
  if (auto data = decoded_data(event)) {
    out["data"] = std::move(*data);
  } else {
    out["data_base64"] = base64_encode(event.data);
  }
  if (event.idempotency_key) out["idempotency_key"] = *event.idempotency_key;
  out["schema_version"] = event.schema_version;
  if (event.trace_context) {
    out["trace_context"] = {{"traceparent", event.trace_context->traceparent},
                            {"tracestate", event.trace_context->tracestate}};
  }
  out["checksum"] = to_hex(event.checksum);
  return dump(out);
}

std::string stats_json(const StoreStats& stats) {
  Json out;
  out["event_count"] = stats.event_count;
  out["last_sequence"] = stats.last_sequence;
  out["last_timestamp_ns"] = stats.last_timestamp_ns;
  out["aggregate_count"] = stats.aggregate_count;
  out["type_count"] = stats.type_count;
  out["node_id"] = stats.node_id;
  out["format_version"] = stats.format_version;
  out["map_size_bytes"] = stats.map_size_bytes;
  out["map_used_bytes"] = stats.map_used_bytes;
  out["append_backlog"] = stats.append_backlog;
  out["commits"] = stats.commits;
  out["read_only"] = stats.read_only;
  out["failure"] = stats.failure;
  return dump(out);
}

}  // namespace lighthouse::tool
