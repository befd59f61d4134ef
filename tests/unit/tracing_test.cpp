// Tracing in the library: the spans a store hands its sink, their
// parent/child structure and links, the trace context events carry, and
// sampling.
#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <future>
#include <set>
#include <chrono>
#include <mutex>
#include <thread>

#include "lighthouse/lighthouse.h"
#include "support/allocation_meter.h"
#include "support/events.h"
#include "support/temp_dir.h"

using namespace lighthouse;
using namespace lighthouse::testing;
using tracing::SpanContext;
using tracing::SpanData;

namespace {

class RecordingSink : public tracing::SpanSink {
 public:
  void on_end(SpanData span) noexcept override {
    std::lock_guard lock(mutex_);
    spans_.push_back(std::move(span));
  }
  std::vector<SpanData> spans() const {
    std::lock_guard lock(mutex_);
    return spans_;
  }
  std::vector<SpanData> named(const std::string& name) const {
    std::vector<SpanData> out;
    for (auto& s : spans()) {
      if (s.name == name) out.push_back(s);
    }
    return out;
  }
  // An append's span reaches the sink once its request is freed, just after
  // the append returns (by the committer once nothing is queued, or the next
  // append's thread): waited for, up to 10 s.
  std::vector<SpanData> wait_named(const std::string& name, std::size_t count) const {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    auto found = named(name);
    while (found.size() < count && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
      found = named(name);
    }
    return found;
  }
  void clear() {
    std::lock_guard lock(mutex_);
    spans_.clear();
  }

 private:
  mutable std::mutex mutex_;
  std::vector<SpanData> spans_;
};

Options traced(const std::shared_ptr<RecordingSink>& sink) {
  Options o = quiet_options();
  o.tracing.sink = sink;
  return o;
}

std::string text_of(const SpanData& s, const char* key) {
  const auto* v = s.attribute(key);
  return v && std::holds_alternative<std::string>(*v) ? std::get<std::string>(*v) : "";
}

std::int64_t int_of(const SpanData& s, const char* key) {
  const auto* v = s.attribute(key);
  return v && std::holds_alternative<std::int64_t>(*v) ? std::get<std::int64_t>(*v) : -1;
}

SpanContext parent_context() {
  return *SpanContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01", "vendor=x");
}

}  // namespace

