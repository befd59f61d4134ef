// The tool's OTLP exporter (tools/lighthouse/otlp/exporter.h) as a span
// sink: its bounded queue, counted in spans while the exporter's thread
// holds a batch in a request, and its batches of at most max_batch spans.
// The transport is the test's: it counts the requests and their sizes (the
// spans are counted by the exporter's own counters), and can be held.
#include <catch2/catch.hpp>

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "otlp/exporter.h"

using namespace lighthouse;
using namespace std::chrono_literals;

namespace {

// A transport that answers 200 to each request, after the test lets it.
struct HeldTransport {
  std::mutex mutex;
  std::condition_variable changed;
  int requests = 0;
  bool open = false;
  std::vector<std::size_t> body_sizes;

  tool::otlp::Transport transport() {
    return [this](const std::string& body, std::chrono::milliseconds) {
      std::unique_lock lock(mutex);
      ++requests;
      body_sizes.push_back(body.size());
      changed.notify_all();
      changed.wait_for(lock, 10s, [&] { return open; });
      return tool::otlp::HttpReply{200, std::nullopt};
    };
  }
  bool wait_requests(int n) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, 10s, [&] { return requests >= n; });
  }
  void release() {
    std::lock_guard lock(mutex);
    open = true;
    changed.notify_all();
  }
};

tracing::SpanData a_span(int i) {
  tracing::SpanData s;
  s.context.trace_id = tracing::new_trace_id();
  s.context.span_id = tracing::new_span_id();
  s.context.flags = 1;
  s.name = "append";
  s.start_ns = 1;
  s.end_ns = 2;
  s.attributes.push_back({"lighthouse.sequence", static_cast<std::int64_t>(i)});
  s.attributes.push_back({"lighthouse.aggregate", std::string(40, 'a')});  // a string on the heap
  return s;
}

tool::otlp::ExporterConfig config(std::size_t queue, std::size_t batch) {
  tool::otlp::ExporterConfig c;
  c.endpoint = "http://127.0.0.1:1/v1/traces";
  c.max_queue = queue;
  c.max_batch = batch;
  c.schedule_delay = 50ms;
  return c;
}

}  // namespace

TEST_CASE("exporter: the queue holds max_queue spans beside the batch being sent; the rest are dropped and counted",
          "[tracing][otlp]") {
  HeldTransport held;
  tool::otlp::BatchSpanProcessor exporter(config(8, 4), held.transport());
  for (int i = 0; i < 4; ++i) exporter.on_end(a_span(i));  // a full batch: sent at once
  REQUIRE(held.wait_requests(1));
  // The request is held: the queue takes 8 more, the 12 after them are dropped.
  for (int i = 4; i < 24; ++i) exporter.on_end(a_span(i));
  CHECK(exporter.counters().dropped == 12);
  held.release();
  exporter.shutdown();
  const auto c = exporter.counters();
  CHECK(c.exported == 12);
  CHECK(c.dropped == 12);
  CHECK(held.requests == 3);  // 4, then 4 and 4: never more than max_batch in one
  // After shutdown a span is dropped, not queued.
  exporter.on_end(a_span(99));
  CHECK(exporter.counters().dropped == 13);
}

TEST_CASE("exporter: its chunks are reused round after round; every span is sent once", "[tracing][otlp]") {
  HeldTransport held;
  held.release();
  tool::otlp::BatchSpanProcessor exporter(config(64, 16), held.transport());
  std::uint64_t ended = 0;
  for (int round = 0; round < 50; ++round) {
    for (int i = 0; i < 40; ++i, ++ended) exporter.on_end(a_span(i));
    // Bounded: what the exporter took is sent within its schedule delay.
    for (int wait = 0; wait < 200; ++wait) {
      const auto c = exporter.counters();
      if (c.exported + c.dropped == ended) break;
      std::this_thread::sleep_for(5ms);
    }
  }
  exporter.shutdown();
  const auto c = exporter.counters();
  CHECK(c.exported + c.dropped == ended);
  CHECK(c.exported >= ended / 2);  // 40 at a time into a queue of 64: most fit
  std::lock_guard lock(held.mutex);
  for (std::size_t size : held.body_sizes) CHECK(size > 0);
}

namespace {

// Protobuf's wire format read back field by field (varint 0, fixed64 1,
// length-delimited 2, fixed32 5): enough to walk the request's nesting and
// to find each span's name and attributes.
struct WireField {
  unsigned field;
  unsigned wire;
  std::uint64_t number;
  std::string_view bytes;
};

std::uint64_t read_varint(std::string_view& in) {
  std::uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    REQUIRE_FALSE(in.empty());
    const auto b = static_cast<unsigned char>(in.front());
    in.remove_prefix(1);
    v |= static_cast<std::uint64_t>(b & 0x7f) << shift;
    if (b < 0x80) return v;
  }
  FAIL("a varint longer than 10 bytes");
  return 0;
}

