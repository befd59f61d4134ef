#include "tool_tracing.h"

#include <cstdlib>
#include <iostream>

#include "lighthouse/error.h"

namespace lighthouse::tool {

ToolTracing& tool_tracing() {
  static ToolTracing instance;
  return instance;
}

void ToolTracing::start(const TracingFlags& flags, const std::string& command) {
  auto config = otlp::config_from_environment(flags.endpoint, flags.protocol, [](const char* name) { return std::getenv(name); });
  if (!config) {
    if (!flags.protocol.empty()) throw Error(ErrorCode::invalid_argument, "--otlp-protocol needs an endpoint (--otlp-endpoint)");
    return;
  }
  exporter_ = std::make_shared<otlp::BatchSpanProcessor>(*config, otlp::http_transport(*config));
  options_.sink = exporter_;
  options_.sampler = config->sampler;
  std::optional<tracing::SpanContext> parent;
  if (const char* tp = std::getenv("TRACEPARENT")) {
    const char* ts = std::getenv("TRACESTATE");
    parent = tracing::SpanContext::parse(tp, ts ? ts : "");
  }
  command_.emplace(options_, "lighthouse " + command, tracing::SpanKind::internal,
                   parent ? &*parent : tracing::Span::root);
  command_->set("process.command", std::string("lighthouse"));
  command_->set("lighthouse.command", command);
  scope_.emplace(command_->context());
}

void ToolTracing::finish(int exit_code) noexcept {
  if (!exporter_) return;
  try {
    if (command_) {
      command_->set("process.exit.code", static_cast<std::int64_t>(exit_code));
      if (exit_code != 0) command_->set_error("exit_code", "exit code " + std::to_string(exit_code));
      command_->end();
    }
    scope_.reset();
    exporter_->shutdown();
    const auto c = exporter_->counters();
    if (c.dropped > 0) {
      std::cerr << "lighthouse: tracing: " << c.dropped << " spans dropped (" << c.exported << " exported to "
                << exporter_->config().endpoint << ")\n";
    }
  } catch (...) {
  }
}

}  // namespace lighthouse::tool
