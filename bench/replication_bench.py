#!/usr/bin/env python3
"""Replication figures (docs/performance.md, "Replication"), against a
three-node JetStream cluster on loopback started here (tests/tool/nats_cluster.py):

  1. replication throughput: `lighthouse replicate --until-caught-up` of N
     events already in the store (pipelined publishes), events/s;
  2. catch-up of a new replica from the stream: `lighthouse replica
     --until-caught-up` of the same N events, events/s;
  3. replica lag at a steady append rate (default 10,000 events/s): an
     appender feeds `lighthouse append` at that rate for D seconds while
     `replicate` and `replica` follow; every ~70 ms the lag is the primary's
     last sequence (`lighthouse stats`) less the replica's last applied (its
     status line 60 ms later), p50/p99 in events and in ms at that rate.

  4. quorum-mode append latency against local durable appends: `lighthouse
     serve` on a fresh store, without replication, with `--mode async` and
     with `--mode quorum`; one client appends one event per request on a
     keep-alive connection (--appends of them), p50/p99/mean per append,
     and 8 clients at once (events/s).

Whole processes are timed (start-up included, about 10 ms). Usage:
  bench/replication_bench.py [--events N] [--rate R] [--seconds D] [--appends K] [--only-quorum]
with LIGHTHOUSE_TOOL pointing at the tool (default build/tools/lighthouse).
"""

import argparse
import http.client
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "tool"))
from nats_cluster import NatsCluster  # noqa: E402
from test_serve import Server  # noqa: E402

TOOL = os.environ.get("LIGHTHOUSE_TOOL", os.path.join(HERE, "..", "build", "tools", "lighthouse"))


def lines(n, start=0):
    return "".join(json.dumps({"type": "order.placed", "aggregate": f"order-{i % 1000}",
                               "data": {"i": i, "sku": "A-1", "qty": 1}}) + "\n"
                   for i in range(start, start + n)).encode()


def run(*args, stdin=b""):
    r = subprocess.run([TOOL, *args], input=stdin, capture_output=True, timeout=3600)
    if r.returncode != 0:
        raise SystemExit(f"{args[0]} failed: {r.stderr.decode()}")
    return r.stdout


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p / 100 * len(values)))]


