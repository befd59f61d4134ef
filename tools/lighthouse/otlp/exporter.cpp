#include "otlp/exporter.h"

#include <pthread.h>

#include <cctype>
#include <charconv>
#include <cmath>
#include <random>
#include <stdexcept>

#include "lighthouse/error.h"
#include "lighthouse/version.h"
#include "parse.h"

namespace lighthouse::tool::otlp {
namespace {

[[noreturn]] void bad(const std::string& variable, const std::string& what) {
  throw Error(ErrorCode::invalid_argument, variable + " " + what);
}

std::uint64_t number(const std::string& variable, const std::string& text, std::uint64_t lo, std::uint64_t hi) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < lo || v > hi) {
    bad(variable, "is '" + shown(text) + "': it must be a whole number from " + std::to_string(lo) + " to " +
                      std::to_string(hi));
  }
  return v;
}

std::string percent_decoded(const std::string& s) {
  const auto hex = [](char c) { return std::isxdigit(static_cast<unsigned char>(c)) != 0; };
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) && hex(s[i + 2])) {
      out.push_back(static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::string trimmed(std::string s) {
  const auto b = s.find_first_not_of(" \t");
  const auto e = s.find_last_not_of(" \t");
  return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

// "k1=v1,k2=v2" (OTEL_EXPORTER_OTLP_HEADERS, OTEL_RESOURCE_ATTRIBUTES).
std::vector<std::pair<std::string, std::string>> pairs(const std::string& variable, const std::string& text) {
  std::vector<std::pair<std::string, std::string>> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    const auto comma = text.find(',', at);
    const std::string item = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    at = comma == std::string::npos ? text.size() + 1 : comma + 1;
    if (trimmed(item).empty()) continue;
    const auto eq = item.find('=');
    if (eq == std::string::npos || trimmed(item.substr(0, eq)).empty()) {
      bad(variable, "holds '" + shown(item) + "', not KEY=VALUE");
    }
    out.emplace_back(trimmed(item.substr(0, eq)), percent_decoded(trimmed(item.substr(eq + 1))));
  }
  return out;
}

void check_endpoint(const std::string& where, const std::string& url) {
  if (url.rfind("https://", 0) == 0) {
    bad(where, "is '" + shown(url) + "': https endpoints are not supported; send to a collector over http:// "
                                    "(one on this machine, or an agent beside it)");
  }
  if (url.rfind("http://", 0) != 0 || url.size() == 7) bad(where, "is '" + shown(url) + "': it must be http://HOST[:PORT][/PATH]");
}

}  // namespace

std::optional<ExporterConfig> config_from_environment(const std::string& endpoint_flag, const std::string& protocol_flag,
                                                      const std::function<const char*(const char*)>& getenv) {
  const auto var = [&](const char* name) -> std::optional<std::string> {
    const char* v = getenv(name);
    if (v == nullptr || *v == '\0') return std::nullopt;
    return std::string(v);
  };
  if (auto disabled = var("OTEL_SDK_DISABLED"); disabled && *disabled == "true" && endpoint_flag.empty()) {
    return std::nullopt;
  }
  ExporterConfig c;
  if (!endpoint_flag.empty()) {
    check_endpoint("--otlp-endpoint", endpoint_flag);
    c.endpoint = endpoint_flag;
  } else if (auto traces = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")) {
    check_endpoint("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", *traces);
    c.endpoint = *traces;  // used as given
  } else if (auto base = var("OTEL_EXPORTER_OTLP_ENDPOINT")) {
    check_endpoint("OTEL_EXPORTER_OTLP_ENDPOINT", *base);
    c.endpoint = *base + (base->back() == '/' ? "v1/traces" : "/v1/traces");
  } else {
    return std::nullopt;
  }
  std::string protocol = protocol_flag, protocol_source = "--otlp-protocol";
  if (protocol.empty()) {
    if (auto p = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")) protocol = *p, protocol_source = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL";
    else if (auto q = var("OTEL_EXPORTER_OTLP_PROTOCOL")) protocol = *q, protocol_source = "OTEL_EXPORTER_OTLP_PROTOCOL";
  }
  if (protocol.empty() || protocol == "http/protobuf") c.encoding = Encoding::protobuf;
  else if (protocol == "http/json") c.encoding = Encoding::json;
  else bad(protocol_source, "is '" + shown(protocol) + "': it must be http/protobuf or http/json (gRPC is not supported)");

  for (const char* name : {"OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"}) {
    if (auto h = var(name)) {
      for (auto& [k, v] : pairs(name, *h)) c.headers[k] = v;
    }
  }
  if (auto t = var("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT")) {
    c.request_timeout = std::chrono::milliseconds(number("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", *t, 1, 3'600'000));
  } else if (auto u = var("OTEL_EXPORTER_OTLP_TIMEOUT")) {
    c.request_timeout = std::chrono::milliseconds(number("OTEL_EXPORTER_OTLP_TIMEOUT", *u, 1, 3'600'000));
  }
  if (auto r = var("OTEL_RESOURCE_ATTRIBUTES")) {
    for (auto& [k, v] : pairs("OTEL_RESOURCE_ATTRIBUTES", *r)) {
      if (k == "service.name") c.service_name = v;
      else c.resource.emplace_back(k, v);
    }
  }
  if (auto s = var("OTEL_SERVICE_NAME")) c.service_name = *s;
  if (auto s = var("OTEL_TRACES_SAMPLER")) {
    try {
      c.sampler.kind = tracing::parse_sampler(*s);
    } catch (const Error& e) {
      bad("OTEL_TRACES_SAMPLER", std::string("names an ") + e.what());
    }
  }
  if (auto a = var("OTEL_TRACES_SAMPLER_ARG")) {
    const bool ratio = c.sampler.kind == tracing::SamplerKind::trace_id_ratio ||
                       c.sampler.kind == tracing::SamplerKind::parent_based_trace_id_ratio;
    if (ratio) {
      char* end = nullptr;
      const double v = std::strtod(a->c_str(), &end);
      if (end != a->c_str() + a->size() || !(v >= 0 && v <= 1)) {
        bad("OTEL_TRACES_SAMPLER_ARG", "is '" + shown(*a) + "': the sampling ratio must be a number from 0 to 1");
      }
      c.sampler.ratio = v;
    }
  }
  if (auto d = var("OTEL_BSP_SCHEDULE_DELAY")) c.schedule_delay = std::chrono::milliseconds(number("OTEL_BSP_SCHEDULE_DELAY", *d, 0, 3'600'000));
  if (auto d = var("OTEL_BSP_EXPORT_TIMEOUT")) c.export_timeout = std::chrono::milliseconds(number("OTEL_BSP_EXPORT_TIMEOUT", *d, 1, 3'600'000));
  if (auto q = var("OTEL_BSP_MAX_QUEUE_SIZE")) c.max_queue = number("OTEL_BSP_MAX_QUEUE_SIZE", *q, 1, 1'000'000);
  if (auto b = var("OTEL_BSP_MAX_EXPORT_BATCH_SIZE")) c.max_batch = number("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", *b, 1, 1'000'000);
  if (c.max_batch > c.max_queue) {
    bad("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "is " + std::to_string(c.max_batch) +
                                              ": it must not exceed the queue (OTEL_BSP_MAX_QUEUE_SIZE, " +
                                              std::to_string(c.max_queue) + ")");
  }
  return c;
}

BatchSpanProcessor::BatchSpanProcessor(ExporterConfig config, Transport transport)
    : config_(std::move(config)), transport_(std::move(transport)) {
  resource_.attributes.emplace_back("service.name", config_.service_name);
  resource_.attributes.emplace_back("telemetry.sdk.name", std::string("lighthouse"));
  resource_.attributes.emplace_back("telemetry.sdk.language", std::string("cpp"));
  resource_.attributes.emplace_back("telemetry.sdk.version", std::string(LIGHTHOUSE_VERSION));
  for (const auto& [k, v] : config_.resource) resource_.attributes.emplace_back(k, v);
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "lh-otlp");
    run();
  });
}

