// Tracing: the store's operations as OpenTelemetry spans, handed finished to
// a sink the host program sets (Options::tracing). The library has no
// network code: `lighthouse` and `lighthouse serve` export spans over OTLP
// (docs/tracing.md); a program with its own OpenTelemetry SDK forwards them
// to it from its SpanSink.
//
// With no sink set nothing is recorded, no ID is made, and each traced
// operation costs one branch. With a sink, the sampler decides per root
// span; a span whose parent is known follows the parent's decision under
// the parent-based samplers (the default).
//
// The parent of the store's spans is the calling thread's current context
// (ContextScope), so a request handler that has its own span makes the
// store's spans its children. An append whose span is sampled, or that is
// made inside a trace (a current context, sampled or not), stores its
// append span's context in each event's trace_context — unless the event
// carries one — and a subscription's delivery span for that event links to
// it: a trace viewer goes from the producer's trace to each consumer's,
// across processes.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <new>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "lighthouse/event.h"
#include "lighthouse/export.h"

namespace lighthouse::tracing {

struct LIGHTHOUSE_API TraceId {
  std::array<std::uint8_t, 16> bytes{};
  bool valid() const noexcept;  // not all zeros
  std::string hex() const;      // 32 lower-case hex digits
  friend bool operator==(const TraceId&, const TraceId&) = default;
};

struct LIGHTHOUSE_API SpanId {
  std::array<std::uint8_t, 8> bytes{};
  bool valid() const noexcept;
  std::string hex() const;  // 16 lower-case hex digits
  friend bool operator==(const SpanId&, const SpanId&) = default;
};

// A W3C Trace Context (https://www.w3.org/TR/trace-context/).
struct LIGHTHOUSE_API SpanContext {
  TraceId trace_id;
  SpanId span_id;
  std::uint8_t flags = 0;  // bit 0: sampled
  std::string tracestate;
  bool remote = false;  // parsed from another process

  bool valid() const noexcept { return trace_id.valid() && span_id.valid(); }
  bool sampled() const noexcept { return (flags & 1) != 0; }
  std::string traceparent() const;  // "00-<trace>-<span>-<flags>"
  TraceContext to_trace_context() const { return {traceparent(), tracestate}; }

  // A traceparent as W3C Trace Context reads it: version 00 exactly as the
  // event's trace_context must be (lighthouse/event.h), and — as the
  // specification asks of a reader — a later version by its first four
  // fields. Anything else, and an all-zero ID, is no context (nullopt):
  // a receiver then starts a new trace. A tracestate over 512 bytes or with
  // characters outside printable ASCII is dropped, not the traceparent.
  static std::optional<SpanContext> parse(std::string_view traceparent, std::string_view tracestate = {});
  static std::optional<SpanContext> of(const TraceContext& context) {
    return parse(context.traceparent, context.tracestate);
  }
};

// OTLP's numbering.
enum class SpanKind : std::uint8_t { internal = 1, server = 2, client = 3, producer = 4, consumer = 5 };
enum class StatusCode : std::uint8_t { unset = 0, ok = 1, error = 2 };

using AttributeValue = std::variant<std::string, bool, std::int64_t, double>;
// `key` is a name with static storage — a string literal, as every
// OpenTelemetry attribute name is: spans keep the view, not a copy (a span
// is made per append, so its attributes allocate only their values).
struct Attribute {
  std::string_view key;
  AttributeValue value;
};

// A vector that holds its first N elements in itself and only the rest on
// the heap: a span's attributes and links, so that the spans made per
// append allocate nothing for them and nothing is freed by another thread
// (a sink's exporter) than the one that made it. Iterators are pointers;
// they are invalidated by any insertion, as a std::vector's may be.
template <class T, std::size_t N>
class InlineVector {
 public:
  using value_type = T;
  using size_type = std::size_t;
  using iterator = T*;
  using const_iterator = const T*;

  InlineVector() noexcept = default;
  InlineVector(std::initializer_list<T> items) {
    reserve(items.size());
    for (const T& item : items) push_back(item);
  }
  InlineVector(const InlineVector& other) {
    reserve(other.size_);
    for (const T& item : other) push_back(item);
  }
  InlineVector(InlineVector&& other) noexcept { take(other); }
  InlineVector& operator=(const InlineVector& other) {
    if (this != &other) {
      clear();
      reserve(other.size_);
      for (const T& item : other) push_back(item);
    }
    return *this;
  }
  InlineVector& operator=(InlineVector&& other) noexcept {
    if (this != &other) {
      clear();
      release();
      take(other);
    }
    return *this;
  }
  ~InlineVector() {
    clear();
    release();
  }

