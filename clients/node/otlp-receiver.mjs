// A fake OTLP/HTTP collector for the tracing tests (tests/tool/test_tracing.py).
// It decodes what it receives with a decoder nobody here wrote: the protobuf
// classes OpenTelemetry generated for its JS exporters
// (@opentelemetry/otlp-transformer, build/src/generated/root.js), or
// JSON.parse for OTLP/JSON, and prints each request as one JSON line on
// stdout: {"n", "content_type", "status", "request"} with IDs as hex.
//
// Usage: node otlp-receiver.mjs [--statuses 503,400,...] [--retry-after S]
//                               [--delay-ms MS]
// Listens on 127.0.0.1 on a free port and prints {"port": N} first. The
// statuses answer the first requests in turn, then 200; --delay-ms holds
// every answer back (a slow collector). Stops on SIGTERM or after 10 min.
import http from 'node:http';
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);
const root = require('@opentelemetry/otlp-transformer/build/src/generated/root.js');
const ExportTraceServiceRequest = root.opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest;

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const statuses = option('--statuses', '').split(',').filter(Boolean).map(Number);
const retryAfter = option('--retry-after', null);
const delayMs = Number(option('--delay-ms', '0'));

const hex = (bytes) => Buffer.from(bytes || []).toString('hex');

function decodeProtobuf(body) {
  const message = ExportTraceServiceRequest.decode(body);
  const object = ExportTraceServiceRequest.toObject(message, { longs: String, enums: Number, bytes: Array, defaults: false });
  // IDs as hex, as OTLP/JSON writes them, so that both encodings compare.
  for (const rs of object.resourceSpans || []) {
    for (const ss of rs.scopeSpans || []) {
      for (const s of ss.spans || []) {
        s.traceId = hex(s.traceId);
        s.spanId = hex(s.spanId);
        if (s.parentSpanId) s.parentSpanId = hex(s.parentSpanId);
        for (const l of s.links || []) {
          l.traceId = hex(l.traceId);
          l.spanId = hex(l.spanId);
        }
      }
    }
  }
  return object;
}

let n = 0;
const server = http.createServer((req, res) => {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const body = Buffer.concat(chunks);
    const status = n < statuses.length ? statuses[n] : 200;
    const contentType = req.headers['content-type'] || '';
    let request = null;
    let error = null;
    try {
      request = contentType.startsWith('application/json') ? JSON.parse(body.toString('utf8')) : decodeProtobuf(body);
    } catch (e) {
      error = String(e);
    }
    const line = { n: n++, path: req.url, content_type: contentType, status, request, error,
                   headers: req.headers, at_ms: Date.now() };
    setTimeout(() => {
      const headers = { 'content-type': contentType.startsWith('application/json') ? 'application/json' : 'application/x-protobuf' };
      if (retryAfter !== null && status !== 200) headers['retry-after'] = retryAfter;
      res.writeHead(status, headers);
      res.end(status === 200 && contentType.startsWith('application/json') ? '{}' : '');
      process.stdout.write(JSON.stringify(line) + '\n');
    }, delayMs);
  });
});
server.listen(0, '127.0.0.1', () => {
  process.stdout.write(JSON.stringify({ port: server.address().port }) + '\n');
});
process.on('SIGTERM', () => { server.close(); process.exit(0); });
setTimeout(() => process.exit(0), 600_000).unref();
