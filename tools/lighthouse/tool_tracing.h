// The tool's tracing: the OTLP exporter when an endpoint is configured
// (--otlp-endpoint or the OTEL_* variables, docs/tracing.md), the options
// every store the tool opens is given, and a span for the command itself,
// whose parent is the TRACEPARENT variable when it holds one.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "lighthouse/tracing.h"
#include "otlp/exporter.h"

namespace lighthouse::tool {

struct TracingFlags {
  std::string endpoint;  // --otlp-endpoint
  std::string protocol;  // --otlp-protocol
};

class ToolTracing {
 public:
  // Reads the configuration and starts the exporter (if any) and the
  // command's span. Errors: invalid_argument for a bad variable or flag.
  void start(const TracingFlags& flags, const std::string& command);
  // Ends the command's span and flushes what is queued (at most the export
  // timeout); says on stderr how many spans were dropped, if any.
  void finish(int exit_code) noexcept;

  const tracing::TracingOptions& options() const noexcept { return options_; }
  otlp::BatchSpanProcessor* exporter() const noexcept { return exporter_.get(); }

 private:
  tracing::TracingOptions options_;
  std::shared_ptr<otlp::BatchSpanProcessor> exporter_;
  std::optional<tracing::Span> command_;
  std::optional<tracing::ContextScope> scope_;
};

ToolTracing& tool_tracing();

}  // namespace lighthouse::tool
