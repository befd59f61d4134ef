// OTLP's ExportTraceServiceRequest for a batch of finished spans, in the
// protocol's two HTTP encodings: protobuf (application/x-protobuf) and
// OTLP/JSON (application/json: hex trace and span IDs, 64-bit integers as
// strings, enums as numbers). Written from opentelemetry-proto's
// trace/v1/trace.proto, common/v1 and resource/v1; field numbers are
// commented where they are written.
#pragma once

#include <string>
#include <vector>

#include "lighthouse/tracing.h"

namespace lighthouse::tool::otlp {

struct Resource {
  std::vector<std::pair<std::string, tracing::AttributeValue>> attributes;  // service.name first
};

// `spans`, then `appends` (the store's append spans, as the exporter queues
// them: each encoded as its to_span_data() would be).
std::string encode_protobuf(const Resource& resource, const std::vector<tracing::SpanData>& spans,
                            const std::vector<tracing::AppendSpan>& appends = {});
std::string encode_json(const Resource& resource, const std::vector<tracing::SpanData>& spans,
                        const std::vector<tracing::AppendSpan>& appends = {});

}  // namespace lighthouse::tool::otlp