  T* begin() noexcept { return data_; }
  T* end() noexcept { return data_ + size_; }
  const T* begin() const noexcept { return data_; }
  const T* end() const noexcept { return data_ + size_; }
  T* data() noexcept { return data_; }
  const T* data() const noexcept { return data_; }
  std::size_t size() const noexcept { return size_; }
  std::size_t capacity() const noexcept { return capacity_; }
  bool empty() const noexcept { return size_ == 0; }
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  T& front() noexcept { return data_[0]; }
  const T& front() const noexcept { return data_[0]; }
  T& back() noexcept { return data_[size_ - 1]; }
  const T& back() const noexcept { return data_[size_ - 1]; }

  void push_back(const T& item) { emplace_back(item); }
  void push_back(T&& item) { emplace_back(std::move(item)); }
  template <class... Args>
  T& emplace_back(Args&&... args) {
    if (size_ == capacity_) {
      T item(std::forward<Args>(args)...);  // args may refer to an element
      grow(capacity_ * 2);
      return *::new (static_cast<void*>(data_ + size_++)) T(std::move(item));
    }
    return *::new (static_cast<void*>(data_ + size_++)) T(std::forward<Args>(args)...);
  }
  void reserve(std::size_t n) {
    if (n > capacity_) grow(n);
  }
  void clear() noexcept {
    for (std::size_t i = 0; i < size_; ++i) data_[i].~T();
    size_ = 0;
  }

  friend bool operator==(const InlineVector& a, const InlineVector& b) {
    if (a.size_ != b.size_) return false;
    for (std::size_t i = 0; i < a.size_; ++i) {
      if (!(a.data_[i] == b.data_[i])) return false;
    }
    return true;
  }

 private:
  static_assert(N > 0 && std::is_nothrow_move_constructible_v<T>);
  T* inline_data() noexcept { return std::launder(reinterpret_cast<T*>(inline_)); }
  bool on_heap() const noexcept { return capacity_ > N; }
  void grow(std::size_t n) {
    T* bigger = static_cast<T*>(::operator new(n * sizeof(T), std::align_val_t{alignof(T)}));
    for (std::size_t i = 0; i < size_; ++i) {
      ::new (static_cast<void*>(bigger + i)) T(std::move(data_[i]));
      data_[i].~T();
    }
    release();
    data_ = bigger;
    capacity_ = n;
  }
  void release() noexcept {
    if (on_heap()) ::operator delete(data_, std::align_val_t{alignof(T)});
    data_ = inline_data();
    capacity_ = N;
  }
  // REQUIRES: this is empty and holds no heap block.
  void take(InlineVector& other) noexcept {
    if (other.on_heap()) {
      data_ = other.data_;
      capacity_ = other.capacity_;
      size_ = other.size_;
      other.data_ = other.inline_data();
      other.capacity_ = N;
      other.size_ = 0;
      return;
    }
    for (std::size_t i = 0; i < other.size_; ++i) ::new (static_cast<void*>(data_ + i)) T(std::move(other.data_[i]));
    size_ = other.size_;
    other.clear();
  }

  alignas(T) unsigned char inline_[N * sizeof(T)];
  T* data_ = inline_data();
  std::size_t size_ = 0;
  std::size_t capacity_ = N;
};

struct SpanEvent {
  std::string name;
  std::uint64_t time_ns = 0;  // since the Unix epoch
  std::vector<Attribute> attributes;
};

struct SpanLink {
  SpanContext context;
  std::vector<Attribute> attributes;
};

inline constexpr std::size_t kInlineAttributes = 12;

// A finished span, as OTLP carries it. Times are nanoseconds since the
// Unix epoch (the system clock).
struct SpanData {
  SpanContext context;
  SpanId parent_span_id;  // all zeros: a root span
  std::string name;
  SpanKind kind = SpanKind::internal;
  std::uint64_t start_ns = 0;
  std::uint64_t end_ns = 0;
  // Inline room for the store's own spans' attributes and link; more go to
  // the heap.
  InlineVector<Attribute, kInlineAttributes> attributes;
  std::vector<SpanEvent> events;
  InlineVector<SpanLink, 1> links;
  StatusCode status = StatusCode::unset;
  std::string status_message;

