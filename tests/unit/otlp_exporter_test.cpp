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
