"""End-to-end tests of `lighthouse serve`: the server runs as a process on a
free loopback port and is driven with Python's http.client, curl and raw
sockets (docs/http-api.md).

The tool's path comes from LIGHTHOUSE_TOOL. Every test has a store of its own
in a temporary directory and stops its server (SIGTERM, then SIGKILL if it
does not exit in time).
"""

import hashlib
import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import unittest

TOOL = os.environ.get("LIGHTHOUSE_TOOL", "")
TIMEOUT = 30  # seconds for any one step


def tool(*args, stdin=b""):
    return subprocess.run([TOOL, *args], input=stdin, capture_output=True, timeout=60)


class Server:
    """`lighthouse serve STORE --listen 127.0.0.1:0 ...` as a process."""

    def __init__(self, store, *args, env=None):
        self.proc = subprocess.Popen([TOOL, "serve", store, "--listen", "127.0.0.1:0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
        line = self.proc.stdout.readline().decode()
        if not line:
            err = self.proc.stderr.read().decode()
            raise AssertionError(f"the server did not start: {err}")
        self.address = json.loads(line)["listening"]
        self.host, port = self.address.rsplit(":", 1)
        self.port = int(port)

    def connection(self):
        return http.client.HTTPConnection(self.host, self.port, timeout=TIMEOUT)

    def request(self, method, path, body=None, headers=None):
        conn = self.connection()
        try:
            data = body if body is None or isinstance(body, bytes) else json.dumps(body).encode()
            conn.request(method, path, body=data, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()

    def json(self, method, path, body=None, headers=None):
        status, hdrs, data = self.request(method, path, body, headers)
        return status, hdrs, json.loads(data) if data else None

    def lines(self, path, headers=None):
        status, hdrs, data = self.request("GET", path, headers=headers)
        return status, hdrs, [json.loads(l) for l in data.decode().splitlines()]

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait(timeout=TIMEOUT)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return rc


def raw(server, data, read_timeout=5.0):
    """Sends bytes on a raw socket and returns what comes back until the
    server closes the connection (or the timeout)."""
    s = socket.create_connection((server.host, server.port), timeout=read_timeout)
    try:
        if data:
            s.sendall(data)
        out = b""
        deadline = time.monotonic() + read_timeout
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except socket.timeout:
                break
            except ConnectionResetError:
                break
            if not chunk:
                break
            out += chunk
        return out
    finally:
        s.close()


def post(body, path=b"/streams/x"):
    return b"POST " + path + b" HTTP/1.1\r\nContent-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body


def status_of(reply):
    if not reply.startswith(b"HTTP/1."):
        return None
    return int(reply.split(b" ", 2)[1])


class ServeTestCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="lighthouse-serve-")
        self.tmp = self._tmp.name
        self.store = os.path.join(self.tmp, "store")
        r = tool("init", self.store, "--node-id", "7")
        self.assertEqual(r.returncode, 0, r.stderr)
        self.servers = []

    def tearDown(self):
        for s in self.servers:
            s.stop(signal.SIGKILL)
        self._tmp.cleanup()

    def serve(self, *args, store=None):
        s = Server(store or self.store, *args)
        self.servers.append(s)
        return s

    def event_count(self):
        r = tool("stats", self.store)
        self.assertEqual(r.returncode, 0, r.stderr)
        return json.loads(r.stdout)["event_count"]


class TestRoutes(ServeTestCase):
    def test_append_one_event_and_read_it_back_as_get_prints_it(self):
        s = self.serve()
        status, _, body = s.json("POST", "/streams/order-1", {"type": "OrderPlaced", "data": {"total": 5}})
        self.assertEqual(status, 201, body)
        self.assertFalse(body["replayed"])
        [appended] = body["events"]
        self.assertEqual(appended["aggregate_version"], 1)
        status, hdrs, event = s.json("GET", "/events/" + appended["id"])
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Content-Type"], "application/json")
        s.stop()
        printed = json.loads(tool("get", self.store, appended["id"]).stdout)
        self.assertEqual(event, printed)
        self.assertEqual(event["aggregate"], "order-1")
        self.assertEqual(event["data"], {"total": 5})

    def test_a_batch_is_atomic_and_answers_each_event(self):
        s = self.serve()
        batch = [{"type": "A", "data": i} for i in range(5)]
        status, _, body = s.json("POST", "/streams/cart", batch)
        self.assertEqual(status, 201, body)
        self.assertEqual([e["aggregate_version"] for e in body["events"]], [1, 2, 3, 4, 5])
        sequences = [e["sequence"] for e in body["events"]]
        self.assertEqual(sequences, list(range(sequences[0], sequences[0] + 5)))
        # One bad event refuses the whole batch, naming it; nothing is written.
        bad = [{"type": "A"}, {"type": ""}, {"type": "A"}]
        status, _, body = s.json("POST", "/streams/cart", bad)
        self.assertEqual(status, 400, body)
        self.assertEqual(body["error"], "invalid_argument")
        self.assertEqual(body["index"], 1)
        s.stop()
        self.assertEqual(self.event_count(), 5)

    def test_expected_version_in_the_body_and_in_if_match(self):
        s = self.serve()
        self.assertEqual(s.json("POST", "/streams/acct", {"type": "Opened", "expected_version": "no_stream"})[0], 201)
        status, _, body = s.json("POST", "/streams/acct", {"type": "Deposited", "expected_version": 0})
        self.assertEqual(status, 409, body)
        self.assertEqual(body["error"], "wrong_expected_version")
        self.assertEqual(body["actual_version"], 1)
        self.assertEqual(body["aggregate"], "acct")
        status, _, body = s.json("POST", "/streams/acct", {"type": "Deposited"}, {"If-Match": '"1"'})
        self.assertEqual(status, 201, body)
        status, _, body = s.json("POST", "/streams/acct", {"type": "Deposited"}, {"If-Match": "1"})
        self.assertEqual(status, 409, body)
        self.assertEqual(body["actual_version"], 2)
        status, _, body = s.json("POST", "/streams/new", {"type": "X"}, {"If-Match": "*"})
        self.assertEqual(status, 409, body)
        status, _, body = s.json("POST", "/streams/acct", {"type": "X"}, {"If-Match": "soon"})
        self.assertEqual(status, 400, body)
        status, _, body = s.json("POST", "/streams/acct", {"type": "X", "expected_version": 2}, {"If-Match": "2"})
        self.assertEqual(status, 400, body)
        s.stop()
        self.assertEqual(self.event_count(), 2)

    def test_idempotency_key_header_and_field_replay(self):
        s = self.serve()
        first = s.json("POST", "/streams/pay", {"type": "Paid", "data": 1}, {"Idempotency-Key": "pay-1"})
        self.assertEqual(first[0], 201)
        again = s.json("POST", "/streams/pay", {"type": "Paid", "data": 1}, {"Idempotency-Key": "pay-1"})
        self.assertEqual(again[0], 200)
        self.assertTrue(again[2]["replayed"])
        self.assertEqual(again[2]["events"], first[2]["events"])
        other = s.json("POST", "/streams/pay", {"type": "Paid", "data": 2}, {"Idempotency-Key": "pay-1"})
        self.assertEqual(other[0], 409)
        self.assertEqual(other[2]["error"], "idempotency_conflict")
        field = s.json("POST", "/streams/pay", {"type": "Paid", "data": 3, "idempotency_key": "pay-2"})
        self.assertEqual(field[0], 201)
        self.assertEqual(s.json("POST", "/streams/pay", {"type": "Paid", "data": 3, "idempotency_key": "pay-2"})[0], 200)
        s.stop()
        self.assertEqual(self.event_count(), 2)

    def test_post_events_spans_aggregates_with_their_expectations(self):
        s = self.serve()
        s.json("POST", "/streams/a", {"type": "T"})
        batch = [{"type": "T", "aggregate": "a", "expected_version": 1}, {"type": "T", "aggregate": "b"},
                 {"type": "Tick"}]
        status, _, body = s.json("POST", "/events", batch)
        self.assertEqual(status, 201, body)
        self.assertEqual([e["aggregate_version"] for e in body["events"]], [2, 1, 0])
        status, _, body = s.json("POST", "/events", [{"type": "T", "aggregate": "a", "expected_version": 1},
                                                     {"type": "T", "aggregate": "c"}])
        self.assertEqual(status, 409, body)
        s.stop()
        self.assertEqual(self.event_count(), 4)

    def test_read_a_stream_and_query_stream_ndjson_with_a_continuation(self):
        s = self.serve()
        for i in range(30):
            s.json("POST", "/streams/" + ("hot" if i % 3 == 0 else "cold"), {"type": "Even" if i % 2 == 0 else "Odd",
                                                                              "data": i})
        status, hdrs, lines = s.lines("/streams/hot?from_version=2&to_version=5")
        self.assertEqual(status, 200)
        self.assertEqual(hdrs["Content-Type"], "application/x-ndjson")
        self.assertEqual(hdrs.get("Transfer-Encoding"), "chunked")
        events, end = lines[:-1], lines[-1]["end"]
        self.assertEqual([e["aggregate_version"] for e in events], [2, 3, 4, 5])
        self.assertEqual(end, {"count": 4, "next_version": 6})
        # Queries page with after=: the pages together are the whole result.
        seen = []
        after = None
        for _ in range(10):
            path = "/events?type=Even&limit=4" + (f"&after={after}" if after else "")
            status, _, lines = s.lines(path)
            self.assertEqual(status, 200)
            page, end = lines[:-1], lines[-1]["end"]
            self.assertEqual(end["count"], len(page))
            if not page:
                self.assertIsNone(end["after"])
                break
            seen += [e["data"] for e in page]
            after = end["after"]
            self.assertEqual(after, page[-1]["id"])
        self.assertEqual(seen, list(range(0, 30, 2)))
        status, _, lines = s.lines("/events?aggregate=hot&direction=reverse&limit=2")
        self.assertEqual([e["aggregate_version"] for e in lines[:-1]], [10, 9])
        status, _, lines = s.lines("/events?after=not-an-id")
        self.assertEqual(status, 400)
        self.assertEqual(lines[0]["error"], "invalid_argument")

    def test_a_large_result_streams_in_chunks_with_bounded_server_memory(self):
        # 20,000 events of 1 KiB (20 MB as JSON) read through one response.
        data = "x" * 1024
        lines = "".join(json.dumps({"type": "Big", "data": data}) + "\n" for _ in range(20000))
        r = tool("append", self.store, stdin=lines.encode())
        self.assertEqual(r.returncode, 0, r.stderr)
        s = self.serve()
        conn = s.connection()
        conn.request("GET", "/events?type=Big")
        resp = conn.getresponse()
        self.assertEqual(resp.status, 200)
        count = 0
        peak_rss = 0
        buffer = b""
        while True:
            piece = resp.read(1 << 20)
            if not piece:
                break
            buffer += piece
            *complete, buffer = buffer.split(b"\n")
            count += sum(1 for l in complete if l.startswith(b'{"id"'))
            with open(f"/proc/{s.proc.pid}/status") as f:
                for l in f:
                    if l.startswith("VmRSS:"):
                        peak_rss = max(peak_rss, int(l.split()[1]))
        conn.close()
        self.assertEqual(count, 20000)
        # Under AddressSanitizer (scripts/sanitize.sh sets ASAN_OPTIONS) freed
        # memory stays in its quarantine, up to 256 MiB, and ThreadSanitizer's
        # shadow memory (scripts/tsan.sh sets TSAN_OPTIONS) multiplies it: the
        # resident size then says nothing about the server's own.
        if "ASAN_OPTIONS" not in os.environ and "TSAN_OPTIONS" not in os.environ:
            self.assertLess(peak_rss, 64 * 1024, "the server's memory grew with the result (kB)")

    def test_health_metrics_and_stats(self):
        s = self.serve()
        status, _, body = s.json("GET", "/health")
        self.assertEqual(status, 200)
        self.assertEqual(body["state"], "healthy")
        self.assertTrue(body["accepts_appends"])
        del body["accepts_appends"]
        self.assertEqual(body, json.loads(tool("health", self.store).stdout))  # as the tool prints it
        s.json("POST", "/streams/x", {"type": "T"})
        status, hdrs, text = s.request("GET", "/metrics")
        self.assertEqual(status, 200)
        self.assertTrue(hdrs["Content-Type"].startswith("text/plain; version=0.0.4"))
        text = text.decode()
        self.assertIn("lighthouse_http_requests_total{route=\"/streams/{aggregate}\",status=\"201\"} 1", text)
        self.assertIn("lighthouse_http_connections_open", text)
        # One /health and one append before this scrape: each in its route's histogram.
        self.assertIn('lighthouse_http_request_duration_seconds_count{route="/health"} 1\n', text)
        self.assertIn('lighthouse_http_request_duration_seconds_bucket{route="/streams/{aggregate}",le="+Inf"} 1\n',
                      text)
        self.assertIn('lighthouse_http_request_duration_seconds_bucket{route="/health",le="10"} 1\n', text)
        self.assertIn("# TYPE", text)
        check = subprocess.run(["promtool", "check", "metrics"], input=text.encode(), capture_output=True,
                               timeout=TIMEOUT)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        status, _, stats = s.json("GET", "/stats")
        self.assertEqual(status, 200)
        self.assertEqual(stats["event_count"], 1)
        self.assertEqual(s.stop(), 0)

    def test_health_is_503_in_an_emergency_and_appends_are_refused_with_retry_after(self):
        r = tool("health", self.store, "--enter-emergency", "disk replaced")
        self.assertEqual(r.returncode, 0, r.stderr)
        s = self.serve()
        status, _, body = s.json("GET", "/health")
        self.assertEqual(status, 503, body)
        self.assertEqual(body["state"], "emergency")
        self.assertFalse(body["accepts_appends"])
        status, hdrs, body = s.json("POST", "/streams/x", {"type": "T"})
        self.assertEqual(status, 503, body)
        self.assertEqual(body["error"], "emergency")
        self.assertIn("Retry-After", hdrs)

    def test_errors_have_one_shape_and_the_right_status(self):
        s = self.serve()
        cases = [
            ("GET", "/events/not-an-id", None, 400, "invalid_argument"),
            ("GET", "/events/1700000000000000000_99_7", None, 404, "not_found"),
            ("GET", "/nowhere", None, 404, "not_found"),
            ("DELETE", "/events", None, 405, "method_not_allowed"),
            ("POST", "/streams/x", b"{not json", 400, "invalid_argument"),
            ("POST", "/streams/x", b"", 400, "invalid_argument"),
            ("POST", "/streams/x", b"[]", 400, "invalid_argument"),
            ("POST", "/streams/x", b'{"type": "T", "unknown": 1}', 400, "invalid_argument"),
            ("POST", "/streams/x", b'{"type": "T", "aggregate": "y"}', 400, "invalid_argument"),
            ("POST", "/streams/x", json.dumps({"type": "T" * 300}).encode(), 413, "limit_exceeded"),
            ("POST", "/streams/x", json.dumps({"type": "T", "data": "x" * (1 << 20 + 1)}).encode(), 413,
             "limit_exceeded"),
            ("POST", "/streams/x?dry=1", b'{"type": "T"}', 400, "invalid_argument"),
            ("GET", "/events?limit=ten", None, 400, "invalid_argument"),
            ("GET", "/events?direction=sideways", None, 400, "invalid_argument"),
            ("GET", "/events?since=yesterday", None, 400, "invalid_argument"),
            ("GET", "/streams/x?from_version=0", None, 400, "invalid_argument"),
            ("GET", "/events?limit=1&limit=2", None, 400, "invalid_argument"),
            ("GET", "/streams/%ff", None, 400, "invalid_argument"),
            ("GET", "/events/%zz", None, 400, "invalid_argument"),
            ("POST", "/streams/$reserved", b'{"type": "T"}', 400, "invalid_argument"),
        ]
        for method, path, body, status, code in cases:
            with self.subTest(method=method, path=path):
                got, _, data = s.request(method, path, body)
                self.assertEqual(got, status, data[:300])
                reply = json.loads(data)
                self.assertEqual(reply["error"], code)
                self.assertIsInstance(reply["message"], str)
                data.decode("utf-8")  # valid UTF-8
        s.stop()
        self.assertEqual(self.event_count(), 0)


class TestSecurity(ServeTestCase):
    TOKEN_READ = "reader-token-0123456789"
    TOKEN_APPEND = "writer-token-0123456789"

    def token_file(self):
        path = os.path.join(self.tmp, "tokens")
        digest = hashlib.sha256(self.TOKEN_APPEND.encode()).hexdigest()
        with open(path, "w") as f:
            f.write(f"# tokens\n{self.TOKEN_READ} read\nsha256:{digest} read,append\n")
        return path

    def test_tokens_and_scopes(self):
        s = self.serve("--token-file", self.token_file())
        status, hdrs, body = s.json("GET", "/stats")
        self.assertEqual(status, 401, body)
        self.assertIn("WWW-Authenticate", hdrs)
        self.assertEqual(s.json("GET", "/stats", headers={"Authorization": "Bearer wrong-token-0123456789"})[0], 401)
        self.assertEqual(s.json("GET", "/stats", headers={"Authorization": "Basic abc"})[0], 401)
        read = {"Authorization": "Bearer " + self.TOKEN_READ}
        write = {"Authorization": "Bearer " + self.TOKEN_APPEND}
        self.assertEqual(s.json("GET", "/stats", headers=read)[0], 200)
        status, _, body = s.json("POST", "/streams/x", {"type": "T"}, read)
        self.assertEqual(status, 403, body)
        self.assertEqual(body["error"], "forbidden")
        self.assertEqual(s.json("POST", "/streams/x", {"type": "T"}, write)[0], 201)
        s.stop()
        self.assertEqual(self.event_count(), 1)

    def test_a_non_loopback_address_needs_tokens(self):
        r = tool("serve", self.store, "--listen", "0.0.0.0:0")
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn(b"authentication", r.stderr)
        for bad in ["nowhere", "127.0.0.1:99999", "127.0.0.1:", "host.example:80"]:
            with self.subTest(listen=bad):
                r = tool("serve", self.store, "--listen", bad)
                self.assertEqual(r.returncode, 4, r.stderr)

    def test_bad_token_files_are_refused(self):
        cases = {"short": "abc read\n", "no scopes": "0123456789abcdef0123\n",
                 "bad scope": "0123456789abcdef0123 write\n", "bad digest": "sha256:abcd read\n", "empty": "# none\n"}
        for name, text in cases.items():
            with self.subTest(name):
                path = os.path.join(self.tmp, "t-" + name.replace(" ", "-"))
                with open(path, "w") as f:
                    f.write(text)
                r = tool("serve", self.store, "--token-file", path, "--listen", "127.0.0.1:0")
                self.assertEqual(r.returncode, 4, r.stderr)
                r.stderr.decode("utf-8")
        r = tool("serve", self.store, "--token-file", os.path.join(self.tmp, "missing"), "--listen", "127.0.0.1:0")
        self.assertEqual(r.returncode, 7, r.stderr)

    def test_read_only_mode(self):
        s = self.serve("--read-only")
        status, _, body = s.json("POST", "/streams/x", {"type": "T"})
        self.assertEqual(status, 403, body)
        self.assertEqual(body["error"], "read_only")
        self.assertEqual(s.json("GET", "/health")[2]["accepts_appends"], False)
        s.stop()
        self.assertEqual(self.event_count(), 0)


class TestAdmin(ServeTestCase):
    ADMIN = "admin-token-0123456789"
    WRITER = "writer-token-0123456789"

    def test_emergency_and_a_verify_job_need_the_admin_scope(self):
        path = os.path.join(self.tmp, "tokens")
        with open(path, "w") as f:
            f.write(f"{self.ADMIN} read,append,admin\n{self.WRITER} read,append\n")
        s = self.serve("--token-file", path)
        admin = {"Authorization": "Bearer " + self.ADMIN}
        writer = {"Authorization": "Bearer " + self.WRITER}
        for i in range(25):
            self.assertEqual(s.json("POST", "/streams/a", {"type": "T", "data": i}, writer)[0], 201)
        status, _, body = s.json("POST", "/admin/emergency", {"reason": "disk swap"}, writer)
        self.assertEqual(status, 403, body)
        self.assertEqual(body["error"], "forbidden")
        self.assertEqual(s.json("POST", "/admin/emergency", {"why": "x"}, admin)[0], 400)
        status, _, body = s.json("POST", "/admin/emergency", {"reason": "disk swap"}, admin)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["state"], "emergency")
        self.assertTrue(body["manual"])
        status, hdrs, body = s.json("POST", "/streams/a", {"type": "T"}, writer)
        self.assertEqual(status, 503, body)
        self.assertEqual(s.json("GET", "/health", headers=writer)[0], 503)
        status, _, body = s.json("DELETE", "/admin/emergency", None, admin)
        self.assertEqual(status, 200, body)
        self.assertEqual(body["state"], "healthy")
        self.assertEqual(s.json("POST", "/streams/a", {"type": "T"}, writer)[0], 201)
        # verify runs as a job while the server serves; its report when done.
        status, hdrs, body = s.json("POST", "/admin/verify", b"", admin)
        self.assertEqual(status, 202, body)
        job = body["job"]
        self.assertEqual(hdrs["Location"], f"/admin/jobs/{job}")
        self.assertEqual(s.json("GET", "/health", headers=writer)[0], 200)
        deadline = time.monotonic() + TIMEOUT
        while time.monotonic() < deadline:
            status, _, body = s.json("GET", f"/admin/jobs/{job}", headers=admin)
            self.assertEqual(status, 200, body)
            if body["status"] != "running":
                break
            time.sleep(0.05)
        self.assertEqual(body["status"], "done", body)
        self.assertTrue(body["report"]["ok"], body)
        # 26 appended, and the emergency's two $health events.
        self.assertEqual(body["report"]["events_checked"], 28)
        self.assertEqual(s.json("GET", "/admin/jobs/999", headers=admin)[0], 404)
        self.assertEqual(s.json("GET", f"/admin/jobs/{job}", headers=writer)[0], 403)
        self.assertEqual(s.json("GET", "/admin/verify", headers=admin)[0], 405)

    def test_a_read_only_server_verifies_but_enters_no_emergency(self):
        s = self.serve("--read-only")
        status, _, body = s.json("POST", "/admin/emergency", {"reason": "x"})
        self.assertEqual(status, 403, body)
        self.assertEqual(body["error"], "read_only")
        status, _, body = s.json("POST", "/admin/verify")
        self.assertEqual(status, 202, body)


class TestHostileInput(ServeTestCase):
    def test_malformed_and_hostile_requests_are_answered_or_closed_and_the_server_keeps_serving(self):
        s = self.serve("--max-header-bytes", "4096", "--max-body-bytes", "65536", "--request-timeout", "1")
        cases = {
            "garbage": (b"\x00\x01\x02 nonsense\r\n\r\n", 400),
            "no version": (b"GET /health\r\n\r\n", 400),
            "bad version": (b"GET /health HTTP/9.9\r\n\r\n", 400),
            "bad method": (b"G(T /health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            "relative target": (b"GET health HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            "header too large": (b"GET /health HTTP/1.1\r\nX: " + b"a" * 8000 + b"\r\n\r\n", 431),
            "many headers": (b"GET /health HTTP/1.1\r\n" + b"X-A: b\r\n" * 2000 + b"\r\n", 431),
            "bad header line": (b"GET /health HTTP/1.1\r\nno colon here\r\n\r\n", 400),
            "body too large": (b"POST /streams/x HTTP/1.1\r\nContent-Length: 100000\r\n\r\n" + b"a" * 1000, 413),
            "bad content length": (b"POST /streams/x HTTP/1.1\r\nContent-Length: ten\r\n\r\n", 400),
            "two content lengths": (b"POST /streams/x HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400),
            "bad chunk size": (b"POST /streams/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab\r\n0\r\n\r\n", 400),
            "chunk too large": (b"POST /streams/x HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n100000\r\n" + b"a" * 100
                                , 413),
            "bad percent": (b"GET /events/%G1 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            "not utf-8": (b"GET /streams/%C3%28 HTTP/1.1\r\nHost: x\r\n\r\n", 400),
            "json bomb": (b"POST /streams/x HTTP/1.1\r\nContent-Length: 1000\r\n\r\n" + b"[" * 1000, 400),
            "null in json": (post(b'{"type":"\x00"}'), 400),
            "bad utf-8 in json": (post(b'{"type":"\xff\xfe"}'), 400),
            "truncated body": (b"POST /streams/x HTTP/1.1\r\nContent-Length: 50\r\n\r\n{\"type\":", None),
            "unterminated request": (b"GET /health HTTP/1.1\r\nHost: x\r\n", None),
            "nothing": (b"", None),
            "half a request line": (b"GET /hea", None),
            "tls hello": (bytes.fromhex("16030100a5010000a10303") + b"\x00" * 50, 400),
            "websocket of an unknown version": (b"GET /subscribe HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                                b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                                b"Sec-WebSocket-Version: 12\r\n\r\n", 426),
            "websocket without a key": (b"GET /subscribe HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                        b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n", 400),
            "websocket elsewhere": (b"GET /events HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"
                                    b"Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
                                    b"Sec-WebSocket-Version: 13\r\n\r\n", 200),
            "wrong token": (b"GET /health HTTP/1.1\r\nAuthorization: Bearer x\r\n\r\n", 200),
            "huge target": (b"GET /" + b"a" * 10000 + b" HTTP/1.1\r\n\r\n", 431),
            "crlf injection in path": (b"GET /streams/a%0d%0aX:%20y HTTP/1.1\r\nHost: x\r\n\r\n", 200),
            "negative length": (b"POST /streams/x HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400),
            "pipelined with garbage": (b"GET /health HTTP/1.1\r\nHost: x\r\n\r\n\x00\x00garbage\r\n\r\n", 200),
            "http/1.0": (b"GET /health HTTP/1.0\r\n\r\n", 200),
        }
        for name, (data, status) in cases.items():
            with self.subTest(name):
                reply = raw(s, data, read_timeout=3.0)
                if status is None:
                    # Incomplete: closed after the request timeout, with no answer or a 400.
                    self.assertIn(status_of(reply), (None, 400), reply[:200])
                else:
                    self.assertEqual(status_of(reply), status, reply[:300])
                self.assertNotIn(b"\r\nX: y", reply)  # nothing the client sent becomes a header
                # And the server still serves.
                self.assertEqual(s.json("GET", "/health")[0], 200)
        self.assertEqual(s.proc.poll(), None)
        s.stop()
        self.assertEqual(self.event_count(), 0)

    def test_a_slowloris_connection_is_closed_and_others_are_served_meanwhile(self):
        s = self.serve("--request-timeout", "1")
        sock = socket.create_connection((s.host, s.port), timeout=10)
        sock.sendall(b"GET /health HTTP/1.1\r\n")
        start = time.monotonic()
        self.assertEqual(s.json("GET", "/health")[0], 200)
        closed = False
        while time.monotonic() - start < 8:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
            except OSError:
                closed = True
                break
            time.sleep(0.2)
            try:
                sock.settimeout(0.01)
                if sock.recv(1) == b"":
                    closed = True
                    break
            except socket.timeout:
                pass
            except OSError:
                closed = True
                break
        sock.close()
        self.assertTrue(closed, "the slow connection was not closed")
        self.assertLess(time.monotonic() - start, 5)

    def test_connections_over_the_maximum_are_refused_with_503(self):
        s = self.serve("--max-connections", "2", "--request-timeout", "5")
        held = [socket.create_connection((s.host, s.port), timeout=10) for _ in range(2)]
        time.sleep(0.2)
        reply = raw(s, b"GET /health HTTP/1.1\r\n\r\n", read_timeout=3)
        self.assertEqual(status_of(reply), 503, reply[:200])
        self.assertIn(b"Retry-After", reply)
        for h in held:
            h.close()
        for _ in range(50):
            time.sleep(0.05)
            if status_of(raw(s, b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")) == 200:
                break
        self.assertEqual(status_of(raw(s, b"GET /health HTTP/1.1\r\nConnection: close\r\n\r\n")), 200)


class TestLifecycle(ServeTestCase):
    def append_until_stopped(self, s, acked, stop):
        while not stop.is_set():
            try:
                status, _, body = s.json("POST", "/streams/k", {"type": "T", "data": len(acked)})
            except (OSError, http.client.HTTPException, ValueError):
                return
            if status == 201:
                acked.extend(e["id"] for e in body["events"])

    def appends_then(self, sig):
        """Four clients append until the server gets `sig` after a second;
        returns the IDs it acknowledged and its exit code."""
        s = self.serve()
        acked, stop = [], threading.Event()
        threads = [threading.Thread(target=self.append_until_stopped, args=(s, acked, stop)) for _ in range(4)]
        for t in threads:
            t.start()
        time.sleep(1.0)
        rc = s.stop(sig)
        stop.set()
        for t in threads:
            t.join(TIMEOUT)
        self.assertGreater(len(acked), 0)
        r = tool("verify", self.store)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        return acked, rc

    def test_sigterm_finishes_in_flight_appends_closes_the_store_and_exits_0(self):
        acked, rc = self.appends_then(signal.SIGTERM)
        self.assertEqual(rc, 0)
        for event_id in acked[-20:]:
            self.assertEqual(tool("get", self.store, event_id).returncode, 0)
        self.assertGreaterEqual(self.event_count(), len(acked))

    def test_sigkill_during_appends_loses_no_acknowledged_event(self):
        acked, _ = self.appends_then(signal.SIGKILL)
        ids = set(json.loads(l)["id"] for l in tool("query", self.store).stdout.decode().splitlines())
        missing = [i for i in acked if i not in ids]
        self.assertEqual(missing, [])

    def test_curl_drives_it_too(self):
        if shutil.which("curl") is None:
            self.skipTest("no curl")
        s = self.serve()
        url = f"http://{s.address}"
        r = subprocess.run(["curl", "-sS", "-X", "POST", "-H", "Content-Type: application/json", "-d",
                            '{"type": "Curled", "data": {"ok": true}}', "-w", "\n%{http_code}", url + "/streams/c"],
                           capture_output=True, timeout=TIMEOUT)
        body, code = r.stdout.decode().rsplit("\n", 1)
        self.assertEqual(code, "201", r.stderr)
        event_id = json.loads(body)["events"][0]["id"]
        r = subprocess.run(["curl", "-sS", "-N", url + "/streams/c"], capture_output=True, timeout=TIMEOUT)
        lines = [json.loads(l) for l in r.stdout.decode().splitlines()]
        self.assertEqual(lines[0]["id"], event_id)
        self.assertEqual(lines[-1]["end"]["count"], 1)


if __name__ == "__main__":
    unittest.main(verbosity=2)