  const AttributeValue* attribute(std::string_view key) const noexcept;
};

// A successful append's span in the few words the store keeps of it: what
// SpanSink::on_end_append gets. A sink that queues spans for another thread
// moves these some 230 bytes instead of a SpanData's (several hundred, in
// a block of about 1 KB), and makes the span's attributes — or its encoding
// — on that thread. to_span_data() is the span that on_end would get.
struct LIGHTHOUSE_API AppendSpan {
  // The span's own, set by Span::end_append.
  TraceId trace_id;
  SpanId span_id;
  SpanId parent_span_id;  // all zeros: a root span
  std::uint8_t flags = 0;
  SpanKind kind = SpanKind::producer;
  std::string tracestate;
  std::string_view name;  // a literal
  std::uint64_t start_ns = 0;
  std::uint64_t end_ns = 0;
  // The store's: the attributes of docs/tracing.md's append span.
  std::string_view operation;       // db.operation.name (a literal); db.system is "lighthouse"
  std::int64_t batch_events = 0;    // lighthouse.batch.events
  std::int64_t queue_ns = 0;        // lighthouse.queue_time_ns
  std::string aggregate;            // lighthouse.aggregate; empty: not set
  bool has_first_sequence = false;  // lighthouse.first_sequence
  std::uint64_t first_sequence = 0;
  std::int64_t events = 0;          // lighthouse.events
  bool replayed = false;            // lighthouse.replayed
  // The link to the commit span of its group; invalid IDs: no link.
  TraceId commit_trace_id;
  SpanId commit_span_id;
  std::uint8_t commit_flags = 0;

  SpanData to_span_data() const&;
  SpanData to_span_data() &&;  // moves the strings
};

// Receives every sampled span once it has ended, on the thread that ended
// it: an appending thread (an append span ends on the thread that frees
// its request: the next appending thread or the committer once idle), the
// committer, a reader, a subscription's thread. It must not block or call
// back into the store; queue the span and return (the `lighthouse` tool's
// exporter does: a bounded queue that drops what does not fit). on_end and
// on_end_append are noexcept: they must not throw (an exception leaving
// them ends the program).
class LIGHTHOUSE_API SpanSink {
 public:
  virtual ~SpanSink();
  virtual void on_end(SpanData span) noexcept = 0;
  // A successful append's span (its request freed). By default:
  // on_end(span.to_span_data()), the span dropped if that runs out of
  // memory. A sink that hands spans to another thread may queue the
  // AppendSpan instead and make the SpanData there.
  virtual void on_end_append(AppendSpan span) noexcept;
};

enum class SamplerKind : std::uint8_t {
  always_on,
  always_off,
  trace_id_ratio,               // a root or child span, by its trace ID
  parent_based_always_on,       // a child as its parent; a root: sampled
  parent_based_always_off,      // a child as its parent; a root: not
  parent_based_trace_id_ratio,  // a child as its parent; a root by `ratio`
};

// The names of OTEL_TRACES_SAMPLER: "always_on", "always_off",
// "traceidratio", "parentbased_always_on", "parentbased_always_off",
// "parentbased_traceidratio". Errors: invalid_argument naming the text.
LIGHTHOUSE_API SamplerKind parse_sampler(std::string_view name);
LIGHTHOUSE_API std::string_view to_string(SamplerKind kind) noexcept;

struct LIGHTHOUSE_API Sampler {
  SamplerKind kind = SamplerKind::parent_based_always_on;
  double ratio = 1.0;  // 0..1, for the ratio samplers

  // Whether a new span of trace `trace` with this parent (nullptr: a root)
  // is recorded. The ratio is applied to the trace ID's last 8 bytes, so
  // every process sampling at one ratio keeps or drops a trace whole.
  bool sampled(const SpanContext* parent, const TraceId& trace) const noexcept;
};

struct TracingOptions {
  // Null: no tracing at all.
  std::shared_ptr<SpanSink> sink;
  Sampler sampler;
  // A subscription's delivery span links to the append that stored the event
  // (the consumer's trace is its own). True: a delivery made live — within
  // `child_within_seconds` of the append — is made a child of the append
  // span instead, in the producer's trace.
  bool live_delivery_as_child = false;
  double child_within_seconds = 1.0;
};

// The calling thread's current span context, for the spans the store starts
// on this thread (nullptr: none). A scope must end on the thread that made
// it (do not hold one across a coroutine's suspension).
LIGHTHOUSE_API const SpanContext* current_context() noexcept;

class LIGHTHOUSE_API ContextScope {
 public:
  explicit ContextScope(const SpanContext& context) noexcept;  // an invalid context: no parent
  ~ContextScope();
  ContextScope(const ContextScope&) = delete;
  ContextScope& operator=(const ContextScope&) = delete;

 private:
  const SpanContext* previous_;
  SpanContext context_;
};

// While one lives, the queries and aggregate reads this thread opens record
// no span: reads a program makes for its own plumbing (a server's catch-up
// reads for its subscribers), which the spans of what they serve describe.
class LIGHTHOUSE_API UntracedScope {
 public:
  UntracedScope() noexcept;
  ~UntracedScope();
  UntracedScope(const UntracedScope&) = delete;
  UntracedScope& operator=(const UntracedScope&) = delete;
  static bool active() noexcept;

