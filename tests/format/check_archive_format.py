#!/usr/bin/python3
"""Archive checks with stock tools and real processes.

1. Reads an export with Python's gzip and msgpack (Debian's python3-msgpack),
   recomputing every record's checksum and chain from docs/archive-format.md
   and docs/formats.md, and every segment's SHA-256 from the manifest.
2. A full disk while a segment is written (an LD_PRELOAD shim fails write()
   with ENOSPC): the export fails clearly and the archive stays valid.
3. Exports killed with SIGKILL at random moments: the archive always
   verifies, and the next export continues without duplicates or gaps.

Usage: check_archive_format.py LIGHTHOUSE_TOOL FAULT_SHIM"""
import gzip
import hashlib
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lighthouse_format import (chain_next, checksum_v1, checksum_v2, content_hash,  # noqa: E402
                               event_key, extras_hash)

TOOL, SHIM = sys.argv[1], sys.argv[2]


def check(condition, detail="check failed"):
    """Like assert, but not turned off by python3 -O (PYTHONOPTIMIZE)."""
    if not condition:
        raise AssertionError(detail)


def run(*args, stdin=None, env=None):
    return subprocess.run([TOOL, *args], input=stdin, capture_output=True, timeout=300,
                          env=None if env is None else {**os.environ, **env})


def append(store, n, start=0):
    lines = []
    for i in range(start, start + n):
        kind = i % 3
        line = {"type": f"T{i % 4}", "aggregate": f"agg-{i % 23}", "metadata": {"i": str(i), "k": "v"}}
        if kind == 0:
            line["data"] = {"n": i, "text": "é" * (i % 5)}
        elif kind == 1:
            line["content_type"] = "json"
            line["data"] = [i, "x"]
        else:
            line["content_type"] = "bytes"
            line["data_base64"] = "AAECAwQF"
        if i % 11 == 0:
            line["idempotency_key"] = f"k-{i}"
        if i % 7 == 0:
            line["schema_version"] = 1 + i % 5
        if i % 13 == 0:
            line["trace_context"] = {"traceparent": f"00-{i + 1:032x}-{i + 7:016x}-01",
                                     "tracestate": "" if i % 2 else f"lh={i}"}
        lines.append(json.dumps(line))
    result = run("append", store, stdin=("\n".join(lines) + "\n").encode())
    check(result.returncode == 0, result.stderr)


def record_checksum(rec):
    """The checksum of an archive record, by its record format (the manifest's version)."""
    if rec.get("record_format", 1) == 1:
        return checksum_v1(rec["id"], rec["type"], rec["aggregate"], rec["aggregate_version"],
                           rec["content_type"], rec["metadata"], rec["data"])
    key = event_key(rec["timestamp_ns"], rec["sequence"], rec["node_id"])
    content = content_hash(rec["type"], rec["aggregate"], rec["content_type"], rec["metadata"], rec["data"])
    return checksum_v2(key, content, extras_hash(rec["idempotency_key"], rec["trace_context"]),
                       rec["aggregate_version"], rec["schema_version"])


def read_archive(archive):
    with open(os.path.join(archive, "manifest.json"), encoding="utf-8") as f:
        manifest = json.load(f)
    chain = bytes(32)
    sequence = 0
    records = []
    for seg in manifest["segments"]:
        path = os.path.join(archive, seg["file"])
        with open(path, "rb") as f:
            raw = f.read()
        check(hashlib.sha256(raw).hexdigest() == seg["sha256"], seg["file"])
        check(len(raw) == seg["compressed_bytes"])
        data = gzip.decompress(raw)  # several gzip members read as one stream
        check(len(data) == seg["record_bytes"])
        pos, count = 0, 0
        while pos < len(data):
            n = int.from_bytes(data[pos:pos + 4], "big")
            check(n <= manifest["max_record_bytes"])
            rec = msgpack.unpackb(data[pos + 4:pos + 4 + n], raw=False)
            pos += 4 + n
            check(rec["id"] == f'{rec["timestamp_ns"]}_{rec["sequence"]}_{rec["node_id"]}')
            check(rec["sequence"] == sequence + 1, "sequence gap")
            sequence = rec["sequence"]
            check(rec.get("record_format", 1) == manifest["version"], "record format and archive version")
            checksum = record_checksum(rec)
            check(checksum == rec["checksum"], f"checksum of {rec['id']}")
            chain = chain_next(chain, checksum)
            check(chain == rec["chain"], f"chain at {rec['id']}")
            records.append(rec)
            count += 1
        check(count == seg["count"])
        check(records[-1]["id"] == seg["last_id"] and chain.hex() == seg["chain"])
    check(manifest["checkpoint"]["last_sequence"] == sequence)
    return manifest, records