BatchSpanProcessor::~BatchSpanProcessor() { shutdown(); }

// The exporter's thread holds the lock only to take a chunk of spans and
// to give it back: a span never waits for an export, and one that finds
// the queue full is dropped.
BatchSpanProcessor::Chunk* BatchSpanProcessor::chunk_for_one_more() noexcept {
  if (stopping_ || queued_ >= config_.max_queue) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  try {
    if (queue_.empty() || queue_.back().size() >= config_.max_batch) {
      if (spare_.empty()) {
        queue_.emplace_back();
      } else {
        queue_.push_back(std::move(spare_.back()));
        spare_.pop_back();
      }
    }
  } catch (const std::bad_alloc&) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return nullptr;
  }
  return &queue_.back();
}

namespace {
// Into a chunk's room (reserved once per chunk and kind, kept as the chunk
// is reused); false when out of memory.
template <class Span>
bool push(std::vector<Span>& into, Span&& span, std::size_t max_batch) noexcept {
  try {
    if (into.capacity() == 0) into.reserve(std::min<std::size_t>(max_batch, 1024));
    into.push_back(std::move(span));
    return true;
  } catch (const std::bad_alloc&) {
    return false;
  }
}
}  // namespace

template <class Span>
void BatchSpanProcessor::enqueue(std::vector<Span> Chunk::*kind, Span&& span) noexcept {
  std::lock_guard lock(mutex_);
  Chunk* chunk = chunk_for_one_more();
  if (chunk == nullptr) return;
  if (!push(chunk->*kind, std::move(span), config_.max_batch)) {
    dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (++queued_ == config_.max_batch) wake_.notify_one();
}

void BatchSpanProcessor::on_end(tracing::SpanData span) noexcept { enqueue(&Chunk::spans, std::move(span)); }

void BatchSpanProcessor::on_end_append(tracing::AppendSpan span) noexcept {
  enqueue(&Chunk::appends, std::move(span));
}

void BatchSpanProcessor::run() {
  std::unique_lock lock(mutex_);
  std::chrono::steady_clock::time_point shutdown_deadline{};
  for (;;) {
    wake_.wait_for(lock, config_.schedule_delay,
                   [this] { return stopping_ || queued_ >= config_.max_batch; });
    if (stopping_ && shutdown_deadline == std::chrono::steady_clock::time_point{}) {
      shutdown_deadline = std::chrono::steady_clock::now() + config_.export_timeout;
    }
    if (queue_.empty()) {
      if (stopping_) return;
      continue;
    }
    // The front chunk is full unless it is the only one.
    Chunk batch = std::move(queue_.front());
    queue_.pop_front();
    queued_ -= batch.size();
    const bool at_shutdown = stopping_;
    lock.unlock();
    const std::size_t spans = batch.size();
    const auto now = std::chrono::steady_clock::now();
    std::string body;
    const bool out_of_time = at_shutdown && now >= shutdown_deadline;
    if (!out_of_time) {
      body = config_.encoding == Encoding::json ? encode_json(resource_, batch.spans, batch.appends)
                                                : encode_protobuf(resource_, batch.spans, batch.appends);
    }
    batch.spans.clear();  // the chunk keeps its room for the spans to come
    batch.appends.clear();
    lock.lock();
    spare_.push_back(std::move(batch));
    lock.unlock();
    if (out_of_time) {
      dropped_.fetch_add(spans, std::memory_order_relaxed);
    } else {
      export_batch(body, spans, at_shutdown ? shutdown_deadline : now + config_.export_timeout);
    }
    lock.lock();
  }
}

void BatchSpanProcessor::export_batch(const std::string& body, std::size_t spans,
                                      std::chrono::steady_clock::time_point deadline) {
  thread_local std::mt19937 jitter(std::random_device{}());
  std::chrono::milliseconds backoff{1000};
  for (int attempt = 0;; ++attempt) {
    const auto now = std::chrono::steady_clock::now();
    const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now);
    if (left.count() <= 0) break;
    std::optional<std::chrono::milliseconds> retry_in;
    bool no_reply = false;
    try {
      const HttpReply reply = transport_(body, std::min(left, config_.request_timeout));
      if (reply.status >= 200 && reply.status < 300) {
        exported_.fetch_add(spans, std::memory_order_relaxed);
        return;
      }
      failed_.fetch_add(1, std::memory_order_relaxed);
      const bool retryable = reply.status == 429 || reply.status == 502 || reply.status == 503 || reply.status == 504;
      if (!retryable) break;  // 400, 413 and the rest: the data will not be accepted
      retry_in = reply.retry_after;
    } catch (const std::exception&) {
      failed_.fetch_add(1, std::memory_order_relaxed);
      // No reply (refused, reset, timed out): retried like a 503, except at
      // shutdown, where a collector that is down must not hold the exit up.
      std::lock_guard lock(mutex_);
      if (stopping_) break;
      no_reply = true;
    }
    if (attempt >= 4) break;  // five attempts
    std::uniform_real_distribution<double> spread(0.8, 1.2);
    const auto wait = retry_in ? *retry_in
                               : std::chrono::milliseconds(static_cast<long long>(static_cast<double>(backoff.count()) * spread(jitter)));
    backoff = std::min(std::chrono::milliseconds(5000), std::chrono::milliseconds(backoff.count() * 3 / 2));
    if (std::chrono::steady_clock::now() + wait >= deadline) break;
    retries_.fetch_add(1, std::memory_order_relaxed);
    std::unique_lock lock(mutex_);
    // A shutdown cuts the wait short only after a failure without reply.
    if (idle_.wait_for(lock, wait, [&] { return no_reply && stopping_; })) break;
  }
  dropped_.fetch_add(spans, std::memory_order_relaxed);
}

void BatchSpanProcessor::shutdown() {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ && !thread_.joinable()) return;
    stopping_ = true;
  }
  wake_.notify_all();
  idle_.notify_all();
  if (thread_.joinable()) thread_.join();
}

ExporterCounters BatchSpanProcessor::counters() const {
  return {exported_.load(), dropped_.load(), failed_.load(), retries_.load()};
}

std::string BatchSpanProcessor::metrics_text() const {
  const ExporterCounters c = counters();
  std::string out;
  const auto counter = [&](const char* name, const char* help, std::uint64_t v) {
    out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " counter\n" + name + " " +
           std::to_string(v) + "\n";
  };
  counter("lighthouse_trace_spans_exported_total", "Spans an OTLP collector accepted.", c.exported);
  counter("lighthouse_trace_spans_dropped_total",
          "Spans dropped: the export queue was full, or their export failed or ran out of time.", c.dropped);
  counter("lighthouse_trace_export_failures_total", "OTLP export requests that failed (no reply or not 2xx).",
          c.failed_requests);
  counter("lighthouse_trace_export_retries_total", "OTLP export requests retried.", c.retries);
  return out;
}

}  // namespace lighthouse::tool::otlp
