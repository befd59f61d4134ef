// The OTLP/HTTP span exporter of `lighthouse` and `lighthouse serve`: a
// batching span processor (the store's SpanSink) that queues finished spans
// in a bounded queue — a span that does not fit is dropped and counted, an
// append never waits — and one thread that sends them in batches to a
// collector, retrying as the OTLP specification says (429, 502, 503 and
// 504, with exponential backoff and Retry-After; 400 and 413 are not
// retried). docs/tracing.md tells how it is configured.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "lighthouse/tracing.h"
#include "otlp/encoding.h"

namespace lighthouse::tool::otlp {

enum class Encoding { protobuf, json };

struct ExporterConfig {
  // http://HOST[:PORT]/PATH, used as given.
  std::string endpoint;
  Encoding encoding = Encoding::protobuf;
  std::map<std::string, std::string> headers;
  std::string service_name = "lighthouse";
  std::vector<std::pair<std::string, std::string>> resource;  // OTEL_RESOURCE_ATTRIBUTES
  tracing::Sampler sampler;
  std::size_t max_queue = 2048;
  std::size_t max_batch = 512;
  std::chrono::milliseconds schedule_delay{5000};
  std::chrono::milliseconds export_timeout{30000};  // a batch, retries included
  std::chrono::milliseconds request_timeout{10000};  // one request
};

// Reads the OTEL_* variables (through `getenv`) and the flag's endpoint
// (empty: none given). Returns nullopt when no endpoint is set: tracing off.
// Errors: invalid_argument naming the variable and what is wrong with it.
std::optional<ExporterConfig> config_from_environment(const std::string& endpoint_flag,
                                                      const std::string& protocol_flag,
                                                      const std::function<const char*(const char*)>& getenv);

struct HttpReply {
  unsigned status = 0;
  std::optional<std::chrono::milliseconds> retry_after;
};

// Sends one request; throws std::runtime_error when no reply came (refused,
// reset, timed out).
using Transport = std::function<HttpReply(const std::string& body, std::chrono::milliseconds timeout)>;

// Beast's HTTP/1.1 client (otlp/http_post.cpp).
Transport http_transport(const ExporterConfig& config);

struct ExporterCounters {
  std::uint64_t exported = 0;  // spans a collector accepted
  std::uint64_t dropped = 0;   // spans that did not fit in the queue, or whose export failed
  std::uint64_t failed_requests = 0;
  std::uint64_t retries = 0;
};

class BatchSpanProcessor : public tracing::SpanSink {
 public:
  BatchSpanProcessor(ExporterConfig config, Transport transport);
  ~BatchSpanProcessor() override;  // shutdown()

  void on_end(tracing::SpanData span) noexcept override;
  // Queued as it is, encoded by the exporter's thread (encode_protobuf).
  void on_end_append(tracing::AppendSpan span) noexcept override;
  // Sends what is queued (at most the export timeout), then stops the
  // thread. Later spans are dropped. Idempotent.
  void shutdown();
  ExporterCounters counters() const;
  // Prometheus text: lighthouse_trace_spans_{exported,dropped}_total and
  // lighthouse_trace_export_{failures,retries}_total.
  std::string metrics_text() const;
  const ExporterConfig& config() const noexcept { return config_; }

 private:
  // A chunk of the queue: spans, and the store's append spans as they came.
  struct Chunk {
    std::vector<tracing::SpanData> spans;
    std::vector<tracing::AppendSpan> appends;
    std::size_t size() const noexcept { return spans.size() + appends.size(); }
  };
  void run();
  // The chunk a span goes into (locked): null when the span is dropped.
  Chunk* chunk_for_one_more() noexcept;
  // Queues `span` into its chunk's `kind` of spans, or drops and counts it.
  template <class Span>
  void enqueue(std::vector<Span> Chunk::*kind, Span&& span) noexcept;
  void export_batch(const std::string& body, std::size_t spans, std::chrono::steady_clock::time_point deadline);

  const ExporterConfig config_;
  const Transport transport_;
  Resource resource_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::condition_variable idle_;
  // The queue, in chunks of at most max_batch spans: an append's span is
  // moved into room a chunk already has, and the exporter's thread takes a
  // whole chunk, encodes it, and gives it back cleared to `spare_` — once
  // warm, queueing a span allocates nothing.
  std::deque<Chunk> queue_;
  std::vector<Chunk> spare_;
  std::size_t queued_ = 0;
  bool stopping_ = false;
  bool flushing_ = false;
  std::atomic<std::uint64_t> exported_{0}, dropped_{0}, failed_{0}, retries_{0};
  std::thread thread_;
};

}  // namespace lighthouse::tool::otlp
