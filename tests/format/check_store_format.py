#!/usr/bin/python3
"""Checks a store against docs/formats.md with tools that are not Lighthouse:
LMDB's own mdb_dump and Python's msgpack (Debian's python3-msgpack).

Usage: check_store_format.py DEMO_BINARY
Creates a store with the demo program, dumps each database, and recomputes
every checksum, chain value and index entry from the documented formats."""
import hashlib
import os
import struct
import subprocess
import sys
import tempfile

import msgpack

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from lighthouse_format import (chain_next, checksum_v2, content_hash, extras_hash,  # noqa: E402
                               split_stored, trace_context_text)


def check(condition, detail="check failed"):
    """Like assert, but not turned off by python3 -O (PYTHONOPTIMIZE)."""
    if not condition:
        raise AssertionError(detail)


def dump(store, db):
    out = subprocess.run(["mdb_dump", "-s", db, store], check=True, capture_output=True,
                         text=True).stdout.splitlines()
    body = out[out.index("HEADER=END") + 1:out.index("DATA=END")]
    pairs = [(bytes.fromhex(body[i].strip()), bytes.fromhex(body[i + 1].strip()))
             for i in range(0, len(body), 2)]
    return pairs


def main():
    demo = sys.argv[1]
    with tempfile.TemporaryDirectory() as tmp:
        store = os.path.join(tmp, "store")
        subprocess.run([demo, store], check=True, capture_output=True)
        events = dump(store, "events")
        check(len(events) > 2000, len(events))
        chain = bytes(32)
        last_seq = 0
        last_ts = 0
        by_id = {}
        for key, value in events:
            check(len(key) == 20)
            ts, seq, node = struct.unpack(">QQI", key)
            check(seq == last_seq + 1, f"sequence gap at {seq}")
            check(ts > last_ts, f"timestamp not increasing at {seq}")
            last_seq, last_ts = seq, ts
            event_id = f"{ts}_{seq}_{node}"
            rec, fast_ok = split_stored(key, value)
            check(fast_ok, f"fast check of {event_id} differs")
            check(len(rec) == 13 and rec[0] == 2, rec[:2])
            check(rec[1] == 0, "compressed record in the demo store")
            check(rec[9] >= 1, "schema version")
            stored_trace = rec[10]
            # [bin 25, str]: this writer stores the traceparent in its 25 bytes.
            check(stored_trace is None or (len(stored_trace) == 2 and isinstance(stored_trace[0], bytes) and
                                           len(stored_trace[0]) == 25 and isinstance(stored_trace[1], str)),
                  stored_trace)
            trace = trace_context_text(stored_trace)
            content = content_hash(rec[2], rec[3], rec[5], rec[6], rec[7])
            checksum = checksum_v2(key, content, extras_hash(rec[8], trace), rec[4], rec[9])
            check(checksum == rec[11], f"checksum of {event_id} differs")
            chain = chain_next(chain, checksum)
            check(chain == rec[12], f"chain of {event_id} differs")
            by_id[key] = rec
        # The demo's refund carries a schema version and a trace context.
        check(any(rec[9] == 2 and rec[10] is not None for rec in by_id.values()), "no event with both")
        meta = dict(dump(store, "meta"))
        check(struct.unpack(">I", meta[b"format_version"])[0] == 2)
        check(struct.unpack(">Q", meta[b"last_sequence"])[0] == last_seq)
        check(meta[b"last_chain"] == chain)
        for type_name, key in dump(store, "by_type"):
            check(by_id[key][2] == type_name.decode())
        check(len(dump(store, "by_type")) == len(events))
        heads = {}
        for aggregate, entry in dump(store, "by_aggregate"):
            version, key = struct.unpack(">Q", entry[:8])[0], entry[8:]
            rec = by_id[key]
            check(rec[3] == aggregate.decode() and rec[4] == version)
            check(version == heads.get(aggregate, 0) + 1, "aggregate versions not contiguous")
            heads[aggregate] = version
        # aggregate_heads keeps only heads of aggregates whose events were all
        # truncated: none in a store that was never truncated.
        check(dump(store, "aggregate_heads") == [])
        check(struct.unpack(">Q", meta[b"aggregate_count"])[0] == len(heads))
        keyed = dump(store, "by_idempotency_key")
        check(keyed, "the demo appends with an idempotency key")
        for idem_key, entry in keyed:
            rec = by_id[entry[:20]]
            check(rec[8] == idem_key.decode())
            check(content_hash(rec[2], rec[3], rec[5], rec[6], rec[7]) == entry[20:])
        print(f"{len(events)} events: checksums, chain, indexes and meta match docs/formats.md")


main()