TEST_CASE("traceparent: version 00 exactly, later versions by their first fields, the rest no context",
          "[tracing]") {
  const auto c = SpanContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  REQUIRE(c);
  CHECK(c->trace_id.hex() == "0af7651916cd43dd8448eb211c80319c");
  CHECK(c->span_id.hex() == "b7ad6b7169203331");
  CHECK(c->sampled());
  CHECK(c->remote);
  CHECK(c->traceparent() == "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01");
  CHECK(SpanContext::parse("01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-what-follows"));
  for (const char* bad : {"", "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-0",
                          "00-0AF7651916CD43DD8448EB211C80319C-b7ad6b7169203331-01",
                          "00-00000000000000000000000000000000-b7ad6b7169203331-01",
                          "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
                          "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                          "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
                          "00_0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}) {
    INFO(bad);
    CHECK_FALSE(SpanContext::parse(bad));
  }
  // A bad tracestate is dropped, not the context.
  const auto dropped = SpanContext::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00", "a=\x01");
  REQUIRE(dropped);
  CHECK(dropped->tracestate.empty());
  CHECK_FALSE(dropped->sampled());
}

TEST_CASE("samplers: parent-based follows the parent; the ratio keeps a trace whole by its ID", "[tracing]") {
  using tracing::Sampler;
  using tracing::SamplerKind;
  const SpanContext sampled = parent_context();
  SpanContext unsampled = sampled;
  unsampled.flags = 0;
  const Sampler ratio{SamplerKind::parent_based_trace_id_ratio, 0.25};
  CHECK(ratio.sampled(&sampled, sampled.trace_id));
  CHECK_FALSE(ratio.sampled(&unsampled, unsampled.trace_id));
  int kept = 0;
  for (int i = 0; i < 20000; ++i) {
    const auto id = tracing::new_trace_id();
    const bool a = ratio.sampled(nullptr, id);
    CHECK(a == Sampler{SamplerKind::trace_id_ratio, 0.25}.sampled(&unsampled, id));  // the same trace, the same answer
    kept += a ? 1 : 0;
  }
  CHECK(kept > 4500);
  CHECK(kept < 5500);
  CHECK_FALSE(Sampler{SamplerKind::parent_based_always_off, 1}.sampled(nullptr, sampled.trace_id));
  CHECK(Sampler{SamplerKind::parent_based_always_off, 1}.sampled(&sampled, sampled.trace_id));
  CHECK(Sampler{SamplerKind::always_on, 0}.sampled(&unsampled, sampled.trace_id));
  CHECK(tracing::parse_sampler("parentbased_traceidratio") == SamplerKind::parent_based_trace_id_ratio);
  CHECK(error_code_of([] { tracing::parse_sampler("sometimes"); }) == ErrorCode::invalid_argument);
}

TEST_CASE("an append inside a trace: its span is the caller's child, linked to its group's commit, and the "
          "events carry its context",
          "[tracing]") {
  TempDir dir;
  auto sink = std::make_shared<RecordingSink>();
  Store store = Store::open(dir / "store", traced(sink));
  const SpanContext parent = parent_context();
  AppendResult appended;
  {
    const tracing::ContextScope scope(parent);
    appended = store.append(event("OrderPlaced", "order-1"));
  }
  const auto appends = sink->wait_named("append", 1);
  REQUIRE(appends.size() == 1);
  const SpanData& a = appends.front();
  CHECK(a.context.trace_id == parent.trace_id);
  CHECK(a.parent_span_id == parent.span_id);
  CHECK(a.kind == tracing::SpanKind::producer);
  CHECK(text_of(a, "db.system") == "lighthouse");
  CHECK(text_of(a, "db.operation.name") == "append");
  CHECK(int_of(a, "lighthouse.events") == 1);
  CHECK(int_of(a, "lighthouse.first_sequence") == static_cast<std::int64_t>(appended.events[0].id.sequence));
  CHECK(int_of(a, "lighthouse.queue_time_ns") >= 0);
  CHECK(int_of(a, "lighthouse.queue_time_ns") <= static_cast<std::int64_t>(a.end_ns - a.start_ns));
  const auto commits = sink->named("commit");
  REQUIRE(commits.size() == 1);
  const SpanData& c = commits.front();
  REQUIRE(a.links.size() == 1);
  CHECK(a.links[0].context.span_id == c.context.span_id);
  CHECK(a.links[0].context.trace_id == c.context.trace_id);
  CHECK_FALSE(c.parent_span_id.valid());  // a commit is a trace of its own
  CHECK(int_of(c, "lighthouse.commit.events") == 1);
  CHECK(int_of(c, "lighthouse.commit.sync_ns") > 0);
  CHECK(c.end_ns <= a.end_ns);
  // The event holds the append span's context, the parent's tracestate kept.
  const RecordedEvent stored = store.get(appended.events[0].id);
  REQUIRE(stored.trace_context);
  CHECK(stored.trace_context->traceparent == a.context.traceparent());
  CHECK(stored.trace_context->tracestate == "vendor=x");
  CHECK(store.verify().ok());
}

TEST_CASE("one commit span for a group, linked from every append it carried; an event's own context is kept",
          "[tracing]") {
  TempDir dir;
  auto sink = std::make_shared<RecordingSink>();
  Store store = Store::open(dir / "store", traced(sink));
  EventData own = event("Own");
  own.trace_context = TraceContext{"00-11111111111111111111111111111111-2222222222222222-01", ""};
  std::vector<std::future<AppendResult>> futures;
  futures.push_back(store.append_async(std::move(own)));
  for (int i = 0; i < 200; ++i) futures.push_back(store.append_async(event("Many")));
  std::vector<EventId> ids;
  for (auto& f : futures) ids.push_back(f.get().events[0].id);
  const auto appends = sink->wait_named("append", 201);
  REQUIRE(appends.size() == 201);
  std::set<std::string> commits_linked;
  for (const auto& a : appends) {
    REQUIRE(a.links.size() == 1);
    commits_linked.insert(a.links[0].context.span_id.hex());
  }
  std::int64_t committed = 0;
  std::set<std::string> commit_ids;
  for (const auto& c : sink->named("commit")) {
    commit_ids.insert(c.context.span_id.hex());
    committed += int_of(c, "lighthouse.commit.events");
  }
  CHECK(commits_linked == commit_ids);
  CHECK(committed == 201);
  CHECK(commit_ids.size() < 201);  // grouped
  CHECK(store.get(ids[0]).trace_context->traceparent == "00-11111111111111111111111111111111-2222222222222222-01");
  // A root append (no caller context) sampled by the default sampler.
  const auto root = store.get(ids[1]);
  REQUIRE(root.trace_context);
  CHECK(SpanContext::of(*root.trace_context)->sampled());
}

TEST_CASE("every event of a traced batch carries its append's context, held once per append; an event's own "
          "is kept",
          "[tracing]") {
  TempDir dir;
  auto sink = std::make_shared<RecordingSink>();
  Store store = Store::open(dir / "store", traced(sink));
  const std::string own = "00-11111111111111111111111111111111-2222222222222222-01";
  std::vector<EventData> events;
  for (int i = 0; i < 5; ++i) events.push_back(event("Batched", "order-7"));
  events[2].trace_context = TraceContext{own, "mine=1"};
  const AppendResult one = store.append_batch(std::move(events));
  Batch a, b;
  a.events = {event("First"), event("Second")};
  b.events = {event("Third")};
  b.events[0].trace_context = TraceContext{own, ""};
  const auto several = store.append_batches({std::move(a), std::move(b)});
  const auto appends = sink->wait_named("append", 2);
  REQUIRE(appends.size() == 2);
  const auto context_of_span = [&](const char* operation) {
    for (const auto& s : appends) {
      if (text_of(s, "db.operation.name") == operation) return s.context.traceparent();
    }
    return std::string();
  };
  const std::string batch_context = context_of_span("append");
  const std::string batches_context = context_of_span("append_batches");
  REQUIRE_FALSE(batch_context.empty());
  REQUIRE_FALSE(batches_context.empty());
  for (std::size_t i = 0; i < one.events.size(); ++i) {
    const auto stored = store.get(one.events[i].id).trace_context;
    REQUIRE(stored);
    CHECK(stored->traceparent == (i == 2 ? own : batch_context));
    CHECK(stored->tracestate == (i == 2 ? "mine=1" : ""));
  }
  CHECK(store.get(several[0].events[0].id).trace_context->traceparent == batches_context);
  CHECK(store.get(several[0].events[1].id).trace_context->traceparent == batches_context);
  CHECK(store.get(several[1].events[0].id).trace_context->traceparent == own);
  CHECK(store.verify().ok());  // the checksums cover the contexts as stored
}

TEST_CASE("a failed append's span says why; validation failures too; nothing is written", "[tracing]") {
  TempDir dir;
  auto sink = std::make_shared<RecordingSink>();
  Store store = Store::open(dir / "store", traced(sink));
  store.append(event("Opened", "account-1"));
  REQUIRE(sink->wait_named("append", 1).size() == 1);
  sink->clear();
  CHECK(error_code_of([&] { store.append(event("Opened", "account-1"), ExpectedVersion::exact(5)); }) ==
        ErrorCode::wrong_expected_version);
  CHECK(error_code_of([&] { store.append(event("")); }) == ErrorCode::invalid_argument);
  // The conflict's span ends as its request is freed, the invalid append's
  // at once (it never reached the committer): in either order.
  auto appends = sink->wait_named("append", 2);
  REQUIRE(appends.size() == 2);
  if (text_of(appends[0], "error.type") != "wrong_expected_version") std::swap(appends[0], appends[1]);
  CHECK(appends[0].status == tracing::StatusCode::error);
  CHECK(text_of(appends[0], "error.type") == "wrong_expected_version");
  CHECK(text_of(appends[0], "lighthouse.aggregate") == "account-1");
  CHECK(int_of(appends[0], "lighthouse.actual_version") == 1);
  CHECK(appends[0].status_message.find("account-1") != std::string::npos);
  CHECK(int_of(appends[0], "lighthouse.events") == -1);  // nothing committed: no result attributes
  CHECK(appends[1].status == tracing::StatusCode::error);
  CHECK(text_of(appends[1], "error.type") == "invalid_argument");
  CHECK(store.stats().event_count == 1);
}

TEST_CASE("queries and aggregate reads: a span each, with the plan and the events returned", "[tracing]") {
  TempDir dir;
  auto sink = std::make_shared<RecordingSink>();
  Store store = Store::open(dir / "store", traced(sink));
  for (int i = 0; i < 5; ++i) store.append(event(i % 2 ? "A" : "B", "agg"));
  sink->clear();
  Query q;
  q.types = {"A"};
  std::size_t n = 0;
  for (auto cursor = store.query(q); cursor.next();) ++n;
  for (auto cursor = store.read_aggregate("agg", 2); cursor.next();) ++n;
  const auto queries = sink->named("query");
  REQUIRE(queries.size() == 1);
  CHECK(text_of(queries[0], "lighthouse.query.plan") == "by_type");
  CHECK(int_of(queries[0], "lighthouse.events_returned") == 2);
  const auto reads = sink->named("read_aggregate");
  REQUIRE(reads.size() == 1);
  CHECK(text_of(reads[0], "lighthouse.aggregate") == "agg");
  CHECK(int_of(reads[0], "lighthouse.events_returned") == 4);
  CHECK(n == 6);
  // A cursor dropped early ends its span with what it returned.
  { auto cursor = store.read_aggregate("agg"); cursor.next(); }
  CHECK(int_of(sink->named("read_aggregate").back(), "lighthouse.events_returned") == 1);
}

TEST_CASE("a delivery links to the append that stored the event; live deliveries can be its children",
          "[tracing]") {
  for (const bool as_child : {false, true}) {
    DYNAMIC_SECTION("live delivery as child: " << as_child) {
      TempDir dir;
      auto sink = std::make_shared<RecordingSink>();
      Options options = traced(sink);
      options.tracing.live_delivery_as_child = as_child;
      Store store = Store::open(dir / "store", options);
      std::atomic<int> delivered{0};
      Query filter;
      filter.types = {"Shipped"};
      Subscription sub = store.subscribe(filter, SubscriptionStart::beginning(), [&](const RecordedEvent&) { ++delivered; });
      {
        const tracing::ContextScope scope(parent_context());
        store.append(event("Shipped", "order-9"));
      }
      for (int i = 0; i < 500 && delivered.load() == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
      REQUIRE(delivered.load() == 1);
      sub.cancel();
      const auto append = sink->wait_named("append", 1).at(0);
      const auto deliveries = sink->named("deliver");
      REQUIRE(deliveries.size() == 1);
      const SpanData& d = deliveries[0];
      CHECK(d.kind == tracing::SpanKind::consumer);
      CHECK(text_of(d, "lighthouse.event.type") == "Shipped");
      if (as_child) {
        CHECK(d.parent_span_id == append.context.span_id);
        CHECK(d.context.trace_id == append.context.trace_id);
        CHECK(d.links.empty());
      } else {
        CHECK_FALSE(d.parent_span_id.valid());
        CHECK(d.context.trace_id != append.context.trace_id);
        REQUIRE(d.links.size() == 1);
        CHECK(d.links[0].context.span_id == append.context.span_id);
        CHECK(d.links[0].context.trace_id == append.context.trace_id);
      }
      CHECK(sink->named("query").empty());  // the subscription's own reads record no span
    }
  }
}

TEST_CASE("the exclusive tasks: verify, backup, export, import and truncate record a span each", "[tracing]") {
  TempDir dir;
  auto sink = std::make_shared<RecordingSink>();
  Store store = Store::open(dir / "store", traced(sink));
  std::vector<EventId> ids;
  for (int i = 0; i < 10; ++i) ids.push_back(store.append(event("T")).events[0].id);
  CHECK(store.verify().ok());
  store.repair();
  store.backup(dir / "backup");
  export_archive(store, dir / "archive");
  store.truncate_before(ids[5], dir / "archive");
  Store other = Store::open(dir / "other", traced(sink));
  import_archive(dir / "archive", other);
  CHECK(int_of(sink->named("verify").at(0), "lighthouse.events") == 10);
  CHECK(int_of(sink->named("repair").at(0), "lighthouse.events") == 10);
  CHECK(sink->named("repair").at(0).status == tracing::StatusCode::ok);
  CHECK(int_of(sink->named("backup").at(0), "lighthouse.events") == 10);
  CHECK(int_of(sink->named("export").at(0), "lighthouse.events") == 10);
  CHECK(int_of(sink->named("truncate").at(0), "lighthouse.events") == 5);
  CHECK(int_of(sink->named("import").at(0), "lighthouse.events") == 10);
  // A failed task's span carries its error.
  CHECK(error_code_of([&] { export_archive(store, dir / "store" / "data.mdb"); }) != ErrorCode::internal);
  const auto exports = sink->named("export");
  REQUIRE(exports.size() == 2);
  CHECK(exports[1].status == tracing::StatusCode::error);
}

TEST_CASE("no sink: no span and no trace context; ratio 0 records nothing but still propagates a caller's trace",
          "[tracing]") {
  TempDir dir;
  Store plain = Store::open(dir / "plain", quiet_options());
  {
    const tracing::ContextScope scope(parent_context());
    const auto id = plain.append(event("T")).events[0].id;
    CHECK_FALSE(plain.get(id).trace_context);
  }
  auto sink = std::make_shared<RecordingSink>();
  Options o = traced(sink);
  o.tracing.sampler = {tracing::SamplerKind::trace_id_ratio, 0.0};
  Store store = Store::open(dir / "ratio0", o);
  const auto root = store.append(event("T")).events[0].id;
  CHECK_FALSE(store.get(root).trace_context);  // nobody will see this trace
  EventId inside;
  {
    const tracing::ContextScope scope(parent_context());
    inside = store.append(event("T")).events[0].id;
  }
  const auto carried = store.get(inside).trace_context;
  REQUIRE(carried);
  const auto context = SpanContext::of(*carried);
  CHECK(context->trace_id == parent_context().trace_id);
  CHECK_FALSE(context->sampled());
  CHECK(sink->spans().empty());
  Options bad = quiet_options();
  bad.tracing.sampler.ratio = 1.5;
  CHECK(error_code_of([&] { Store::open(dir / "bad", bad); }) == ErrorCode::invalid_argument);
  bad = quiet_options();
  bad.tracing.child_within_seconds = -1;
  CHECK(error_code_of([&] { Store::open(dir / "bad", bad); }) == ErrorCode::invalid_argument);
  bad = quiet_options();
  bad.tracing.sampler.kind = static_cast<tracing::SamplerKind>(9);
  std::string message;
  try {
    Store::open(dir / "bad", bad);
  } catch (const Error& e) {
    message = e.what();
  }
  CHECK(message.find("tracing.sampler.kind") != std::string::npos);
  CHECK_FALSE(std::filesystem::exists(dir / "bad"));  // nothing written
}

TEST_CASE("a span's attributes and link are held inline: describing and ending one allocates only its data",
          "[tracing]") {
  // A sink that keeps nothing: what the span itself allocates is counted.
  struct Discard : tracing::SpanSink {
    std::size_t attributes = 0, links = 0;
    void on_end(SpanData span) noexcept override {
      attributes = span.attributes.size();
      links = span.links.size();
    }
  };
  auto sink = std::make_shared<Discard>();
  tracing::TracingOptions t;
  t.sink = sink;
  const SpanContext commit = parent_context();
  std::size_t allocations = 0;
  {
    AllocationMeter meter;
    tracing::Span span = tracing::Span::deferred(t, "append", tracing::SpanKind::producer);
    // The store's append span: its attributes, a short string value each
    // (held in the string itself), and the link to its commit.
    span.set("db.system", std::string("lighthouse"));
    span.set("db.operation.name", std::string("append"));
    span.set("lighthouse.batch.events", std::int64_t{1});
    span.set("lighthouse.queue_time_ns", std::int64_t{1200});
    span.set("lighthouse.aggregate", std::string("order-1"));
    span.set("lighthouse.first_sequence", std::int64_t{7});
    span.set("lighthouse.events", std::int64_t{1});
    span.set("lighthouse.replayed", false);
    span.set("lighthouse.actual_version", std::int64_t{3});
    span.set("error.type", std::string("conflict"));
    span.add_link(commit);
    span.end();
    allocations = meter.allocations();
  }
  CHECK(sink->attributes == 10);
  CHECK(sink->links == 1);
  CHECK(allocations == 1);  // the span's data; a vector each for attributes and links would be two more
}

TEST_CASE("end_described: a deferred span's data is made in the sink's argument, with no allocation; a span "
          "described before gets set() semantics",
          "[tracing]") {
  struct Keep : tracing::SpanSink {
    std::vector<SpanData> spans;
    void on_end(SpanData span) noexcept override { spans.push_back(std::move(span)); }
  };
  auto sink = std::make_shared<Keep>();
  sink->spans.reserve(4);  // the sink's own room, before the meter
  tracing::TracingOptions t;
  t.sink = sink;
  const SpanContext commit = parent_context();
  std::size_t allocations = 0;
  {
    tracing::Span span = tracing::Span::deferred(t, "append", tracing::SpanKind::producer);
    AllocationMeter meter;
    span.end_described(0, [&](SpanData& d) {
      d.attributes.emplace_back("db.system", std::string("lighthouse"));
      d.attributes.emplace_back("lighthouse.events", std::int64_t{1});
      d.links.emplace_back(tracing::SpanLink{commit, {}});
    });
    allocations = meter.allocations();
    CHECK_FALSE(span.recording());
    span.end();  // ended once: nothing more reaches the sink
  }
  CHECK(allocations == 0);
  REQUIRE(sink->spans.size() == 1);
  const SpanData& a = sink->spans[0];
  CHECK(a.name == "append");
  CHECK(a.kind == tracing::SpanKind::producer);
  CHECK(a.end_ns >= a.start_ns);
  REQUIRE(a.attributes.size() == 2);
  CHECK(a.attributes[0].key == "db.system");
  CHECK(int_of(a, "lighthouse.events") == 1);
  REQUIRE(a.links.size() == 1);
  CHECK(a.links[0].context.span_id == commit.span_id);
  {
    tracing::Span span = tracing::Span::deferred(t, "append", tracing::SpanKind::producer);
    span.set("lighthouse.events", std::int64_t{5});
    span.set_error("early", "refused before the committer");
    span.end_described(0, [&](SpanData& d) {
      d.attributes.emplace_back("lighthouse.events", std::int64_t{7});  // replaces the earlier value
      d.attributes.emplace_back("lighthouse.replayed", true);
      d.links.emplace_back(tracing::SpanLink{commit, {}});
    });
  }
  REQUIRE(sink->spans.size() == 2);
  const SpanData& b = sink->spans[1];
  CHECK(b.attributes.size() == 3);  // lighthouse.events once, error.type, lighthouse.replayed
  CHECK(int_of(b, "lighthouse.events") == 7);
  CHECK(text_of(b, "error.type") == "early");
  CHECK(b.status == tracing::StatusCode::error);
  CHECK(b.links.size() == 1);
}

TEST_CASE("end_append: a deferred span goes to on_end_append as it is; a span described before ends through "
          "on_end with the append's attributes set over its own",
          "[tracing]") {
  struct Keep : tracing::SpanSink {
    std::vector<SpanData> spans;
    std::vector<tracing::AppendSpan> appends;
    void on_end(SpanData span) noexcept override { spans.push_back(std::move(span)); }
    void on_end_append(tracing::AppendSpan span) noexcept override { appends.push_back(std::move(span)); }
  };
  auto sink = std::make_shared<Keep>();
  tracing::TracingOptions t;
  t.sink = sink;
  const SpanContext commit = parent_context();
  const auto append = [&] {
    tracing::AppendSpan a;
    a.operation = "append";
    a.events = 7;
    a.aggregate = "order-1";
    a.commit_trace_id = commit.trace_id;
    a.commit_span_id = commit.span_id;
    a.commit_flags = 1;
    return a;
  };
  {
    tracing::Span span = tracing::Span::deferred(t, "append", tracing::SpanKind::producer);
    const SpanContext own = span.context();
    span.end_append(0, append());
    CHECK_FALSE(span.recording());
    span.end();  // ended once: nothing more reaches the sink
    REQUIRE(sink->appends.size() == 1);
    CHECK(sink->spans.empty());
    const tracing::AppendSpan& a = sink->appends[0];
    CHECK(a.trace_id == own.trace_id);
    CHECK(a.span_id == own.span_id);
    CHECK(a.flags == 1);
    CHECK(a.name == "append");
    CHECK(a.kind == tracing::SpanKind::producer);
    CHECK(a.end_ns >= a.start_ns);
    CHECK(a.aggregate == "order-1");
  }
  {
    tracing::Span span = tracing::Span::deferred(t, "append", tracing::SpanKind::producer);
    span.set("lighthouse.events", std::int64_t{5});
    span.set("lighthouse.custom", true);
    span.end_append(0, append());
    CHECK_FALSE(span.recording());
  }
  CHECK(sink->appends.size() == 1);
  REQUIRE(sink->spans.size() == 1);
  const SpanData& b = sink->spans[0];
  CHECK(int_of(b, "lighthouse.events") == 7);  // the append's value over the earlier one
  CHECK(b.attribute("lighthouse.custom") != nullptr);
  CHECK(text_of(b, "lighthouse.aggregate") == "order-1");
  CHECK(text_of(b, "db.system") == "lighthouse");
  std::size_t events_keys = 0;
  for (const auto& attr : b.attributes) events_keys += attr.key == "lighthouse.events";
  CHECK(events_keys == 1);
  REQUIRE(b.links.size() == 1);
  CHECK(b.links[0].context.span_id == commit.span_id);
}

TEST_CASE("every append's span has reached the sink when close() returns", "[tracing]") {
  TempDir dir;
  auto sink = std::make_shared<RecordingSink>();
  Store store = Store::open(dir / "store", traced(sink));
  std::vector<std::future<AppendResult>> futures;
  for (int i = 0; i < 2000; ++i) futures.push_back(store.append_async(event("Many")));
  store.close();  // while appends are queued: they commit first
  CHECK(sink->named("append").size() == 2000);
  for (auto& f : futures) CHECK(f.get().events.size() == 1);
}

TEST_CASE("a span with more attributes than its inline room keeps them all, in order", "[tracing]") {
  auto sink = std::make_shared<RecordingSink>();
  tracing::TracingOptions t;
  t.sink = sink;
  static const char* const keys[] = {"k00", "k01", "k02", "k03", "k04", "k05", "k06", "k07", "k08", "k09",
                                     "k10", "k11", "k12", "k13", "k14", "k15", "k16", "k17", "k18", "k19"};
  static_assert(std::size(keys) > tracing::kInlineAttributes);
  {
    tracing::Span span(t, "many", tracing::SpanKind::internal);
    for (std::size_t i = 0; i < std::size(keys); ++i) span.set(keys[i], static_cast<std::int64_t>(i));
    span.set("k03", std::string("replaced, not added"));
    for (int i = 0; i < 3; ++i) span.add_link(parent_context());
  }
  const auto spans = sink->named("many");
  REQUIRE(spans.size() == 1);
  const SpanData& s = spans[0];
  REQUIRE(s.attributes.size() == std::size(keys));
  for (std::size_t i = 0; i < std::size(keys); ++i) {
    CHECK(s.attributes[i].key == keys[i]);
    if (i != 3) CHECK(std::get<std::int64_t>(s.attributes[i].value) == static_cast<std::int64_t>(i));
  }
  CHECK(text_of(s, "k03") == "replaced, not added");
  CHECK(s.links.size() == 3);
}

TEST_CASE("InlineVector: copies and moves, within its inline room and beyond it", "[tracing]") {
  using Strings = tracing::InlineVector<std::string, 2>;
  const std::string long_text(100, 'x');  // on the heap: a copy must not share it
  for (std::size_t n : {0u, 1u, 2u, 3u, 9u}) {
    INFO(n);
    Strings a;
    for (std::size_t i = 0; i < n; ++i) a.push_back(long_text + std::to_string(i));
    CHECK(a.size() == n);
    CHECK(a.capacity() >= n);
    Strings copy = a;
    CHECK(copy == a);
    Strings moved = std::move(a);
    CHECK(moved == copy);
    CHECK(a.empty());  // NOLINT(bugprone-use-after-move): moved-from is empty, and usable
    a.emplace_back("again");
    CHECK(a.size() == 1);
    CHECK(a.front() == "again");
    Strings assigned;
    assigned.push_back("old");
    assigned = copy;
    CHECK(assigned == copy);
    assigned = std::move(moved);
    CHECK(assigned == copy);
    // An element of its own, pushed when the room is full, is copied first.
    if (n > 0) {
      Strings self = copy;
      while (self.size() < self.capacity()) self.push_back("fill");
      self.push_back(self.front());
      CHECK(self.back() == copy.front());
    }
    copy.clear();
    CHECK(copy.empty());
    if (n > 0) CHECK_FALSE(copy == assigned);
  }
}