def post_latencies(server, n, tag):
    """n appends of one event each on one keep-alive connection: seconds each."""
    conn = http.client.HTTPConnection(server.host, server.port, timeout=60)
    out = []
    body = json.dumps({"type": "payment.taken", "data": {"amount": 1}}).encode()
    for i in range(n):
        t = time.perf_counter()
        conn.request("POST", f"/streams/{tag}-{i % 100}", body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        r.read()
        if r.status != 201:
            raise SystemExit(f"append answered {r.status}")
        out.append(time.perf_counter() - t)
    conn.close()
    return out


def concurrent_rate(server, clients, n, tag):
    threads = [threading.Thread(target=post_latencies, args=(server, n, f"{tag}{c}")) for c in range(clients)]
    t = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    return clients * n / (time.monotonic() - t)


def quorum_latency(cluster, work, appends):
    rows = []
    for name, args in (("local durable (no replication)", []),
                       ("async replication", ["--nats", cluster.urls, "--stream", "lat-async", "--mode", "async"]),
                       ("quorum replication", ["--nats", cluster.urls, "--stream", "lat-quorum", "--mode", "quorum"])):
        store = os.path.join(work, "lat-" + name.split()[0])
        run("init", store)
        server = Server(store, *args)
        try:
            post_latencies(server, 100, "warm")
            lat = post_latencies(server, appends, "one")
            rate = concurrent_rate(server, 8, appends // 8, "many")
        finally:
            server.stop()
        rows.append((name, percentile(lat, 50), percentile(lat, 99), sum(lat) / len(lat), rate))
    base = rows[0]
    for name, p50, p99, mean, rate in rows:
        print(f"append latency, {name}: p50 {p50 * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, mean {mean * 1000:.2f} ms "
              f"({mean / base[3]:.2f}x local); 8 clients: {rate:,.0f} appends/s ({rate / base[4]:.2f}x local)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rate", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--appends", type=int, default=2000)
    ap.add_argument("--only-quorum", action="store_true", help="only the quorum latency figures (4)")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="lh-replbench-")
    try:
        with NatsCluster() as cluster:
            quorum_latency(cluster, work, a.appends)
            if a.only_quorum:
                return
            primary = os.path.join(work, "p")
            run("init", primary)
            for start in range(0, a.events, 100_000):
                run("append", primary, stdin=lines(min(100_000, a.events - start), start))
            t = time.monotonic()
            out = run("replicate", primary, "--nats", cluster.urls, "--stream", "bench", "--until-caught-up",
                      "--status-interval", "0")
            dt = time.monotonic() - t
            confirmed = json.loads(out.decode().splitlines()[-1])["confirmed"]
            print(f"replication: {confirmed} events in {dt:.2f} s = {confirmed / dt:,.0f} events/s")
            t = time.monotonic()
            out = run("replica", os.path.join(work, "r"), "--nats", cluster.urls, "--stream", "bench",
                      "--until-caught-up", "--status-interval", "0")
            dt = time.monotonic() - t
            applied = json.loads(out.decode().splitlines()[-1])["applied"]
            print(f"replica catch-up: {applied} events in {dt:.2f} s = {applied / dt:,.0f} events/s")

            # Lag at a steady rate.
            replicator = subprocess.Popen([TOOL, "replicate", primary, "--nats", cluster.urls, "--stream", "bench",
                                           "--status-interval", "0"], stdout=subprocess.DEVNULL)
            follower = subprocess.Popen([TOOL, "replica", os.path.join(work, "r"), "--nats", cluster.urls,
                                         "--stream", "bench", "--status-interval", "0.05"], stdout=subprocess.PIPE)
            samples = []  # (primary's last sequence - replica's applied) in events
            done = threading.Event()
            latest = {"applied": 0}

            def read_status():
                for line in follower.stdout:
                    latest["applied"] = json.loads(line)["applied"]

            def sample():
                # The primary's last sequence (a `stats` process, ~10 ms), then
                # the replica's last applied as of then or later: the lag is
                # never over-stated by the time `stats` takes.
                while not done.is_set():
                    last = json.loads(run("stats", primary))["last_sequence"]
                    time.sleep(0.06)  # one status line of the replica later
                    samples.append(max(0, last - latest["applied"]))

            reader = threading.Thread(target=read_status)
            reader.start()
            sampler = threading.Thread(target=sample)
            appender = subprocess.Popen([TOOL, "append", primary], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL)
            per_tick, tick = a.rate // 100, 0.01
            t0 = time.monotonic()
            sampler.start()
            sent = 0
            while time.monotonic() - t0 < a.seconds:
                appender.stdin.write(lines(per_tick, a.events + sent))
                appender.stdin.flush()
                sent += per_tick
                next_at = t0 + (sent / per_tick) * tick
                time.sleep(max(0, next_at - time.monotonic()))
            done.set()
            sampler.join(timeout=30)
            appended = json.loads(run("stats", primary))["last_sequence"] - a.events
            appender.stdin.close()
            appender.wait(timeout=60)
            for p in (replicator, follower):
                p.terminate()
                p.wait(timeout=30)
            reader.join(timeout=10)
            steady = samples[len(samples) // 10:]  # the first tenth: start-up
            p50, p99 = percentile(steady, 50), percentile(steady, 99)
            print(f"appended {appended} of {sent} events handed to `lighthouse append` in {a.seconds:.0f} s "
                  f"({appended / a.seconds:,.0f} events/s)")
            print(f"replica lag behind the primary at {a.rate:,} events/s for {a.seconds:.0f} s ({len(steady)} samples): "
                  f"p50 {p50} events ({p50 / a.rate * 1000:.1f} ms), p99 {p99} events ({p99 / a.rate * 1000:.1f} ms)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