def manifest_checkpoint(archive):
    with open(os.path.join(archive, "manifest.json"), encoding="utf-8") as f:
        return json.load(f)["checkpoint"]["last_sequence"]


def unlisted_files(archive):
    """Segment files (temporary or whole) that the manifest does not name."""
    with open(os.path.join(archive, "manifest.json"), encoding="utf-8") as f:
        listed = {seg["file"] for seg in json.load(f)["segments"]}
    return [n for n in os.listdir(archive)
            if n not in listed and n != "manifest.json" and (n.startswith(".tmp-") or n.endswith(".gz"))]


def main():
    with tempfile.TemporaryDirectory() as tmp:
        store, archive = os.path.join(tmp, "store"), os.path.join(tmp, "archive")
        check(run("init", store).returncode == 0)
        append(store, 3000)
        r = run("export", store, archive, "--segment-size", "20000")
        check(r.returncode == 0, r.stderr)
        manifest, records = read_archive(archive)
        check(len(records) == 3000 and len(manifest["segments"]) > 5)
        print(f"stock tools: {len(records)} records in {len(manifest['segments'])} segments check out")

        # A full disk while a segment is written.
        append(store, 500, 3000)
        before = open(os.path.join(archive, "manifest.json"), "rb").read()
        r = run("export", store, archive, "--segment-size", "20000",
                env={"LD_PRELOAD": SHIM, "LH_FAULT_CALL": "write", "LH_FAULT_PATH": ".tmp-",
                     "LH_FAULT_AFTER": "2", "LH_FAULT_ERRNO": "28",
                     "ASAN_OPTIONS": "verify_asan_link_order=0"})
        check(r.returncode == 1, (r.returncode, r.stderr))
        check(b"no space left on device" in r.stderr, r.stderr)
        check(open(os.path.join(archive, "manifest.json"), "rb").read() == before)
        v = run("archive", "verify", archive)
        check(v.returncode == 0, v.stdout)
        print("full disk: export failed clearly, archive unchanged and valid")

        # SIGKILL at random moments inside exports. Between two kills an
        # export runs to its end, so that each kill lands on an archive that
        # moved on; a kill counts only when it landed inside the export's
        # work (it left segment files the manifest does not name).
        seed = int(os.environ.get("LIGHTHOUSE_TEST_SEED", random.randrange(1 << 30)))
        rng = random.Random(seed)
        total, inside, completed, delay = 3500, 0, 0, 0.15
        checkpoints = []  # the manifest's checkpoint at each kill that landed inside
        for attempt in range(40):
            if inside >= 6:
                break
            if attempt > 0:
                r = run("export", store, archive, "--segment-size", "4096")
                check(r.returncode == 0, r.stderr)
                completed += 1
                check(manifest_checkpoint(archive) == total, "a completed export did not reach the end")
            at = manifest_checkpoint(archive)
            append(store, 2500, total)
            total += 2500
            p = subprocess.Popen([TOOL, "export", store, archive, "--segment-size", "4096", "--level", "9"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.3, 1.0) * delay)
            p.kill()
            p.wait()
            if p.returncode >= 0:
                delay /= 2  # the export was over before the kill: kill sooner
            else:
                check(manifest_checkpoint(archive) == at, "a killed export changed the manifest")
                if unlisted_files(archive):
                    inside += 1
                    checkpoints.append(at)
                else:
                    delay *= 2  # killed before it wrote a segment: kill later
            v = run("archive", "verify", archive)
            check(v.returncode == 0, v.stdout.decode())
        check(inside >= 6, f"only {inside} kills landed inside an export (seed {seed})")
        check(all(b > a for a, b in zip(checkpoints, checkpoints[1:])),
              f"the manifest did not move on between kills: {checkpoints} (seed {seed})")
        r = run("export", store, archive, "--segment-size", "4096")
        check(r.returncode == 0, r.stderr)
        manifest, records = read_archive(archive)
        check([rec["sequence"] for rec in records] == list(range(1, total + 1)))
        v = run("archive", "verify", archive)
        check(v.returncode == 0 and b"0 leftovers" in v.stdout, v.stdout)
        copy = os.path.join(tmp, "copy")
        r = run("import", archive, copy)
        check(r.returncode == 0, r.stderr)
        check(run("verify", copy).returncode == 0)
        stats = json.loads(run("stats", copy).stdout)
        check(stats["event_count"] == total, (stats, total))
        print(f"{inside} exports killed inside their work ({completed} completed between them, "
              f"seed {seed}): the archive always verified; the last export completed it without "
              f"duplicates or gaps")


main()
