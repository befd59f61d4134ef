// The store's spans' common attributes, and the span of one of its long operations (verify, repair, backup,
// export, import, truncate), when Options::tracing has a sink: `body` runs
// with the span to describe its work in (nullptr without a sink), and an
// Error it throws is the span's status before it goes on.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "lighthouse/error.h"
#include "lighthouse/options.h"
#include "lighthouse/tracing.h"

namespace lighthouse {

// OpenTelemetry's database attributes of a store's span: db.system,
// db.operation.name (a literal) and, unless null, db.namespace (the store's
// path: a copy, left out of the spans made per append).
inline void describe_db_operation(tracing::Span& span, std::string_view operation,
                                  const std::filesystem::path* store) {
  if (!span.recording()) return;
  span.set("db.system", std::string("lighthouse"));
  span.set("db.operation.name", std::string(operation));
  if (store != nullptr) span.set("db.namespace", store->string());
}

// The same two, pushed into the data of a span being ended by
// Span::end_described (the store's append spans).
inline void describe_db_operation(tracing::SpanData& data, std::string_view operation) {
  data.attributes.emplace_back("db.system", std::string("lighthouse"));
  data.attributes.emplace_back("db.operation.name", std::string(operation));
}

template <class Body>
auto traced_task(const Options& options, std::string_view task, const std::filesystem::path& store, Body&& body) {
  if (!options.tracing.sink) return body(static_cast<tracing::Span*>(nullptr));
  tracing::Span span(options.tracing, task, tracing::SpanKind::internal);
  describe_db_operation(span, task, &store);
  try {
    auto result = body(&span);
    span.set_ok();
    return result;
  } catch (const Error& e) {
    span.set_error(to_string(e.code()), e.what());
    throw;
  }
}

}  // namespace lighthouse
