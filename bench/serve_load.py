#!/usr/bin/env python3
"""Load on `lighthouse serve`, against the in-process store in the same run
(docs/performance.md, "The server").

  ninja -C build benchmarks && python3 bench/serve_load.py [--seconds 5] [--json out.json]

- In process (Google Benchmark, the same binaries as bench/): durable appends
  of batches of 1 and 100 from one thread (append_bench), single appends from
  16 threads (group_commit_bench), a get by ID (query_bench).
- Over HTTP with wrk: GET /events/{id} (16 connections), POST /streams/{agg}
  single events (16 connections), POST /events batches of 100 (1 connection,
  the in-process peer's shape, and 4).
- Subscription fan-out with clients/node/fanout.mjs: 100 WebSocket
  subscribers on a stream of 1,000 events/s and more, delivery latency p50 and
  p99 (the highest rate whose p99 stays under 50 ms), and the server's
  resident memory, sampled each second, while one more subscriber stalls.

Everything shares this machine's cores with the server: the load clients
(wrk, Node.js) are not free. The stores live in --dir (default: a temporary
directory on /tmp's disk).
"""

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVENT = {"type": "OrderPlaced", "data": {"payload": "x" * 240}}  # about the 256 bytes of the in-process events


def benchmark(binary, pattern, bench_dir):
    out = subprocess.run([binary, f"--benchmark_filter={pattern}", "--benchmark_format=json"],
                         capture_output=True, text=True, timeout=600, env={**os.environ, "LIGHTHOUSE_BENCH_DIR": bench_dir})
    if out.returncode != 0:
        sys.exit(f"{binary} failed: {out.stderr}")
    return {b["name"]: b for b in json.loads(out.stdout)["benchmarks"]}


class Server:
    def __init__(self, tool, store, *args):
        self.proc = subprocess.Popen([tool, "serve", store, "--listen", "127.0.0.1:0", *args],
                                     stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        self.address = json.loads(self.proc.stdout.readline())["listening"]

    def post(self, path, body):
        req = urllib.request.Request(f"http://{self.address}{path}", data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=30) as r:
            return json.load(r)

    def rss_kib(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            return int(re.search(r"RssAnon:\s+(\d+)", f.read()).group(1))  # the heap, not the mapped store

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)


def wrk(url, connections, seconds, script=None):
    args = ["wrk", f"-t{min(2, connections)}", f"-c{connections}", f"-d{seconds}s", "--latency", url]
    if script:
        args[1:1] = ["-s", script]
    run = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 60)
    out = run.stdout
    if run.returncode != 0 or "Requests/sec" not in out:
        sys.exit(f"wrk failed: {run.stderr}{out}")
    if "Non-2xx" in out or "Socket errors" in out:
        sys.exit(f"wrk saw errors:\n{out}")
    unit = {"us": 1e-3, "ms": 1.0, "s": 1e3}
    latency = {p: float(v) * unit[u] for p, v, u in re.findall(r"^\s+(50|99)%\s+([\d.]+)(us|ms|s)$", out, re.M)}
    return {"requests_per_s": float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)),
            "p50_ms": latency["50"], "p99_ms": latency["99"]}


def post_script(directory, name, body):
    path = os.path.join(directory, name + ".lua")
    with open(path, "w") as f:
        f.write('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                f"wrk.body = [==[{json.dumps(body)}]==]\n")
    return path


def fanout(server, subscribers, rate, seconds, stalled=False):
    args = ["node", os.path.join(ROOT, "clients", "node", "fanout.mjs"), server.address, str(subscribers), str(rate),
            str(seconds)] + (["--stalled"] if stalled else [])
    samples = []
    done = threading.Event()

    def sample():
        while not done.wait(1.0):
            samples.append(server.rss_kib())
    sampler = threading.Thread(target=sample)
    sampler.start()
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=seconds + 120)
    finally:
        done.set()
        sampler.join()
    if out.returncode != 0:
        sys.exit(f"fanout.mjs failed: {out.stderr}")
    result = json.loads(out.stdout)
    result["rss_kib"] = samples
    return result