 private:
  bool previous_;
};

// New random IDs (never all zeros).
LIGHTHOUSE_API TraceId new_trace_id() noexcept;
LIGHTHOUSE_API SpanId new_span_id() noexcept;
LIGHTHOUSE_API std::uint64_t now_ns() noexcept;  // the system clock

// A span being recorded, for a host program's own spans (the server's
// request spans) and the store's: started with a parent (or the current
// context, or none), ended once — by end() or its destructor — into the
// sink if sampled. With a null sink it is empty and every call is a no-op.
// REQUIRES: the sink outlives the span (a store's options hold theirs until
// it closes, after its last span has ended).
class LIGHTHOUSE_API Span {
 public:
  Span() = default;
  // `parent`: nullptr for the thread's current context; pass `root` for a
  // span with no parent whatever the current context.
  static constexpr const SpanContext* current = nullptr;
  static const SpanContext* const root;
  Span(const TracingOptions& tracing, std::string_view name, SpanKind kind, const SpanContext* parent = current);
  // Recorded whatever the sampler says (a sink must be set): a span that
  // sampled spans link to, such as the commit of a group.
  static Span recorded(const TracingOptions& tracing, std::string_view name, SpanKind kind,
                       const SpanContext* parent = current);
  // Sampled and given its IDs and start now, but its data is made on the
  // thread that first describes or ends it (the store's append spans: made
  // by the appending thread, their outcome recorded by the committer, and
  // described and ended — end_described — when their request is freed).
  // `name`: a literal.
  static Span deferred(const TracingOptions& tracing, std::string_view name, SpanKind kind,
                       const SpanContext* parent = current);
  // end(); inline, so that an empty span (no sink) costs its members only.
  ~Span() {
    if (recording()) end();
  }
  Span(Span&&) noexcept;
  Span& operator=(Span&&) noexcept;
  Span(const Span&) = delete;
  Span& operator=(const Span&) = delete;

  // Valid when a sink is set (sampled or not): what propagates.
  const SpanContext& context() const noexcept { return context_; }
  bool recording() const noexcept { return data_ != nullptr || deferred_; }

  void set_name(std::string_view name);
  void set(std::string_view key, AttributeValue value);  // key: a literal (see Attribute)
  void add_event(std::string name, std::uint64_t time_ns = 0, std::vector<Attribute> attributes = {});
  void add_link(const SpanContext& context, std::vector<Attribute> attributes = {});
  void set_start(std::uint64_t start_ns);
  void set_error(std::string_view error_type, std::string message);  // status error, error.type
  void set_ok();
  void end(std::uint64_t end_ns = 0);
  // Ends the span (at end_ns; 0: now) as a successful append's. A deferred
  // span not described before goes to the sink's on_end_append as
  // `append`, whose own fields (IDs, name, kind, times) this sets; a span
  // described before gets append.to_span_data()'s attributes and link as
  // set() and add_link() would, and ends through on_end. The store ends
  // each committed append's span this way.
  void end_append(std::uint64_t end_ns, AppendSpan&& append);
  // Ends the span (at end_ns; 0: now) with `describe(SpanData&)` writing
  // its attributes, links and status straight into the data the sink gets:
  // for a deferred span not described before, that data is made in the
  // sink's argument itself — no heap block, no copy, no search for earlier
  // keys (so describe must not add one key twice: it pushes, as
  // `attributes.emplace_back(key, value)`). A span described before gets
  // what describe writes as set() and add_link() would. The store ends each
  // failed append's span this way.
  template <class Describe>
  void end_described(std::uint64_t end_ns, Describe&& describe) {
    if (!recording()) return;
    if (!deferred_) {
      SpanData more;
      describe(more);
      merge(std::move(more));
      end(end_ns);
      return;
    }
    sink_->on_end(described(end_ns, describe));  // a prvalue: made in the argument
    sink_ = nullptr;
    deferred_ = false;
  }

 private:
  Span(const TracingOptions& tracing, std::string_view name, SpanKind kind, const SpanContext* parent, bool force,
       bool defer);
  SpanData* data();  // null when not recording; made now for a deferred span
  void start_deferred(SpanData& data, std::uint64_t end_ns) const;
  void merge(SpanData&& more);
  template <class Describe>
  SpanData described(std::uint64_t end_ns, Describe& describe) const {
    SpanData data;  // returned in place (the sink's argument)
    start_deferred(data, end_ns);
    describe(data);
    return data;
  }
  SpanSink* sink_ = nullptr;  // not owned: no reference count touched per span
  bool deferred_ = false;
  SpanKind deferred_kind_ = SpanKind::internal;
  std::string_view deferred_name_;
  SpanId deferred_parent_;
  std::uint64_t deferred_start_ = 0;
  std::unique_ptr<SpanData> data_;
  SpanContext context_;
};

}  // namespace lighthouse::tracing
