// A client of `lighthouse serve` traced by the official OpenTelemetry JS SDK
// (tests/tool/test_tracing.py): one client span, exported over OTLP/HTTP
// protobuf to the given collector, whose context goes to the server in a
// W3C traceparent header (the SDK's own propagator writes it).
//
// Usage: node traced-client.mjs SERVER_URL COLLECTOR_URL AGGREGATE
// Prints {"trace_id", "span_id", "status", "traceparent"} (the server's
// answer and the traceparent it returned), after the SDK has flushed.
import http from 'node:http';
import { context, propagation, trace, SpanKind } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { Resource } from '@opentelemetry/resources';

const [serverUrl, collectorUrl, aggregate] = process.argv.slice(2);
const provider = new BasicTracerProvider({
  resource: new Resource({ 'service.name': 'traced-client' }),
  spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: collectorUrl }))],
});
propagation.setGlobalPropagator(new W3CTraceContextPropagator());
const tracer = provider.getTracer('traced-client');

function post(url, headers, body) {
  return new Promise((resolve, reject) => {
    const req = http.request(url, { method: 'POST', headers }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks).toString() }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
    req.end(body);
  });
}

const span = tracer.startSpan('place order', { kind: SpanKind.CLIENT });
const headers = { 'content-type': 'application/json' };
propagation.inject(trace.setSpan(context.active(), span), headers);
const reply = await post(`${serverUrl}/streams/${encodeURIComponent(aggregate)}`, headers,
                         JSON.stringify({ type: 'OrderPlaced', data: { total: 12 } }));
span.setAttribute('http.response.status_code', reply.status);
span.end();
await provider.forceFlush();
await provider.shutdown();
process.stdout.write(JSON.stringify({
  trace_id: span.spanContext().traceId,
  span_id: span.spanContext().spanId,
  status: reply.status,
  traceparent: reply.headers.traceparent || null,
  sent: headers.traceparent,
}) + '\n');
