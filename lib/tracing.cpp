#include "lighthouse/tracing.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <thread>
#include <type_traits>
#include <utility>

#include "lighthouse/error.h"
#include "text.h"

namespace lighthouse::tracing {
namespace {

template <std::size_t N>
std::string hex_of(const std::array<std::uint8_t, N>& bytes) {
  return text::lower_hex({reinterpret_cast<const char*>(bytes.data()), N});
}

int hex_digit(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;  // upper case is not allowed by W3C Trace Context
}

template <std::size_t N>
bool parse_hex(std::string_view text, std::array<std::uint8_t, N>& out) noexcept {
  if (text.size() != 2 * N) return false;
  for (std::size_t i = 0; i < N; ++i) {
    const int hi = hex_digit(text[2 * i]), lo = hex_digit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return false;
    out[i] = static_cast<std::uint8_t>(hi << 4 | lo);
  }
  return true;
}

template <std::size_t N>
bool any_set(const std::array<std::uint8_t, N>& bytes) noexcept {
  for (auto b : bytes) {
    if (b != 0) return true;
  }
  return false;
}

// xoshiro256** (Blackman and Vigna), one per thread, seeded from
// std::random_device on its first use: IDs are made per append, and a
// Mersenne Twister's 2.5 KB of state and its refills cost more than the rest
// of the ID. W3C Trace Context asks for random IDs, and the ratio sampler
// for uniform low bytes; not for a cryptographic generator. The state is
// trivially constructible (zero until seeded), so that a thread's access to
// it is a plain thread-local access, with no guard of a dynamic initializer.
struct IdGenerator {
  std::uint64_t state[4];
  bool seeded;

  void seed() noexcept {
    std::uint64_t seed = 0;
    try {
      std::random_device device;
      seed = static_cast<std::uint64_t>(device()) << 32 ^ device();
    } catch (...) {
      // No random device: the clock and the thread (IDs stay distinct per thread).
    }
    seed ^= static_cast<std::uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    seed ^= static_cast<std::uint64_t>(std::hash<std::thread::id>{}(std::this_thread::get_id())) << 1;
    for (auto& word : state) word = split_mix(seed);
    seeded = true;
  }
  std::uint64_t next() noexcept {
    const std::uint64_t result = rotl(state[1] * 5, 7) * 9;
    const std::uint64_t t = state[1] << 17;
    state[2] ^= state[0];
    state[3] ^= state[1];
    state[1] ^= state[2];
    state[0] ^= state[3];
    state[2] ^= t;
    state[3] = rotl(state[3], 45);
    return result;
  }
  template <std::size_t N>
  void fill(std::array<std::uint8_t, N>& bytes) noexcept {
    do {
      for (std::size_t i = 0; i < N; i += 8) {
        std::uint64_t v = next();
        for (std::size_t k = 0; k < 8 && i + k < N; ++k, v >>= 8) bytes[i + k] = static_cast<std::uint8_t>(v);
      }
    } while (!any_set(bytes));
  }

