"""A three-node NATS JetStream cluster of `nats-server` processes on loopback
ports, in a temporary directory, for the replication tests and benchmarks
(docs/replication.md). Started and stopped by its user; every wait bounded.

    with NatsCluster() as cluster:
        cluster.urls          # "nats://127.0.0.1:P1,nats://127.0.0.1:P2,..."
        cluster.kill(i)       # SIGKILL of node i
        cluster.start(i)      # start node i again (same ports and store)
        cluster.stream_leader("NAME")  # index of the stream's leader node
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request

NATS_SERVER = shutil.which("nats-server") or "/usr/sbin/nats-server"


def free_ports(n):
    socks, ports = [], []
    for _ in range(n):
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        socks.append(s)
        ports.append(s.getsockname()[1])
    for s in socks:
        s.close()
    return ports


class NatsCluster:
    def __init__(self, nodes=3, max_payload=8 * 1024 * 1024):
        self.dir = tempfile.mkdtemp(prefix="lh-nats-")
        self.n = nodes
        ports = free_ports(3 * nodes)
        self.client = ports[0:nodes]
        self.route = ports[nodes:2 * nodes]
        self.http = ports[2 * nodes:3 * nodes]
        self.max_payload = max_payload
        self.procs = [None] * nodes
        for i in range(nodes):
            self._write_config(i)

    @property
    def urls(self):
        return ",".join(f"nats://127.0.0.1:{p}" for p in self.client)

    def url(self, i):
        return f"nats://127.0.0.1:{self.client[i]}"

    def _write_config(self, i):
        routes = ", ".join(f"nats-route://127.0.0.1:{p}" for j, p in enumerate(self.route) if j != i)
        store = os.path.join(self.dir, f"n{i}")
        cluster = (f"cluster {{\n  name: lh\n  listen: 127.0.0.1:{self.route[i]}\n  routes: [{routes}]\n}}\n"
                   if self.n > 1 else "")
        with open(os.path.join(self.dir, f"n{i}.conf"), "w") as f:
            f.write(f"server_name: n{i}\nlisten: 127.0.0.1:{self.client[i]}\n"
                    f"http: 127.0.0.1:{self.http[i]}\nmax_payload: {self.max_payload}\n"
                    f"jetstream {{\n  store_dir: \"{store}\"\n  max_memory_store: 64MB\n  max_file_store: 4GB\n}}\n"
                    + cluster)

    def start(self, i, wait=True):
        with open(os.path.join(self.dir, f"n{i}.log"), "ab") as log:
            self.procs[i] = subprocess.Popen([NATS_SERVER, "-c", os.path.join(self.dir, f"n{i}.conf")],
                                             stdout=log, stderr=log)
        if wait:
            self.wait_ready([i])

    def kill(self, i):
        p = self.procs[i]
        if p and p.poll() is None:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=10)
        self.procs[i] = None

    def stop(self, i):
        p = self.procs[i]
        if p and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=10)
        self.procs[i] = None

    def jsz(self, i, query=""):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.http[i]}/jsz{query}", timeout=2) as r:
            return json.loads(r.read())

    def wait_ready(self, nodes=None, timeout=30):
        """Until each node answers and sees a JetStream meta leader."""
        deadline = time.monotonic() + timeout
        for i in nodes if nodes is not None else range(self.n):
            while True:
                try:
                    j = self.jsz(i)
                    if self.n == 1 or (j.get("meta_cluster") or {}).get("leader"):
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise AssertionError(f"nats node {i} not ready: see {self.dir}/n{i}.log")
                time.sleep(0.1)

    def stream_info(self, name, timeout=10):
        """The stream's state as its leader reports it (a follower that was
        just restarted may be behind), or None when no node knows the stream."""
        deadline = time.monotonic() + timeout
        while True:
            seen = None
            for i in range(self.n):
                if not self.procs[i]:
                    continue
                try:
                    j = self.jsz(i, "?streams=true")
                except OSError:
                    continue
                for acc in j.get("account_details", []):
                    for s in acc.get("stream_detail", []):
                        if s["name"] != name:
                            continue
                        seen = s
                        if self.n == 1 or (s.get("cluster") or {}).get("leader") == f"n{i}":
                            return s
            if seen is None or time.monotonic() > deadline:
                return seen
            time.sleep(0.1)

    def wait_stream_on_every_node(self, name, last_seq, timeout=60):
        """Until every live node holds the stream up to `last_seq` (a restarted
        node has caught up)."""
        deadline = time.monotonic() + timeout
        while True:
            behind = []
            for i in range(self.n):
                if not self.procs[i]:
                    continue
                try:
                    details = [s for acc in self.jsz(i, "?streams=true").get("account_details", [])
                               for s in acc.get("stream_detail", []) if s["name"] == name]
                except OSError:
                    details = []
                if not details or details[0]["state"]["last_seq"] != last_seq:
                    behind.append(i)
            if not behind:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"nodes {behind} did not catch up on stream {name}")
            time.sleep(0.1)

    def stream_leader(self, name, timeout=20):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            s = self.stream_info(name)
            leader = ((s or {}).get("cluster") or {}).get("leader")
            if leader:
                return int(leader[1:])
            time.sleep(0.1)
        raise AssertionError(f"stream {name} has no leader")

    def __enter__(self):
        for i in range(self.n):
            self.start(i, wait=False)
        self.wait_ready()
        return self

    def close(self):
        for i in range(self.n):
            self.stop(i)
        shutil.rmtree(self.dir, ignore_errors=True)

    def __exit__(self, *exc):
        self.close()


def publish_raw(url, subject, payload, timeout=5):
    """A plain NATS publish (the protocol's PUB), from nobody's client library:
    what a stranger writing to the stream's subject does."""
    host, port = url.replace("nats://", "").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=timeout) as s:
        f = s.makefile("rb")
        f.readline()  # INFO
        s.sendall(b'CONNECT {"verbose":false,"pedantic":false}\r\n')
        s.sendall(b"PUB %s %d\r\n%s\r\nPING\r\n" % (subject.encode(), len(payload), payload))
        while True:
            line = f.readline()
            if not line or line.startswith(b"PONG"):
                return
            if line.startswith(b"-ERR"):
                raise AssertionError(line.decode())
