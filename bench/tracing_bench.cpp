// What tracing costs an append (issue 22): the hooks with no sink, and
// pipelined appends with no sink, 1 % and 100 % sampling into the tool's
// exporter (tools/lighthouse/otlp: its bounded queue and a thread that
// encodes every batch as OTLP protobuf, sent to a transport that discards
// it — the network is not what is measured).
//
//   ninja -C build benchmarks && ./build/bench/tracing_bench
#include <benchmark/benchmark.h>

#include <filesystem>
#include <future>
#include <memory>
#include <string>
#include <vector>

#include "lighthouse/lighthouse.h"
#include "otlp/encoding.h"
#include "otlp/exporter.h"

namespace fs = std::filesystem;
using namespace lighthouse;

namespace {

// What the append path does with tracing unset: a default Span in the
// request, one test of the sink when it is made, one when its group commits
// and one when it completes.
void BM_HooksWithoutSink(benchmark::State& state) {
  const tracing::TracingOptions none;
  for (auto _ : state) {
    tracing::Span span;
    benchmark::DoNotOptimize(span);
    if (none.sink) span = tracing::Span(none, "append", tracing::SpanKind::producer);
    benchmark::ClobberMemory();
    if (none.sink) span.end();
    if (span.recording()) span.end();
  }
}
BENCHMARK(BM_HooksWithoutSink);

// A span made, described and ended into a sink that keeps nothing.
class NullSink : public tracing::SpanSink {
 public:
  void on_end(tracing::SpanData span) noexcept override { benchmark::DoNotOptimize(span); }
};

void BM_SpanRecorded(benchmark::State& state) {
  tracing::TracingOptions t;
  t.sink = std::make_shared<NullSink>();
  for (auto _ : state) {
    tracing::Span span(t, "append", tracing::SpanKind::producer);
    span.set("db.system", std::string("lighthouse"));
    span.set("lighthouse.events", std::int64_t{1});
    span.end();
  }
}
BENCHMARK(BM_SpanRecorded);

// The committer's append span (Span::end_described, as WritePath ends it)
// into a sink that keeps nothing.
void BM_AppendSpanDescribed(benchmark::State& state) {
  tracing::TracingOptions t;
  t.sink = std::make_shared<NullSink>();
  const tracing::SpanContext commit{tracing::new_trace_id(), tracing::new_span_id(), 1, {}, false};
  for (auto _ : state) {
    tracing::Span span = tracing::Span::deferred(t, "append", tracing::SpanKind::producer);
    span.end_described(0, [&](tracing::SpanData& d) {
      d.attributes.emplace_back("db.system", std::string("lighthouse"));
      d.attributes.emplace_back("db.operation.name", std::string("append"));
      d.attributes.emplace_back("lighthouse.batch.events", std::int64_t{1});
      d.attributes.emplace_back("lighthouse.queue_time_ns", std::int64_t{123456});
      d.attributes.emplace_back("lighthouse.aggregate", std::string("order-1234567"));
      d.links.emplace_back(tracing::SpanLink{commit, {}});
      d.attributes.emplace_back("lighthouse.first_sequence", std::int64_t{987654});
      d.attributes.emplace_back("lighthouse.events", std::int64_t{1});
      d.attributes.emplace_back("lighthouse.replayed", false);
    });
  }
}
BENCHMARK(BM_AppendSpanDescribed);

// The same span as the store now ends a committed append's (Span::end_append):
// into a sink that keeps the AppendSpan (arg 1: nothing made), or into one
// that takes the default, on_end(to_span_data()) (arg 0).
class NullAppendSink : public NullSink {
 public:
  void on_end_append(tracing::AppendSpan span) noexcept override { benchmark::DoNotOptimize(span); }
};

void BM_AppendSpanEnded(benchmark::State& state) {
  tracing::TracingOptions t;
  if (state.range(0)) t.sink = std::make_shared<NullAppendSink>();
  else t.sink = std::make_shared<NullSink>();
  const tracing::SpanContext commit{tracing::new_trace_id(), tracing::new_span_id(), 1, {}, false};
  for (auto _ : state) {
    tracing::Span span = tracing::Span::deferred(t, "append", tracing::SpanKind::producer);
    tracing::AppendSpan a;
    a.operation = "append";
    a.batch_events = 1;
    a.queue_ns = 123456;
    a.aggregate = "order-1234567";
    a.commit_trace_id = commit.trace_id;
    a.commit_span_id = commit.span_id;
    a.commit_flags = 1;
    a.has_first_sequence = true;
    a.first_sequence = 987654;
    a.events = 1;
    span.end_append(0, std::move(a));
  }
}
BENCHMARK(BM_AppendSpanEnded)->Arg(0)->Arg(1);

// The exporter's encoding of one batch of 512 store-shaped append spans as
// OTLP protobuf (its thread's work per batch): time per span.
void BM_EncodeProtobuf(benchmark::State& state) {
  const tracing::SpanContext commit{tracing::new_trace_id(), tracing::new_span_id(), 1, {}, false};
  std::vector<tracing::SpanData> spans(512);
  for (auto& d : spans) {
    d.context = {tracing::new_trace_id(), tracing::new_span_id(), 1, {}, false};
    d.name = "append";
    d.kind = tracing::SpanKind::producer;
    d.start_ns = tracing::now_ns();
    d.end_ns = d.start_ns + 2'500'000;
    d.attributes.emplace_back("db.system", std::string("lighthouse"));
    d.attributes.emplace_back("db.operation.name", std::string("append"));
    d.attributes.emplace_back("lighthouse.batch.events", std::int64_t{1});
    d.attributes.emplace_back("lighthouse.queue_time_ns", std::int64_t{1'234'567});
    d.attributes.emplace_back("lighthouse.aggregate", std::string("order-1234567"));
    d.attributes.emplace_back("lighthouse.first_sequence", std::int64_t{987'654});
    d.attributes.emplace_back("lighthouse.events", std::int64_t{1});
    d.attributes.emplace_back("lighthouse.replayed", false);
    d.links.emplace_back(tracing::SpanLink{commit, {}});
  }
  const tool::otlp::Resource resource{{{"service.name", std::string("bench")}}};
  for (auto _ : state) benchmark::DoNotOptimize(tool::otlp::encode_protobuf(resource, spans));
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * spans.size()));
}
BENCHMARK(BM_EncodeProtobuf);

// Async appends, 1,000 in flight per iteration, no_meta_sync (one sync per
// group: the committer's work shows, not the disk's).
void BM_AppendAsync(benchmark::State& state) {
  const int mode = static_cast<int>(state.range(0));  // 0: no sink, 1: 1 %, 2: 100 %, 3: 0 %
  const fs::path dir = fs::temp_directory_path() / ("tracing-bench-" + std::to_string(mode));
  fs::remove_all(dir);
  std::shared_ptr<tool::otlp::BatchSpanProcessor> exporter;
  Options options;
  options.durability = Durability::no_meta_sync;
  options.health.enabled = false;
  if (mode > 0) {
    tool::otlp::ExporterConfig config;
    config.endpoint = "http://127.0.0.1:1/v1/traces";
    config.schedule_delay = std::chrono::milliseconds(200);
    exporter = std::make_shared<tool::otlp::BatchSpanProcessor>(
        config, [](const std::string& body, std::chrono::milliseconds) {
          benchmark::DoNotOptimize(body.data());
          return tool::otlp::HttpReply{200, std::nullopt};
        });
    options.tracing.sink = exporter;
    options.tracing.sampler = {tracing::SamplerKind::parent_based_trace_id_ratio, mode == 1 ? 0.01 : mode == 2 ? 1.0 : 0.0};
  }
  {
    Store store = Store::open(dir, options);
    EventData e;
    e.type = "OrderPlaced";
    e.content_type = ContentType::bytes;
    e.data.assign(256, 'x');
    std::vector<std::future<AppendResult>> futures;
    futures.reserve(1000);
    for (auto _ : state) {
      futures.clear();
      for (int i = 0; i < 1000; ++i) {
        EventData one = e;
        one.aggregate = "order-" + std::to_string(i % 100);
        futures.push_back(store.append_async(std::move(one)));
      }
      for (auto& f : futures) f.get();
    }
    state.SetItemsProcessed(state.iterations() * 1000);
  }
  if (exporter) {
    exporter->shutdown();
    const auto c = exporter->counters();
    state.counters["spans_exported"] = static_cast<double>(c.exported);
    state.counters["spans_dropped"] = static_cast<double>(c.dropped);
  }
  fs::remove_all(dir);
}
// Real time: the work is spread over the appending thread, the committer and
// the exporter, so the caller's CPU time alone would not be the throughput.
BENCHMARK(BM_AppendAsync)->Arg(0)->Arg(1)->Arg(2)->Arg(3)->Unit(benchmark::kMillisecond)->MinTime(2.0)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