  static std::uint64_t rotl(std::uint64_t x, int k) noexcept { return x << k | x >> (64 - k); }
  static std::uint64_t split_mix(std::uint64_t& x) noexcept {
    std::uint64_t z = (x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
  }
};
static_assert(std::is_trivially_default_constructible_v<IdGenerator>);

thread_local IdGenerator generator_{};  // constant-initialized: zero, not seeded

IdGenerator& generator() noexcept {
  IdGenerator& g = generator_;
  if (!g.seeded) [[unlikely]] g.seed();
  return g;
}

thread_local const SpanContext* current_ = nullptr;
const SpanContext kRoot{};


}  // namespace

bool TraceId::valid() const noexcept { return any_set(bytes); }
std::string TraceId::hex() const { return hex_of(bytes); }
bool SpanId::valid() const noexcept { return any_set(bytes); }
std::string SpanId::hex() const { return hex_of(bytes); }

std::string SpanContext::traceparent() const {
  // Written in place, one allocation: it is made for every traced append.
  std::string out = "00-";
  out.resize(55, '-');
  char* p = text::write_lower_hex(out.data() + 3, {reinterpret_cast<const char*>(trace_id.bytes.data()), 16});
  p = text::write_lower_hex(p + 1, {reinterpret_cast<const char*>(span_id.bytes.data()), 8});
  text::write_lower_hex(p + 1, {reinterpret_cast<const char*>(&flags), 1});
  return out;
}

std::optional<SpanContext> SpanContext::parse(std::string_view p, std::string_view tracestate) {
  // version-trace-parent-flags; a version other than 00 may carry more
  // fields after a '-', which a reader of version 00 ignores.
  if (p.size() < 55 || p[2] != '-' || p[35] != '-' || p[52] != '-') return std::nullopt;
  std::array<std::uint8_t, 1> version{}, flags{};
  SpanContext c;
  if (!parse_hex(p.substr(0, 2), version) || version[0] == 0xff) return std::nullopt;
  if (version[0] == 0 ? p.size() != 55 : (p.size() > 55 && p[55] != '-')) return std::nullopt;
  if (!parse_hex(p.substr(3, 32), c.trace_id.bytes) || !parse_hex(p.substr(36, 16), c.span_id.bytes) ||
      !parse_hex(p.substr(53, 2), flags)) {
    return std::nullopt;
  }
  if (!c.valid()) return std::nullopt;
  c.flags = version[0] == 0 ? flags[0] : static_cast<std::uint8_t>(flags[0] & 1);
  if (tracestate.size() <= 512 && text::printable_ascii(tracestate)) c.tracestate.assign(tracestate);
  c.remote = true;
  return c;
}

const AttributeValue* SpanData::attribute(std::string_view key) const noexcept {
  for (const auto& a : attributes) {
    if (a.key == key) return &a.value;
  }
  return nullptr;
}

SpanSink::~SpanSink() = default;

void SpanSink::on_end_append(AppendSpan span) noexcept {
  try {
    on_end(std::move(span).to_span_data());  // made in on_end's argument
  } catch (...) {
    // Out of memory while making it (on_end itself does not throw): the
    // span is dropped, as a full queue drops one.
  }
}

SpanData AppendSpan::to_span_data() const& {
  AppendSpan copy = *this;
  return std::move(copy).to_span_data();
}

SpanData AppendSpan::to_span_data() && {
  // The attributes in the order the store wrote them before AppendSpan
  // (docs/tracing.md): a sink sees the same span either way.
  SpanData d;
  d.context.trace_id = trace_id;
  d.context.span_id = span_id;
  d.context.flags = flags;
  d.context.tracestate = std::move(tracestate);
  d.parent_span_id = parent_span_id;
  d.name.assign(name);
  d.kind = kind;
  d.start_ns = start_ns;
  d.end_ns = end_ns;
  auto& a = d.attributes;
  a.emplace_back("db.system", std::string("lighthouse"));
  a.emplace_back("db.operation.name", std::string(operation));
  a.emplace_back("lighthouse.batch.events", batch_events);
  a.emplace_back("lighthouse.queue_time_ns", queue_ns);
  if (!aggregate.empty()) a.emplace_back("lighthouse.aggregate", std::move(aggregate));
  if (commit_trace_id.valid() && commit_span_id.valid()) {
    SpanContext commit;
    commit.trace_id = commit_trace_id;
    commit.span_id = commit_span_id;
    commit.flags = commit_flags;
    d.links.emplace_back(SpanLink{commit, {}});
  }
  if (has_first_sequence) a.emplace_back("lighthouse.first_sequence", static_cast<std::int64_t>(first_sequence));
  a.emplace_back("lighthouse.events", events);
  a.emplace_back("lighthouse.replayed", replayed);
  return d;
}

SamplerKind parse_sampler(std::string_view name) {
  if (name == "always_on") return SamplerKind::always_on;
  if (name == "always_off") return SamplerKind::always_off;
  if (name == "traceidratio") return SamplerKind::trace_id_ratio;
  if (name == "parentbased_always_on") return SamplerKind::parent_based_always_on;
  if (name == "parentbased_always_off") return SamplerKind::parent_based_always_off;
  if (name == "parentbased_traceidratio") return SamplerKind::parent_based_trace_id_ratio;
  throw Error(ErrorCode::invalid_argument,
              "unknown sampler " + text::quoted(name) +
                  " (always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off, "
                  "parentbased_traceidratio)");
}

std::string_view to_string(SamplerKind kind) noexcept {
  switch (kind) {
    case SamplerKind::always_on: return "always_on";
    case SamplerKind::always_off: return "always_off";
    case SamplerKind::trace_id_ratio: return "traceidratio";
    case SamplerKind::parent_based_always_on: return "parentbased_always_on";
    case SamplerKind::parent_based_always_off: return "parentbased_always_off";
    case SamplerKind::parent_based_trace_id_ratio: return "parentbased_traceidratio";
  }
  return "unknown";
}

bool Sampler::sampled(const SpanContext* parent, const TraceId& trace) const noexcept {
  const auto by_ratio = [&] {
    if (ratio >= 1.0) return true;
    if (!(ratio > 0.0)) return false;
    std::uint64_t low = 0;
    for (std::size_t i = 8; i < 16; ++i) low = low << 8 | trace.bytes[i];
    // The last 8 bytes as a number below 2^63, against ratio × 2^63.
    return static_cast<double>(low >> 1) < std::ldexp(ratio, 63);
  };
  const bool child = parent != nullptr && parent->valid();
  switch (kind) {
    case SamplerKind::always_on: return true;
    case SamplerKind::always_off: return false;
    case SamplerKind::trace_id_ratio: return by_ratio();
    case SamplerKind::parent_based_always_on: return child ? parent->sampled() : true;
    case SamplerKind::parent_based_always_off: return child ? parent->sampled() : false;
    case SamplerKind::parent_based_trace_id_ratio: return child ? parent->sampled() : by_ratio();
  }
  return false;
}

const SpanContext* current_context() noexcept { return current_; }

namespace {
thread_local bool untraced_ = false;
}  // namespace

UntracedScope::UntracedScope() noexcept : previous_(untraced_) { untraced_ = true; }
UntracedScope::~UntracedScope() { untraced_ = previous_; }
bool UntracedScope::active() noexcept { return untraced_; }

ContextScope::ContextScope(const SpanContext& context) noexcept : previous_(current_), context_(context) {
  current_ = context_.valid() ? &context_ : nullptr;
}

ContextScope::~ContextScope() { current_ = previous_; }

TraceId new_trace_id() noexcept {
  TraceId id;
  generator().fill(id.bytes);
  return id;
}

SpanId new_span_id() noexcept {
  SpanId id;
  generator().fill(id.bytes);
  return id;
}

std::uint64_t now_ns() noexcept {
  return static_cast<std::uint64_t>(
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::system_clock::now().time_since_epoch()).count());
}

const SpanContext* const Span::root = &kRoot;

Span::Span(const TracingOptions& tracing, std::string_view name, SpanKind kind, const SpanContext* parent)
    : Span(tracing, name, kind, parent, false, false) {}

Span Span::recorded(const TracingOptions& tracing, std::string_view name, SpanKind kind, const SpanContext* parent) {
  return Span(tracing, name, kind, parent, true, false);
}

Span Span::deferred(const TracingOptions& tracing, std::string_view name, SpanKind kind, const SpanContext* parent) {
  return Span(tracing, name, kind, parent, false, true);
}

Span::Span(const TracingOptions& tracing, std::string_view name, SpanKind kind, const SpanContext* parent, bool force,
           bool defer) {
  if (!tracing.sink) return;
  if (parent == nullptr) parent = current_;
  if (parent != nullptr && !parent->valid()) parent = nullptr;  // Span::root
  IdGenerator& ids = generator();  // one thread-local access for both IDs
  if (parent) {
    context_.trace_id = parent->trace_id;
  } else {
    ids.fill(context_.trace_id.bytes);
  }
  ids.fill(context_.span_id.bytes);
  if (parent) context_.tracestate = parent->tracestate;
  if (!force && !tracing.sampler.sampled(parent, context_.trace_id)) return;
  context_.flags = 1;
  sink_ = tracing.sink.get();
  if (defer) {
    deferred_ = true;
    deferred_kind_ = kind;
    deferred_name_ = name;
    if (parent) deferred_parent_ = parent->span_id;
    deferred_start_ = now_ns();
    return;
  }
  data_.reset(new SpanData);  // default-initialized: its inline room is not zeroed first
  data_->context = context_;
  if (parent) data_->parent_span_id = parent->span_id;
  data_->name.assign(name);
  data_->kind = kind;
  data_->start_ns = now_ns();
}

SpanData* Span::data() {
  if (deferred_) {
    deferred_ = false;
    data_.reset(new SpanData);  // default-initialized: its inline room is not zeroed first
    data_->context = context_;
    data_->parent_span_id = deferred_parent_;
    data_->name.assign(deferred_name_);
    data_->kind = deferred_kind_;
      data_->start_ns = deferred_start_;
  }
  return data_.get();
}

Span::Span(Span&& other) noexcept
    : sink_(std::exchange(other.sink_, nullptr)),
      deferred_(std::exchange(other.deferred_, false)),
      deferred_kind_(other.deferred_kind_),
      deferred_name_(other.deferred_name_),
      deferred_parent_(other.deferred_parent_),
      deferred_start_(other.deferred_start_),
      data_(std::move(other.data_)),
      context_(std::move(other.context_)) {}

Span& Span::operator=(Span&& other) noexcept {
  if (this != &other) {
    end();
    sink_ = std::exchange(other.sink_, nullptr);
    deferred_ = std::exchange(other.deferred_, false);
    deferred_kind_ = other.deferred_kind_;
    deferred_name_ = other.deferred_name_;
    deferred_parent_ = other.deferred_parent_;
    deferred_start_ = other.deferred_start_;
    data_ = std::move(other.data_);
    context_ = std::move(other.context_);
  }
  return *this;
}

void Span::start_deferred(SpanData& data, std::uint64_t end_ns) const {
  data.context = context_;
  data.parent_span_id = deferred_parent_;
  data.name.assign(deferred_name_);
  data.kind = deferred_kind_;
  data.start_ns = deferred_start_;
  data.end_ns = std::max(end_ns ? end_ns : now_ns(), deferred_start_);
}

void Span::end_append(std::uint64_t end_ns, AppendSpan&& append) {
  if (!recording()) return;
  if (!deferred_) {
    merge(std::move(append).to_span_data());  // only its attributes and link are taken
    end(end_ns);
    return;
  }
  append.trace_id = context_.trace_id;
  append.span_id = context_.span_id;
  append.flags = context_.flags;
  append.tracestate = context_.tracestate;
  append.parent_span_id = deferred_parent_;
  append.name = deferred_name_;
  append.kind = deferred_kind_;
  append.start_ns = deferred_start_;
  append.end_ns = std::max(end_ns ? end_ns : now_ns(), deferred_start_);
  SpanSink* sink = std::exchange(sink_, nullptr);
  deferred_ = false;
  sink->on_end_append(std::move(append));  // noexcept
}

void Span::merge(SpanData&& more) {
  for (Attribute& a : more.attributes) set(a.key, std::move(a.value));
  for (SpanEvent& e : more.events) data_->events.push_back(std::move(e));
  for (SpanLink& l : more.links) data_->links.push_back(std::move(l));
  if (more.status != StatusCode::unset) {
    data_->status = more.status;
    data_->status_message = std::move(more.status_message);
  }
}

void Span::set_name(std::string_view name) {
  if (auto* d = data()) d->name.assign(name);
}

void Span::set(std::string_view key, AttributeValue value) {
  if (!recording()) return;
  for (auto& a : data()->attributes) {
    // Keys are literals: the same literal is mostly the same pointer.
    if ((a.key.data() == key.data() && a.key.size() == key.size()) || a.key == key) {
      a.value = std::move(value);
      return;
    }
  }
  data_->attributes.push_back({key, std::move(value)});
}

void Span::add_event(std::string name, std::uint64_t time_ns, std::vector<Attribute> attributes) {
  if (auto* d = data()) d->events.push_back({std::move(name), time_ns ? time_ns : now_ns(), std::move(attributes)});
}

void Span::add_link(const SpanContext& context, std::vector<Attribute> attributes) {
  if (!context.valid()) return;
  if (auto* d = data()) d->links.push_back({context, std::move(attributes)});
}

void Span::set_start(std::uint64_t start_ns) {
  if (deferred_) deferred_start_ = start_ns;
  else if (data_) data_->start_ns = start_ns;
}

void Span::set_error(std::string_view error_type, std::string message) {
  auto* d = data();
  if (!d) return;
  d->status = StatusCode::error;
  d->status_message = std::move(message);
  set("error.type", std::string(error_type));
}

void Span::set_ok() {
  if (auto* d = data(); d && d->status == StatusCode::unset) d->status = StatusCode::ok;
}

void Span::end(std::uint64_t end_ns) {
  if (!recording()) return;
  data();
  data_->end_ns = end_ns ? end_ns : now_ns();
  if (data_->end_ns < data_->start_ns) data_->end_ns = data_->start_ns;
  SpanSink* sink = std::exchange(sink_, nullptr);
  // The sink's argument is moved from the span's data, which this thread
  // then frees: its attributes and link are inline (InlineVector), so
  // nothing of the span's own is left for the sink's thread to free but its
  // longer strings.
  std::unique_ptr<SpanData> data = std::move(data_);
  sink->on_end(std::move(*data));  // noexcept
}

}  // namespace lighthouse::tracing