def measure_round(a, bench, work, server, ids, single, batch):
    inproc = benchmark(os.path.join(bench, "append_bench"), r"BM_AppendBatch_Sync/(1|100)/", work)
    inproc.update(benchmark(os.path.join(bench, "group_commit_bench"), r"BM_DurableAppend_Threads/.*threads:16$", work))
    inproc.update(benchmark(os.path.join(bench, "query_bench"), r"BM_SeekById$", work))
    pick = lambda prefix: next(v for k, v in inproc.items() if k.startswith(prefix))
    seek = inproc["BM_SeekById"]
    local = {
        "batch_1_events_per_s": pick("BM_AppendBatch_Sync/1/")["items_per_second"],
        "batch_100_events_per_s": pick("BM_AppendBatch_Sync/100/")["items_per_second"],
        "single_16_threads_events_per_s": pick("BM_DurableAppend_Threads")["items_per_second"],
        "get_by_id_us": seek["real_time"] / (1000.0 if seek["time_unit"] == "ns" else 1.0),
    }
    url = f"http://{server.address}"
    http = {
        "get_by_id_c16": wrk(f"{url}/events/{ids[len(ids) // 2]}", 16, a.seconds),
        "append_single_c16": wrk(f"{url}/streams/order-1", 16, a.seconds, single),
        "append_batch100_c1": wrk(f"{url}/events", 1, a.seconds, batch),
        "append_batch100_c4": wrk(f"{url}/events", 4, a.seconds, batch),
    }
    for name in ["append_batch100_c1", "append_batch100_c4"]:
        http[name]["events_per_s"] = http[name]["requests_per_s"] * 100
    http["append_single_c16"]["events_per_s"] = http["append_single_c16"]["requests_per_s"]
    return {"in_process": local, "http": http, "ratios": {
        "batch100_http_c1_over_in_process": http["append_batch100_c1"]["events_per_s"] / local["batch_100_events_per_s"],
        "batch100_http_c4_over_in_process": http["append_batch100_c4"]["events_per_s"] / local["batch_100_events_per_s"],
        "single_http_c16_over_in_process_16_threads":
            http["append_single_c16"]["events_per_s"] / local["single_16_threads_events_per_s"],
    }}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--build", default=os.path.join(ROOT, "build"))
    p.add_argument("--seconds", type=int, default=5, help="seconds per measurement (default 5)")
    p.add_argument("--repeat", type=int, default=3, help="rounds of the append and read figures (default 3)")
    p.add_argument("--stall-seconds", type=int, default=40, help="the stalled-subscriber run (default 40)")
    p.add_argument("--dir", default=None, help="where the stores live (default: a temporary directory)")
    p.add_argument("--json", help="write the figures here")
    a = p.parse_args()
    for need in ["wrk", "node"]:
        if not shutil.which(need):
            sys.exit(f"{need} is missing: bash scripts/install-deps.sh installs it")
    if not os.path.isdir(os.path.join(ROOT, "clients", "node", "node_modules", "ws")):
        sys.exit("clients/node has no node_modules: bash scripts/install-deps.sh installs them")
    bench = os.path.join(a.build, "bench")
    if not os.path.exists(os.path.join(bench, "append_bench")):
        sys.exit(f"no {bench}/append_bench: run `ninja -C {a.build} benchmarks` first")
    tool = os.path.join(a.build, "tools", "lighthouse")
    work = tempfile.mkdtemp(prefix="lighthouse-serve-load-", dir=a.dir)
    figures = {"machine": f"{os.cpu_count()} cores, shared by the server and its load clients"}
    try:
        store = os.path.join(work, "store")
        subprocess.run([tool, "init", store], check=True, capture_output=True)
        server = Server(tool, store)
        try:
            ids = []
            for _ in range(100):
                ids += [e["id"] for e in server.post("/events", [EVENT] * 100)["events"]]
            single = post_script(work, "single", EVENT)
            # As the in-process peer's: each event of a batch in an aggregate of its own.
            batch = post_script(work, "batch", [{**EVENT, "aggregate": f"agg-{i}"} for i in range(100)])
            # Rounds that alternate the peers, so that a disk's slow spell
            # falls on both; the figures are each one's median.
            rounds = []
            for _ in range(a.repeat):
                rounds.append(measure_round(a, bench, work, server, ids, single, batch))
                print(json.dumps(rounds[-1]), file=sys.stderr)
            figures["rounds"] = rounds
            median = lambda xs: sorted(xs)[len(xs) // 2]
            figures["ratios"] = {name: median([r["ratios"][name] for r in rounds]) for name in rounds[0]["ratios"]}
            runs = []
            for rate in [1000, 1500, 2000, 3000, 4000]:
                r = fanout(server, 100, rate, a.seconds)
                runs.append(r)
                print(json.dumps(r), file=sys.stderr)
                if r["p99_ms"] is None or r["p99_ms"] >= 50 or r["lost"] != 0:
                    break
            figures["fanout_100"] = runs
            ok = [r["rate"] for r in runs if r["p99_ms"] is not None and r["p99_ms"] < 50 and r["lost"] == 0]
            figures["fanout_highest_rate_p99_under_50ms"] = max(ok) if ok else None
            figures["fanout_stalled"] = fanout(server, 100, 1000, a.stall_seconds, stalled=True)
        finally:
            server.stop()
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(json.dumps(figures, indent=2))
    if a.json:
        with open(a.json, "w") as f:
            json.dump(figures, f, indent=2)


if __name__ == "__main__":
    main()
