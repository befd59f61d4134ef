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

TOOL, SHIM = sys.argv[1], sys.argv[2]


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
        lines.append(json.dumps(line))
    result = run("append", store, stdin=("\n".join(lines) + "\n").encode())
    assert result.returncode == 0, result.stderr


def canonical(rec):
    return msgpack.packb([rec["id"], rec["type"], rec["aggregate"], rec["aggregate_version"],
                          rec["content_type"], dict(sorted(rec["metadata"].items())), rec["data"]],
                         use_bin_type=True)


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
        assert hashlib.sha256(raw).hexdigest() == seg["sha256"], seg["file"]
        assert len(raw) == seg["compressed_bytes"]
        data = gzip.decompress(raw)  # several gzip members read as one stream
        assert len(data) == seg["record_bytes"]
        pos, count = 0, 0
        while pos < len(data):
            n = int.from_bytes(data[pos:pos + 4], "big")
            assert n <= manifest["max_record_bytes"]
            rec = msgpack.unpackb(data[pos + 4:pos + 4 + n], raw=False)
            pos += 4 + n
            assert rec["id"] == f'{rec["timestamp_ns"]}_{rec["sequence"]}_{rec["node_id"]}'
            assert rec["sequence"] == sequence + 1, "sequence gap"
            sequence = rec["sequence"]
            checksum = hashlib.sha256(canonical(rec)).digest()
            assert checksum == rec["checksum"], f"checksum of {rec['id']}"
            chain = hashlib.sha256(chain + checksum).digest()
            assert chain == rec["chain"], f"chain at {rec['id']}"
            records.append(rec)
            count += 1
        assert count == seg["count"]
        assert records[-1]["id"] == seg["last_id"] and chain.hex() == seg["chain"]
    assert manifest["checkpoint"]["last_sequence"] == sequence
    return manifest, records


def main():
    with tempfile.TemporaryDirectory() as tmp:
        store, archive = os.path.join(tmp, "store"), os.path.join(tmp, "archive")
        assert run("init", store).returncode == 0
        append(store, 3000)
        r = run("export", store, archive, "--segment-size", "20000")
        assert r.returncode == 0, r.stderr
        manifest, records = read_archive(archive)
        assert len(records) == 3000 and len(manifest["segments"]) > 5
        print(f"stock tools: {len(records)} records in {len(manifest['segments'])} segments check out")

        # A full disk while a segment is written.
        append(store, 500, 3000)
        before = open(os.path.join(archive, "manifest.json"), "rb").read()
        r = run("export", store, archive, "--segment-size", "20000",
                env={"LD_PRELOAD": SHIM, "LH_FAULT_CALL": "write", "LH_FAULT_PATH": ".tmp-",
                     "LH_FAULT_AFTER": "2", "LH_FAULT_ERRNO": "28",
                     "ASAN_OPTIONS": "verify_asan_link_order=0"})
        assert r.returncode == 1, (r.returncode, r.stderr)
        assert b"No space left on device" in r.stderr, r.stderr
        assert open(os.path.join(archive, "manifest.json"), "rb").read() == before
        v = run("archive", "verify", archive)
        assert v.returncode == 0, v.stdout
        print("full disk: export failed clearly, archive unchanged and valid")

        # SIGKILL at random moments.
        append(store, 20000, 3500)
        rng = random.Random(7)
        kills = 0
        for _ in range(8):
            p = subprocess.Popen([TOOL, "export", store, archive, "--segment-size", "4096", "--level", "9"],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0.005, 0.25))
            p.kill()
            p.wait()
            kills += p.returncode < 0
            v = run("archive", "verify", archive)
            assert v.returncode == 0, v.stdout.decode()
        r = run("export", store, archive, "--segment-size", "4096")
        assert r.returncode == 0, r.stderr
        manifest, records = read_archive(archive)
        assert [rec["sequence"] for rec in records] == list(range(1, 23501))
        v = run("archive", "verify", archive)
        assert v.returncode == 0 and b"0 leftovers" in v.stdout, v.stdout
        copy = os.path.join(tmp, "copy")
        r = run("import", archive, copy)
        assert r.returncode == 0, r.stderr
        assert run("verify", copy).returncode == 0
        stats = json.loads(run("stats", copy).stdout)
        assert stats["event_count"] == 23500
        print(f"{kills} exports killed mid-run: the archive always verified; "
              f"the last export completed it without duplicates or gaps")


main()
