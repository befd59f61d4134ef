"""Record format 2 and 1 as docs/formats.md specifies them, written with
Python's hashlib, msgpack and xxhash alone (Debian's python3-msgpack and
python3-xxhash): the format checks recompute every checksum with these."""
import hashlib
import struct

import msgpack
import xxhash


def event_key(ts, seq, node):
    return struct.pack(">QQI", ts, seq, node)


def sorted_metadata(metadata):
    return dict(sorted(metadata.items(), key=lambda kv: kv[0].encode()))


def content_hash(type_, aggregate, content_type, metadata, data):
    """SHA-256 of [type, aggregate, content type, metadata, data]."""
    return hashlib.sha256(msgpack.packb([type_, aggregate, content_type, sorted_metadata(metadata), data],
                                        use_bin_type=True)).digest()


def extras_hash(idempotency_key, trace_context):
    """SHA-256 of [idempotency key | nil, [traceparent, tracestate] | nil]."""
    return hashlib.sha256(msgpack.packb([idempotency_key, trace_context], use_bin_type=True)).digest()


def checksum_v2(key, content, extras, aggregate_version, schema_version):
    """SHA-256(content ‖ extras ‖ key ‖ version u64 BE ‖ schema version u32 BE): 96 bytes."""
    return hashlib.sha256(content + extras + key + struct.pack(">QI", aggregate_version, schema_version)).digest()


def checksum_v1(event_id, type_, aggregate, version, content_type, metadata, data):
    return hashlib.sha256(msgpack.packb([event_id, type_, aggregate, version, content_type,
                                         sorted_metadata(metadata), data], use_bin_type=True)).digest()


def trace_context_text(stored):
    """A record's trace context (field 10) as the checksum covers it: [traceparent text, tracestate].
    The traceparent is stored in its 25 bytes (trace ID, parent ID, flags), or as text by writers
    before 2026-12."""
    if stored is None:
        return None
    parent, state = stored
    if isinstance(parent, bytes):
        if len(parent) != 25:
            raise ValueError(f"a stored traceparent of {len(parent)} bytes, not 25")
        parent = f"00-{parent[:16].hex()}-{parent[16:24].hex()}-{parent[24:].hex()}"
    return [parent, state]


def chain_next(previous, checksum):
    return hashlib.sha256(previous + checksum).digest()


def fast_check(key, packed):
    """XXH3-64 of the record's MessagePack bytes, seeded with XXH3-64 of the key."""
    return xxhash.xxh3_64_intdigest(packed, seed=xxhash.xxh3_64_intdigest(key))


def split_stored(key, value):
    """A stored format-2 value: (the decoded record, whether its fast check matches)."""
    packed, check = value[:-8], struct.unpack(">Q", value[-8:])[0]
    return msgpack.unpackb(packed, raw=False), fast_check(key, packed) == check