std::vector<WireField> read_message(std::string_view in) {
  std::vector<WireField> out;
  while (!in.empty()) {
    const std::uint64_t key = read_varint(in);
    WireField f{static_cast<unsigned>(key >> 3), static_cast<unsigned>(key & 7), 0, {}};
    if (f.wire == 0) {
      f.number = read_varint(in);
    } else if (f.wire == 1 || f.wire == 5) {
      const std::size_t n = f.wire == 1 ? 8 : 4;
      REQUIRE(in.size() >= n);
      in.remove_prefix(n);
    } else {
      REQUIRE(f.wire == 2);
      const std::uint64_t n = read_varint(in);
      REQUIRE(n <= in.size());  // a length that frames more than is left
      f.bytes = in.substr(0, n);
      in.remove_prefix(n);
    }
    out.push_back(f);
  }
  return out;
}

std::vector<std::string_view> fields(std::string_view message, unsigned field) {
  std::vector<std::string_view> out;
  for (const auto& f : read_message(message)) {
    if (f.field == field && f.wire == 2) out.push_back(f.bytes);
  }
  return out;
}

}  // namespace

TEST_CASE("protobuf encoding: each span is framed by its exact length, whatever the length's width",
          "[tracing][otlp]") {
  // Spans are written in place with two bytes kept for their length: a span
  // under 128 bytes (a one-byte length) and one over 16,383 (three bytes)
  // are moved; a typical one (two bytes) is not.
  tracing::SpanData tiny;
  tiny.context.trace_id = tracing::new_trace_id();
  tiny.context.span_id = tracing::new_span_id();
  tiny.name = "t";
  tracing::SpanData typical = a_span(7);
  typical.name = "typical";
  tracing::SpanData huge = a_span(8);
  huge.name = "huge";
  huge.attributes.push_back({"lighthouse.big", std::string(20'000, 'x')});
  // A link and a status are written the same way, one byte kept for their
  // length: a short link is not moved, a long status message is.
  const tracing::SpanContext linked{tracing::new_trace_id(), tracing::new_span_id(), 1, {}, false};
  typical.links.push_back(tracing::SpanLink{linked, {}});
  huge.status = tracing::StatusCode::error;
  huge.status_message = std::string(300, 'e');
  const std::vector<tracing::SpanData> spans = {tiny, typical, huge, tiny, typical};

  tool::otlp::Resource resource;
  resource.attributes.push_back({"service.name", std::string("test")});
  const std::string body = tool::otlp::encode_protobuf(resource, spans);

  const auto resource_spans = fields(body, 1);
  REQUIRE(resource_spans.size() == 1);
  const auto scope_spans = fields(resource_spans[0], 2);
  REQUIRE(scope_spans.size() == 1);
  const auto encoded = fields(scope_spans[0], 2);  // ScopeSpans.spans
  REQUIRE(encoded.size() == spans.size());
  CHECK(encoded[0].size() < 128);
  CHECK(encoded[1].size() >= 128);
  CHECK(encoded[1].size() < 16'384);
  CHECK(encoded[2].size() >= 16'384);
  for (std::size_t i = 0; i < spans.size(); ++i) {
    const auto name = fields(encoded[i], 5);
    REQUIRE(name.size() == 1);
    CHECK(name[0] == spans[i].name);
    const auto ids = fields(encoded[i], 1);
    REQUIRE(ids.size() == 1);
    CHECK(ids[0] == std::string_view(reinterpret_cast<const char*>(spans[i].context.trace_id.bytes.data()), 16));
    CHECK(fields(encoded[i], 9).size() == spans[i].attributes.size());  // Span.attributes
  }
  const auto links = fields(encoded[1], 13);  // Span.links → Link.trace_id (1)
  REQUIRE(links.size() == 1);
  CHECK(fields(links[0], 1).at(0) == std::string_view(reinterpret_cast<const char*>(linked.trace_id.bytes.data()), 16));
  const auto status = fields(encoded[2], 15);  // Span.status → Status.message (2)
  REQUIRE(status.size() == 1);
  CHECK(fields(status[0], 2).at(0) == std::string(300, 'e'));
  CHECK(fields(encoded[0], 13).empty());
  CHECK(fields(encoded[0], 15).empty());
  // The big attribute's value, whole: KeyValue.value (2) → AnyValue.string_value (1).
  const auto attributes = fields(encoded[2], 9);
  const auto value = fields(fields(attributes.back(), 2).at(0), 1);
  REQUIRE(value.size() == 1);
  CHECK(value[0] == std::string(20'000, 'x'));
}

namespace {

tracing::AppendSpan an_append_span(bool aggregate, bool first_sequence, bool commit, bool parent,
                                   std::string tracestate) {
  tracing::AppendSpan a;
  a.trace_id = tracing::new_trace_id();
  a.span_id = tracing::new_span_id();
  if (parent) a.parent_span_id = tracing::new_span_id();
  a.flags = 1;
  a.tracestate = std::move(tracestate);
  a.name = "append";
  a.start_ns = 1'700'000'000'000'000'000ULL;
  a.end_ns = a.start_ns + 123'456;
  a.operation = "append_batches";
  a.batch_events = 3;
  a.queue_ns = 987'654;
  if (aggregate) a.aggregate = std::string(200, 'g');  // a length of two varint bytes
  a.has_first_sequence = first_sequence;
  a.first_sequence = 1ULL << 40;
  a.events = 3;
  a.replayed = !first_sequence;
  if (commit) {
    a.commit_trace_id = tracing::new_trace_id();
    a.commit_span_id = tracing::new_span_id();
    a.commit_flags = 1;
  }
  return a;
}

}  // namespace

TEST_CASE("an AppendSpan is the store's append span: to_span_data, and its encodings byte for byte",
          "[tracing][otlp]") {
  tool::otlp::Resource resource;
  resource.attributes.emplace_back("service.name", std::string("test"));
  for (int k = 0; k < 32; ++k) {
    const tracing::AppendSpan a =
        an_append_span(k & 1, k & 2, k & 4, k & 8, k & 16 ? "vendor=value" : "");
    const tracing::SpanData d = a.to_span_data();
    // What the store's span carries (docs/tracing.md), in its order.
    std::vector<std::string_view> keys;
    for (const auto& attr : d.attributes) keys.push_back(attr.key);
    std::vector<std::string_view> expected = {"db.system", "db.operation.name", "lighthouse.batch.events",
                                              "lighthouse.queue_time_ns"};
    if (k & 1) expected.push_back("lighthouse.aggregate");
    if (k & 2) expected.push_back("lighthouse.first_sequence");
    expected.push_back("lighthouse.events");
    expected.push_back("lighthouse.replayed");
    CHECK(keys == expected);
    CHECK(d.name == "append");
    CHECK(d.kind == tracing::SpanKind::producer);
    CHECK(d.context.trace_id == a.trace_id);
    CHECK(d.context.span_id == a.span_id);
    CHECK(d.context.tracestate == a.tracestate);
    CHECK(d.parent_span_id == a.parent_span_id);
    CHECK(d.start_ns == a.start_ns);
    CHECK(d.end_ns == a.end_ns);
    CHECK(std::get<std::string>(*d.attribute("db.operation.name")) == "append_batches");
    CHECK(std::get<std::int64_t>(*d.attribute("lighthouse.queue_time_ns")) == 987'654);
    CHECK(std::get<bool>(*d.attribute("lighthouse.replayed")) == !(k & 2));
    REQUIRE(d.links.size() == ((k & 4) ? 1u : 0u));
    if (k & 4) {
      CHECK(d.links[0].context.trace_id == a.commit_trace_id);
      CHECK(d.links[0].context.span_id == a.commit_span_id);
      CHECK(d.links[0].context.flags == 1);
    }
    CHECK(d.status == tracing::StatusCode::unset);
    // Encoded straight from the AppendSpan: the bytes of its SpanData.
    CHECK(tool::otlp::encode_protobuf(resource, {}, {a}) == tool::otlp::encode_protobuf(resource, {d}));
    CHECK(tool::otlp::encode_json(resource, {}, {a}) == tool::otlp::encode_json(resource, {d}));
  }
  // Both kinds in one batch: the spans, then the append spans.
  const tracing::SpanData other = a_span(7);
  const tracing::AppendSpan a = an_append_span(true, true, true, false, "");
  CHECK(tool::otlp::encode_protobuf(resource, {other}, {a}) ==
        tool::otlp::encode_protobuf(resource, {other, a.to_span_data()}));
}

TEST_CASE("exporter: append spans and other spans share the queue's bound and its batches", "[tracing][otlp]") {
  HeldTransport held;
  tool::otlp::BatchSpanProcessor exporter(config(8, 4), held.transport());
  for (int i = 0; i < 4; ++i) exporter.on_end_append(an_append_span(true, true, true, false, ""));
  REQUIRE(held.wait_requests(1));
  // The request is held: 8 more fit, of either kind; the rest are dropped.
  for (int i = 0; i < 10; ++i) {
    if (i % 2) exporter.on_end(a_span(i));
    else exporter.on_end_append(an_append_span(false, false, false, true, ""));
  }
  CHECK(exporter.counters().dropped == 2);
  held.release();
  exporter.shutdown();
  const auto c = exporter.counters();
  CHECK(c.exported == 12);
  CHECK(c.dropped == 2);
  CHECK(held.requests == 3);
}
