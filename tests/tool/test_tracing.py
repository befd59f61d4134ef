"""Tracing end to end (docs/tracing.md): `lighthouse` and `lighthouse serve`
export spans over OTLP/HTTP to a fake collector on a loopback port, which
decodes them with decoders nobody here wrote — the protobuf classes
OpenTelemetry generated for its JS exporters (clients/node/otlp-receiver.mjs,
@opentelemetry/otlp-transformer 0.57.2) and Debian's `protoc --decode` with
the .proto files of @opentelemetry/otlp-grpc-exporter-base 0.37.0 — and a
client traced by the OpenTelemetry JS SDK (clients/node/traced-client.mjs).

Node's packages are installed by scripts/install-deps.sh from
clients/node/package-lock.json; protoc by Debian's protobuf-compiler.
"""

import json
import os
import re
import subprocess
import tempfile
import threading
import time
import unittest

from test_serve import Server, TIMEOUT, TOOL

NODE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "clients", "node")
PROTOS = os.path.join(NODE_DIR, "node_modules", "@opentelemetry", "otlp-grpc-exporter-base", "build", "protos")
PARENT_TRACE = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"
TRACEPARENT = f"00-{PARENT_TRACE}-{PARENT_SPAN}-01"


class Receiver:
    """clients/node/otlp-receiver.mjs as a process: every request it decoded."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(["node", os.path.join(NODE_DIR, "otlp-receiver.mjs"), *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        first = self.proc.stdout.readline()
        if not first:
            raise AssertionError("the receiver did not start: " + self.proc.stderr.read().decode())
        self.port = json.loads(first)["port"]
        self.url = f"http://127.0.0.1:{self.port}/v1/traces"
        self.requests = []
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        for line in self.proc.stdout:
            with self.lock:
                self.requests.append(json.loads(line))

    def received(self):
        with self.lock:
            return list(self.requests)

    def spans(self):
        out = []
        for r in self.received():
            if r["status"] != 200 or not r["request"]:
                continue
            for rs in r["request"].get("resourceSpans", []):
                resource = {a["key"]: value(a["value"]) for a in rs["resource"].get("attributes", [])}
                for ss in rs.get("scopeSpans", []):
                    for s in ss.get("spans", []):
                        s["resource"] = resource
                        s["attrs"] = {a["key"]: value(a["value"]) for a in s.get("attributes", [])}
                        out.append(s)
        return out

    def wait_for(self, predicate, what, timeout=TIMEOUT):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            spans = self.spans()
            if predicate(spans):
                return spans
            time.sleep(0.05)
        raise AssertionError(f"the collector never received {what}: {[s['name'] for s in self.spans()]}")

    def wait_requests(self, n, timeout=TIMEOUT):
        """The first `n` requests, once that many came."""
        deadline = time.monotonic() + timeout
        while len(self.received()) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        got = self.received()
        if len(got) < n:
            raise AssertionError(f"the collector received {len(got)} requests, not {n}")
        return got[:n]

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.reader.join(timeout=TIMEOUT)
        self.proc.stdout.close()
        self.proc.stderr.close()


def value(v):
    """An AnyValue as a Python value (protobufjs' toObject or OTLP/JSON)."""
    if "stringValue" in v:
        return v["stringValue"]
    if "boolValue" in v:
        return v["boolValue"]
    if "intValue" in v:
        return int(v["intValue"])
    if "doubleValue" in v:
        return v["doubleValue"]
    return None


def named(spans, name):
    return [s for s in spans if s["name"] == name]


def env_with(**variables):
    env = {k: v for k, v in os.environ.items() if not k.startswith("OTEL_") and k not in ("TRACEPARENT", "TRACESTATE")}
    env.update(variables)
    return env


def tool_run(*args, stdin=b"", env=None):
    return subprocess.run([TOOL, *args], input=stdin, capture_output=True, timeout=120, env=env)


def event_line(type_="Placed", aggregate="order-1"):
    return json.dumps({"type": type_, "aggregate": aggregate, "data": {"n": 1}}).encode() + b"\n"


class TracingTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        self.store = os.path.join(self.tmp.name, "store")
        self.assertEqual(tool_run("init", self.store).returncode, 0)
        self.cleanup = []

    def tearDown(self):
        for stop in reversed(self.cleanup):
            stop()
        self.tmp.cleanup()

    def receiver(self, *args):
        r = Receiver(*args)
        self.cleanup.append(r.stop)
        return r

    def serve(self, receiver_url, *args, **variables):
        env = env_with(**{"OTEL_BSP_SCHEDULE_DELAY": "100", "OTEL_SERVICE_NAME": "store-server", **variables})
        server = Server(self.store, "--otlp-endpoint", receiver_url, *args, env=env)
        self.cleanup.append(server.stop)
        return server

    def metric(self, server, name):
        status, _, body = server.request("GET", "/metrics")
        self.assertEqual(status, 200)
        found = re.search(rf"^{name} (\d+)$", body.decode(), re.M)
        self.assertIsNotNone(found, f"{name} is not in /metrics")
        return int(found.group(1))


class ServerSpansTest(TracingTest):
    def test_a_request_with_a_traceparent_is_the_parent_of_the_server_span_and_of_the_stores(self):
        r = self.receiver()
        server = self.serve(r.url)
        status, headers, body = server.json("POST", "/streams/order-1", {"type": "Placed", "data": {"n": 1}},
                                             {"traceparent": TRACEPARENT, "tracestate": "vendor=1"})
        self.assertEqual(status, 201)
        returned = headers.get("traceparent", "")
        self.assertRegex(returned, rf"^00-{PARENT_TRACE}-[0-9a-f]{{16}}-01$")
        spans = r.wait_for(lambda s: named(s, "append") and named(s, "commit") and named(s, "POST /streams/{aggregate}"),
                           "the request's spans")
        request = named(spans, "POST /streams/{aggregate}")[0]
        append = named(spans, "append")[0]
        commit = named(spans, "commit")[0]
        for s in (request, append, commit):
            self.assertRegex(s["traceId"], r"^[0-9a-f]{32}$")
            self.assertRegex(s["spanId"], r"^[0-9a-f]{16}$")
            self.assertNotEqual(s["traceId"], "0" * 32)
            self.assertNotEqual(s["spanId"], "0" * 16)
            self.assertEqual(s["resource"]["service.name"], "store-server")
            self.assertLessEqual(int(s["startTimeUnixNano"]), int(s["endTimeUnixNano"]))
        # client (the traceparent) → server span → append span; the commit is its own trace, linked.
        self.assertEqual(request["traceId"], PARENT_TRACE)
        self.assertEqual(request["parentSpanId"], PARENT_SPAN)
        self.assertEqual(request["kind"], 2)  # SERVER
        self.assertEqual(request["traceState"], "vendor=1")
        self.assertEqual(returned.split("-")[2], request["spanId"])
        self.assertEqual(request["attrs"]["http.response.status_code"], 201)
        self.assertEqual(request["attrs"]["http.request.method"], "POST")
        self.assertEqual(append["traceId"], PARENT_TRACE)
        self.assertEqual(append["parentSpanId"], request["spanId"])
        self.assertEqual(append["kind"], 4)  # PRODUCER
        self.assertEqual(append["attrs"]["db.system"], "lighthouse")
        self.assertEqual(append["attrs"]["db.operation.name"], "append")
        self.assertGreaterEqual(append["attrs"]["lighthouse.queue_time_ns"], 0)
        self.assertEqual(append["attrs"]["lighthouse.first_sequence"], body["events"][0]["sequence"])
        self.assertNotEqual(commit["traceId"], PARENT_TRACE)
        self.assertEqual([(l["traceId"], l["spanId"]) for l in append["links"]], [(commit["traceId"], commit["spanId"])])
        self.assertEqual(commit["attrs"]["lighthouse.commit.events"], 1)
        # The event holds the append span's context.
        status, _, event = server.json("GET", "/events/" + body["events"][0]["id"])
        self.assertEqual(event["trace_context"]["traceparent"], f"00-{append['traceId']}-{append['spanId']}-01")
        # A query's span, child of its request's.
        status, headers, _ = server.request("GET", "/streams/order-1", headers={"traceparent": TRACEPARENT})
        self.assertEqual(status, 200)
        spans = r.wait_for(lambda s: named(s, "read_aggregate"), "the read's span")
        read = named(spans, "read_aggregate")[0]
        get = named(spans, "GET /streams/{aggregate}")[0]
        self.assertEqual(read["parentSpanId"], get["spanId"])
        self.assertEqual(read["attrs"]["lighthouse.events_returned"], 1)
        self.assertEqual(read["attrs"]["lighthouse.query.plan"], "by_aggregate")

    def test_a_failed_append_has_its_status_and_attributes(self):
        r = self.receiver()
        server = self.serve(r.url)
        self.assertEqual(server.json("POST", "/streams/acct-1", {"type": "Opened"})[0], 201)
        status, _, body = server.json("POST", "/streams/acct-1", {"type": "Opened"},
                                      {"If-Match": "5", "traceparent": TRACEPARENT})
        self.assertEqual(status, 409)
        spans = r.wait_for(lambda s: any(x["status"].get("code") == 2 for x in named(s, "append") if x.get("status")),
                           "a failed append")
        failed = [x for x in named(spans, "append") if x.get("status", {}).get("code") == 2][0]
        self.assertEqual(failed["attrs"]["error.type"], "wrong_expected_version")
        self.assertEqual(failed["attrs"]["lighthouse.aggregate"], "acct-1")
        self.assertEqual(failed["attrs"]["lighthouse.actual_version"], 1)
        self.assertIn("acct-1", failed["status"]["message"])
        request = [x for x in named(spans, "POST /streams/{aggregate}") if x["spanId"] == failed["parentSpanId"]][0]
        self.assertEqual(request["attrs"]["http.response.status_code"], 409)
        self.assertNotEqual(request.get("status", {}).get("code"), 2)  # a 4xx is the client's, not the server's error

    def test_the_subscribe_handshakes_take_and_return_the_trace_context(self):
        r = self.receiver()
        server = self.serve(r.url)
        websocket = (b"GET /subscribe HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                     b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
                     b"traceparent: " + TRACEPARENT.encode() + b"\r\n\r\n")
        events = (b"GET /subscribe HTTP/1.1\r\nHost: x\r\nAccept: text/event-stream\r\n"
                  b"traceparent: " + TRACEPARENT.encode() + b"\r\n\r\n")
        for request, status in ((websocket, b"101"), (events, b"200")):
            with self.subTest(status=status):
                head = raw_head(server, request)
                self.assertIn(b" " + status + b" ", head.split(b"\r\n")[0])
                found = re.search(rb"\r\ntraceparent: (00-[0-9a-f]{32}-[0-9a-f]{16}-01)", head, re.I)
                self.assertIsNotNone(found, head)
                self.assertEqual(found.group(1).decode().split("-")[1], PARENT_TRACE)
        spans = r.wait_for(lambda s: len(named(s, "GET /subscribe")) == 2, "the handshakes' spans")
        self.assertTrue(all(x["parentSpanId"] == PARENT_SPAN for x in named(spans, "GET /subscribe")))

    def test_otlp_json_carries_the_same_spans_with_hex_ids(self):
        r = self.receiver()
        server = self.serve(r.url, "--otlp-protocol", "http/json")
        self.assertEqual(server.json("POST", "/streams/o", {"type": "T"}, {"traceparent": TRACEPARENT})[0], 201)
        spans = r.wait_for(lambda s: named(s, "append"), "the append span")
        self.assertTrue(all(x["content_type"].startswith("application/json") for x in r.received()))
        append = named(spans, "append")[0]
        self.assertEqual(append["traceId"], PARENT_TRACE)
        self.assertIsInstance(append["startTimeUnixNano"], str)  # 64-bit integers as strings
        raw_attr = [a for a in append["attributes"] if a["key"] == "lighthouse.events"][0]
        self.assertEqual(raw_attr["value"], {"intValue": "1"})

    def test_protoc_decodes_what_is_sent_with_the_protocols_own_schema(self):
        """Debian's protoc, the .proto files OpenTelemetry ships, and bytes
        sent by the tool to a listener that keeps them."""
        import socket
        listener = socket.socket()
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        got = {}

        def accept():
            conn, _ = listener.accept()
            conn.settimeout(TIMEOUT)
            data = b""
            while b"\r\n\r\n" not in data:
                data += conn.recv(65536)
            head, body = data.split(b"\r\n\r\n", 1)
            length = int(re.search(rb"content-length: *(\d+)", head, re.I).group(1))
            while len(body) < length:
                body += conn.recv(65536)
            got["head"], got["body"] = head, body
            conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
            conn.close()

        t = threading.Thread(target=accept, daemon=True)
        t.start()
        env = env_with(TRACEPARENT=TRACEPARENT)
        done = tool_run("append", self.store, "--otlp-endpoint", f"http://127.0.0.1:{port}/v1/traces",
                        stdin=event_line(), env=env)
        self.assertEqual(done.returncode, 0, done.stderr)
        t.join(timeout=TIMEOUT)
        listener.close()
        self.assertIn(b"POST /v1/traces HTTP/1.1", got["head"])
        self.assertIn(b"application/x-protobuf", got["head"].lower())
        decoded = subprocess.run(
            ["protoc", "--decode", "opentelemetry.proto.collector.trace.v1.ExportTraceServiceRequest", "-I", PROTOS,
             "opentelemetry/proto/collector/trace/v1/trace_service.proto"],
            input=got["body"], capture_output=True, timeout=TIMEOUT)
        self.assertEqual(decoded.returncode, 0, decoded.stderr)
        text = decoded.stdout.decode()
        self.assertIn('name: "append"', text)
        self.assertIn('name: "commit"', text)
        self.assertIn('name: "lighthouse append"', text)
        self.assertIn('string_value: "lighthouse"', text)  # service.name's default and db.system
        self.assertIn("kind: SPAN_KIND_PRODUCER", text)
        # The command's span is TRACEPARENT's child: its parent's 8 bytes, as protoc escapes them.
        parent_bytes = bytes.fromhex(PARENT_SPAN)
        self.assertIn("parent_span_id: " + protoc_bytes(parent_bytes), text)


def raw_head(server, request):
    """The response's head to `request` on a raw socket (the connection stays a stream)."""
    import socket
    s = socket.create_connection((server.host, server.port), timeout=TIMEOUT)
    try:
        s.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
        return data.split(b"\r\n\r\n", 1)[0]
    finally:
        s.close()


def protoc_bytes(b):
    """How protoc's text format prints a bytes field (octal escapes)."""
    out = ""
    for c in b:
        ch = chr(c)
        if ch == '"':
            out += '\\"'
        elif ch == "'":
            out += "\\'"
        elif ch == "\\":
            out += "\\\\"
        elif 0x20 <= c < 0x7f:
            out += ch
        else:
            out += f"\\{c:03o}"
    return f'"{out}"'


class CrossProcessTest(TracingTest):
    def test_a_consumers_delivery_span_links_to_the_producers_append_in_another_process(self):
        r = self.receiver()
        server = self.serve(r.url)
        status, _, body = server.json("POST", "/streams/order-7", {"type": "Shipped"}, {"traceparent": TRACEPARENT})
        self.assertEqual(status, 201)
        append = r.wait_for(lambda s: named(s, "append"), "the producer's append")
        append = named(append, "append")[0]
        self.assertEqual(server.stop(), 0)
        env = env_with(OTEL_SERVICE_NAME="consumer", OTEL_BSP_SCHEDULE_DELAY="60000")
        tail = tool_run("tail", self.store, "--type", "Shipped", "--otlp-endpoint", r.url, env=env)
        self.assertEqual(tail.returncode, 0, tail.stderr)
        spans = r.wait_for(lambda s: named(s, "deliver"), "the consumer's delivery")
        self.assertEqual(len(named(spans, "deliver")), 1)  # the server's own live tail records none
        deliver = named(spans, "deliver")[0]
        self.assertEqual(deliver["resource"]["service.name"], "consumer")
        self.assertEqual(deliver["kind"], 5)  # CONSUMER
        self.assertNotEqual(deliver["traceId"], append["traceId"])
        self.assertEqual([(l["traceId"], l["spanId"]) for l in deliver["links"]], [(append["traceId"], append["spanId"])])
        self.assertEqual(deliver["attrs"]["messaging.message.id"], body["events"][0]["id"])
        # A trace of its own (linked, not a child), beside the command's span.
        self.assertNotIn("parentSpanId", deliver)
        self.assertTrue(named(spans, "lighthouse tail"))

    def test_the_js_sdks_client_span_is_the_parent_of_the_servers_and_the_stores(self):
        r = self.receiver()
        server = self.serve(r.url)
        client = subprocess.run(["node", os.path.join(NODE_DIR, "traced-client.mjs"), f"http://{server.address}", r.url,
                                 "order-js"], capture_output=True, timeout=60)
        self.assertEqual(client.returncode, 0, client.stderr)
        out = json.loads(client.stdout)
        self.assertEqual(out["status"], 201)
        self.assertEqual(out["sent"], f"00-{out['trace_id']}-{out['span_id']}-01")
        spans = r.wait_for(lambda s: named(s, "place order") and named(s, "append"), "the client's and the store's spans")
        client_span = named(spans, "place order")[0]
        self.assertEqual(client_span["resource"]["service.name"], "traced-client")
        self.assertEqual(client_span["kind"], 3)  # CLIENT
        request = named(spans, "POST /streams/{aggregate}")[0]
        append = [a for a in named(spans, "append") if a["traceId"] == out["trace_id"]][0]
        self.assertEqual(request["traceId"], out["trace_id"])
        self.assertEqual(request["parentSpanId"], client_span["spanId"])
        self.assertEqual(append["parentSpanId"], request["spanId"])
        self.assertEqual(out["traceparent"].split("-")[1], out["trace_id"])


class CollectorTroubleTest(TracingTest):
    def appends(self, server, n, aggregate="a"):
        started = time.monotonic()
        for i in range(n):
            status, _, _ = server.json("POST", f"/streams/{aggregate}", {"type": "T", "data": {"i": i}})
            self.assertEqual(status, 201)
        return time.monotonic() - started

    def test_a_collector_that_is_down_costs_dropped_spans_only(self):
        # A port nobody listens on: bound, then closed.
        import socket
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        url = f"http://127.0.0.1:{port}/v1/traces"
        server = self.serve(url, OTEL_BSP_MAX_QUEUE_SIZE="20", OTEL_BSP_MAX_EXPORT_BATCH_SIZE="10")
        self.appends(server, 100)
        dropped = self.metric(server, "lighthouse_trace_spans_dropped_total")
        self.assertGreater(dropped, 100)  # 300 spans or so; the queue holds 20
        self.assertEqual(self.metric(server, "lighthouse_trace_spans_exported_total"), 0)
        self.assertGreater(self.metric(server, "lighthouse_trace_export_failures_total"), 0)
        started = time.monotonic()
        self.assertEqual(server.stop(), 0)
        self.assertLess(time.monotonic() - started, 10)  # its flush does not wait for a collector that is down
        # A tool command: its exit waits for nobody, and says what was dropped.
        started = time.monotonic()
        done = tool_run("append", self.store, "--otlp-endpoint", url, stdin=event_line(), env=env_with())
        self.assertEqual(done.returncode, 0, done.stderr)
        self.assertLess(time.monotonic() - started, 10)
        self.assertIn(b"tracing:", done.stderr)
        self.assertIn(b"spans dropped", done.stderr)
        self.assertEqual(tool_run("verify", self.store).returncode, 0)

    def test_503_is_retried_after_retry_after_and_400_is_not(self):
        r = self.receiver("--statuses", "503,400", "--retry-after", "1")
        server = self.serve(r.url, OTEL_BSP_SCHEDULE_DELAY="60000", OTEL_BSP_MAX_EXPORT_BATCH_SIZE="3")
        # One request: its server, append and commit spans fill one batch of 3.
        self.appends(server, 1, "first")
        first, second = r.wait_requests(2)
        self.assertEqual((first["status"], second["status"]), (503, 400))
        self.assertGreaterEqual(second["at_ms"] - first["at_ms"], 900)  # Retry-After: 1
        self.assertEqual(first["request"], second["request"])  # the same batch again
        self.assertEqual(self.metric(server, "lighthouse_trace_export_retries_total"), 1)
        # 400: not retried; the batch is dropped and counted.
        time.sleep(1.5)
        self.assertEqual(len(r.received()), 2)
        self.assertEqual(self.metric(server, "lighthouse_trace_spans_dropped_total"), 3)
        # The next batch goes through (200): which spans fill it depends on the
        # order they ended in (an append span ends once its request is freed).
        self.appends(server, 1, "second")
        r.wait_for(lambda s: len(s) >= 3, "the next batch")
        # Counted once the exporter has read the reply, a moment after the receiver got the batch.
        deadline = time.monotonic() + TIMEOUT
        while self.metric(server, "lighthouse_trace_spans_exported_total") < 3 and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertGreaterEqual(self.metric(server, "lighthouse_trace_spans_exported_total"), 3)

    def test_a_slow_collector_does_not_slow_appends(self):
        r = self.receiver("--delay-ms", "3000")
        server = self.serve(r.url, OTEL_EXPORTER_OTLP_TRACES_TIMEOUT="300", OTEL_BSP_MAX_QUEUE_SIZE="50",
                            OTEL_BSP_MAX_EXPORT_BATCH_SIZE="10")
        elapsed = self.appends(server, 200)
        self.assertLess(elapsed, 20)  # 200 durable appends one after another; none waits for the collector
        self.assertGreater(self.metric(server, "lighthouse_trace_spans_dropped_total"), 0)
        # The first request times out 0.3 s after it was sent.
        deadline = time.monotonic() + TIMEOUT
        while self.metric(server, "lighthouse_trace_export_failures_total") == 0 and time.monotonic() < deadline:
            time.sleep(0.1)
        self.assertGreater(self.metric(server, "lighthouse_trace_export_failures_total"), 0)
        self.assertEqual(self.metric(server, "lighthouse_trace_spans_exported_total"), 0)

    def test_sigterm_flushes_what_is_queued(self):
        r = self.receiver()
        server = self.serve(r.url, OTEL_BSP_SCHEDULE_DELAY="60000")
        self.appends(server, 5)
        time.sleep(0.3)
        self.assertEqual(r.received(), [])  # nothing sent yet: the delay is a minute
        self.assertEqual(server.stop(), 0)
        spans = r.wait_for(lambda s: len(named(s, "append")) == 5, "the queued spans", timeout=5)
        self.assertTrue(named(spans, "lighthouse serve"))


class ConfigurationTest(TracingTest):
    def test_the_environment_decides_the_endpoint_sampler_and_service(self):
        r = self.receiver()
        base = f"http://127.0.0.1:{r.port}"
        env = env_with(OTEL_EXPORTER_OTLP_ENDPOINT=base, OTEL_SERVICE_NAME="from-env",
                       OTEL_RESOURCE_ATTRIBUTES="deployment.environment=test,service.name=ignored")
        done = tool_run("append", self.store, stdin=event_line(), env=env)
        self.assertEqual(done.returncode, 0, done.stderr)
        spans = r.wait_for(lambda s: named(s, "append"), "spans sent to OTEL_EXPORTER_OTLP_ENDPOINT + /v1/traces")
        self.assertEqual(r.wait_requests(1)[0]["path"], "/v1/traces")
        self.assertEqual(spans[0]["resource"]["service.name"], "from-env")
        self.assertEqual(spans[0]["resource"]["deployment.environment"], "test")
        # Headers go with every request; OTEL_SDK_DISABLED turns it all off.
        env = env_with(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=r.url, OTEL_EXPORTER_OTLP_HEADERS="x-api-key=s%20ecret, x-team=store")
        before = len(r.received())
        self.assertEqual(tool_run("append", self.store, stdin=event_line(), env=env).returncode, 0)
        sent = r.wait_requests(before + 1)[-1]
        self.assertEqual(sent["headers"]["x-api-key"], "s ecret")
        self.assertEqual(sent["headers"]["x-team"], "store")
        before = len(r.received())
        env["OTEL_SDK_DISABLED"] = "true"
        done = tool_run("append", self.store, stdin=event_line(), env=env)
        self.assertEqual(done.returncode, 0, done.stderr)
        time.sleep(0.3)
        self.assertEqual(len(r.received()), before)
        # ..._TRACES_ENDPOINT is used as given.
        env = env_with(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=base + "/custom/path")
        before = len(r.received())
        self.assertEqual(tool_run("append", self.store, stdin=event_line(), env=env).returncode, 0)
        self.assertEqual(r.wait_requests(before + 1)[-1]["path"], "/custom/path")
        # Sampling: parent-based with ratio 0 drops a root, keeps a sampled parent's trace.
        before = len(r.received())
        env = env_with(OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=r.url, OTEL_TRACES_SAMPLER="parentbased_traceidratio",
                       OTEL_TRACES_SAMPLER_ARG="0")
        self.assertEqual(tool_run("append", self.store, stdin=event_line(), env=env).returncode, 0)
        time.sleep(0.3)
        self.assertEqual(len(r.received()), before)
        env["TRACEPARENT"] = TRACEPARENT
        self.assertEqual(tool_run("append", self.store, stdin=event_line(), env=env).returncode, 0)
        r.wait_for(lambda s: any(x["traceId"] == PARENT_TRACE for x in named(s, "append")), "the sampled parent's trace")

    def test_bad_configuration_is_refused_before_anything_is_written(self):
        bad = [
            ({"OTEL_TRACES_SAMPLER": "sometimes"}, "OTEL_TRACES_SAMPLER"),
            ({"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "2"}, "OTEL_TRACES_SAMPLER_ARG"),
            ({"OTEL_BSP_MAX_QUEUE_SIZE": "10", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "20"}, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE"),
            ({"OTEL_BSP_SCHEDULE_DELAY": "soon"}, "OTEL_BSP_SCHEDULE_DELAY"),
            ({"OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL"),
            ({"OTEL_EXPORTER_OTLP_HEADERS": "novalue"}, "OTEL_EXPORTER_OTLP_HEADERS"),
            ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://collector:4318/v1/traces"}, "https"),
            ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "collector:4318"}, "http://"),
        ]
        for variables, named_in_message in bad:
            with self.subTest(variables=variables):
                env = env_with(**{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:1/v1/traces", **variables})
                done = tool_run("append", self.store, stdin=event_line(), env=env)
                self.assertEqual(done.returncode, 4, done.stderr)
                message = done.stderr.decode("utf-8")
                self.assertIn(named_in_message, message)
                self.assertTrue(message.startswith("lighthouse: "))
        stats = json.loads(tool_run("stats", self.store).stdout)
        self.assertEqual(stats["event_count"], 0)
        self.assertEqual(tool_run("append", self.store, "--otlp-protocol", "http/xml", stdin=event_line()).returncode, 4)


if __name__ == "__main__":
    unittest.main()
