"""End-to-end tests of the `lighthouse` command-line tool.

The tool's path comes from the environment variable LIGHTHOUSE_TOOL. Every
test works in a temporary directory of its own. Each failing case also checks
that the store's event count did not change.
"""

import base64
import json
import os
import queue
import subprocess
import sys
import tempfile
import threading
import unittest

TOOL = os.environ.get("LIGHTHOUSE_TOOL", "")
TIMEOUT = 60  # seconds; generous, so that a stuck tool fails a test instead of hanging it

EXIT_OK, EXIT_OTHER, EXIT_USAGE, EXIT_CONFLICT = 0, 1, 2, 3
EXIT_INVALID, EXIT_CORRUPTION, EXIT_REFUSED, EXIT_NOT_FOUND = 4, 5, 6, 7


def line(**fields):
    return json.dumps(fields)


def lines(*items):
    """Joins JSON lines (dicts or ready text) into stdin bytes, newline-terminated."""
    out = []
    for item in items:
        out.append(item if isinstance(item, str) else json.dumps(item))
    return ("\n".join(out) + "\n").encode()


class Result:
    def __init__(self, completed):
        self.rc = completed.returncode
        self.out = completed.stdout.decode("utf-8", "replace")
        self.err = completed.stderr.decode("utf-8", "replace")

    def json_lines(self):
        return [json.loads(text) for text in self.out.splitlines()]

    def __repr__(self):
        return f"rc={self.rc} stdout={self.out[:500]!r} stderr={self.err[:500]!r}"


def run(*args, stdin=b""):
    completed = subprocess.run([TOOL, *args], input=stdin, capture_output=True, timeout=TIMEOUT)
    return Result(completed)


class ToolTestCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="lighthouse-tool-")
        self.tmp = self._tmp.name
        self.store = os.path.join(self.tmp, "store")
        result = run("init", self.store, "--node-id", "5")
        self.assertEqual(result.rc, EXIT_OK, result)
        self.init_output = result.json_lines()

    def tearDown(self):
        self._tmp.cleanup()

    def stats(self):
        result = run("stats", self.store)
        self.assertEqual(result.rc, EXIT_OK, result)
        (stats,) = result.json_lines()
        return stats

    def count(self):
        return self.stats()["event_count"]

    def append(self, stdin, *flags):
        return run("append", self.store, *flags, stdin=stdin)

    def append_ok(self, stdin, *flags):
        result = self.append(stdin, *flags)
        self.assertEqual(result.rc, EXIT_OK, result)
        self.assertEqual(result.err, "")
        return result.json_lines()

    def get(self, event_id):
        result = run("get", self.store, event_id)
        self.assertEqual(result.rc, EXIT_OK, result)
        (event,) = result.json_lines()
        return event

    def assert_fails(self, result, code, *in_stderr):
        self.assertEqual(result.rc, code, result)
        self.assertTrue(result.err.startswith("lighthouse: "), result)
        for text in in_stderr:
            self.assertIn(text, result.err, result)


class InitTest(ToolTestCase):
    def test_init_prints_store_node_id_and_format_version(self):
        (info,) = self.init_output
        self.assertEqual(info["store"], os.path.realpath(self.store))
        self.assertEqual(info["node_id"], 5)
        self.assertEqual(info["format_version"], 2)
        stats = self.stats()
        self.assertEqual(stats["event_count"], 0)
        self.assertEqual(stats["node_id"], 5)

    def test_init_refuses_an_existing_store(self):
        self.append_ok(lines({"type": "a"}))
        result = run("init", self.store)
        self.assert_fails(result, EXIT_OTHER, "already exists")
        self.assertEqual(self.count(), 1)

    def test_init_with_malformed_node_id_is_invalid_input(self):
        other = os.path.join(self.tmp, "other")
        for bad in ["-1", "4294967296", "0x10", "abc", "01", ""]:
            result = run("init", other, "--node-id", bad)
            self.assert_fails(result, EXIT_INVALID)
            self.assertFalse(os.path.exists(os.path.join(other, "data.mdb")))


class RoundTripTest(ToolTestCase):
    def test_appended_events_read_back_with_all_fields(self):
        payload = bytes(range(256))
        events = [
            {"type": "order.placed", "aggregate": "order-1", "data": {"b": 1, "a": [1, 2.5, "x", None, True]},
             "metadata": {"user": "ann", "trace": "t-1"}},
            {"type": "order.noted", "aggregate": "order-1", "content_type": "json",
             "data": {"z": 1, "text": "h\u00e9llo \u2603"}, "idempotency_key": "note-1",
             "expected_version": 1},
            {"type": "blob", "content_type": "bytes", "data_base64": base64.b64encode(payload).decode()},
            {"type": "ping"},
        ]
        acks = self.append_ok(lines(*events))
        self.assertEqual(len(acks), 4)
        self.assertEqual([a["sequence"] for a in acks], [1, 2, 3, 4])
        self.assertEqual([a["aggregate_version"] for a in acks], [1, 2, 0, 0])
        self.assertTrue(all("replayed" not in a for a in acks))

        got = [self.get(a["id"]) for a in acks]
        for ack, event in zip(acks, got):
            self.assertEqual(event["id"], ack["id"])
            self.assertEqual(event["sequence"], ack["sequence"])
            self.assertEqual(event["aggregate_version"], ack["aggregate_version"])
            timestamp, sequence, node = ack["id"].split("_")
            self.assertEqual(event["timestamp_ns"], int(timestamp))
            self.assertEqual(event["sequence"], int(sequence))
            self.assertEqual(event["node_id"], int(node))
            self.assertEqual(event["node_id"], 5)
            self.assertRegex(event["checksum"], "^[0-9a-f]{64}$")

        msgpack, as_json, blob, ping = got
        self.assertEqual(msgpack["type"], "order.placed")
        self.assertEqual(msgpack["aggregate"], "order-1")
        self.assertEqual(msgpack["content_type"], "msgpack")
        self.assertEqual(msgpack["data"], events[0]["data"])
        self.assertEqual(list(msgpack["data"]), ["b", "a"])  # the writer's key order is kept
        self.assertEqual(msgpack["metadata"], events[0]["metadata"])
        self.assertNotIn("idempotency_key", msgpack)

        self.assertEqual(as_json["content_type"], "json")
        self.assertEqual(as_json["data"], events[1]["data"])
        self.assertEqual(as_json["metadata"], {})
        self.assertEqual(as_json["idempotency_key"], "note-1")

        self.assertEqual(blob["content_type"], "bytes")
        self.assertNotIn("data", blob)
        self.assertEqual(base64.b64decode(blob["data_base64"]), payload)
        self.assertEqual(blob["aggregate"], "")

        self.assertEqual(ping["content_type"], "msgpack")
        self.assertIsNone(ping["data"])

    def test_stats_counts_events_and_aggregates(self):
        self.append_ok(lines({"type": "a", "aggregate": "x"}, {"type": "a", "aggregate": "y"},
                             {"type": "b", "aggregate": "x"}, {"type": "c"}))
        stats = self.stats()
        self.assertEqual(stats["event_count"], 4)
        self.assertEqual(stats["last_sequence"], 4)
        self.assertEqual(stats["aggregate_count"], 2)
        self.assertEqual(stats["format_version"], 2)
        self.assertTrue(stats["read_only"])
        self.assertEqual(stats["failure"], "")
        for key in ["last_timestamp_ns", "type_count", "node_id", "map_size_bytes", "map_used_bytes",
                    "append_backlog"]:
            self.assertIn(key, stats)

    def test_blank_lines_are_skipped_but_counted(self):
        result = self.append(b'\n{"type":"a"}\n  \n{"type": 7}\n')
        self.assert_fails(result, EXIT_INVALID, "line 4:", "number 7")
        # Line 2 is written only if it was acknowledged (in a group before line 4's).
        self.assertEqual(self.count(), len(result.json_lines()))

    def test_last_line_without_newline_is_appended(self):
        acks = self.append_ok(b'{"type":"a"}\n{"type":"b"}')
        self.assertEqual(len(acks), 2)
        self.assertEqual(self.count(), 2)

    def test_many_lines_commit_in_several_groups(self):
        acks = self.append_ok(lines(*({"type": "t", "aggregate": "g"} for _ in range(2500))))
        self.assertEqual([a["sequence"] for a in acks], list(range(1, 2501)))
        self.assertEqual([a["aggregate_version"] for a in acks], list(range(1, 2501)))
        self.assertEqual(self.count(), 2500)


class StreamingTest(ToolTestCase):
    def start(self, *flags):
        proc = subprocess.Popen([TOOL, "append", self.store, *flags], stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        acks = queue.Queue()

        def pump():
            for text in proc.stdout:
                acks.put(json.loads(text))
            acks.put(None)

        reader = threading.Thread(target=pump, daemon=True)
        reader.start()
        self.addCleanup(self.stop, proc)
        return proc, acks, reader

    def stop(self, proc):
        if proc.poll() is None:
            proc.kill()
        proc.wait(timeout=TIMEOUT)
        for stream in (proc.stdin, proc.stdout, proc.stderr):
            if not stream.closed:
                try:
                    stream.close()
                except BrokenPipeError:
                    pass

    def send(self, proc, data):
        proc.stdin.write(data)
        proc.stdin.flush()

    def receive(self, acks, n):
        out = []
        for _ in range(n):
            try:
                ack = acks.get(timeout=TIMEOUT)
            except queue.Empty:
                self.fail(f"no acknowledgement within {TIMEOUT} s after {len(out)} of {n}")
            self.assertIsNotNone(ack, "the tool ended before acknowledging")
            out.append(ack)
        return out

    def finish(self, proc, acks, reader):
        try:
            proc.stdin.close()
        except BrokenPipeError:
            pass
        reader.join(timeout=TIMEOUT)
        self.assertFalse(reader.is_alive())
        rest = []
        while True:
            ack = acks.get_nowait()
            if ack is None:
                break
            rest.append(ack)
        stderr = proc.stderr.read().decode("utf-8", "replace")
        return proc.wait(timeout=TIMEOUT), rest, stderr

    def test_acknowledges_before_end_of_input_and_stops_at_bad_line(self):
        proc, acks, reader = self.start()
        self.send(proc, lines({"type": "a", "aggregate": "s"}, {"type": "b", "aggregate": "s"},
                              {"type": "c"}))
        # The input is still open: these arrive only if the tool acknowledges early.
        first = self.receive(acks, 3)
        self.assertEqual([a["sequence"] for a in first], [1, 2, 3])
        self.assertEqual(self.count(), 3)

        self.send(proc, lines({"type": "d"}))
        second = self.receive(acks, 1)
        self.assertEqual(second[0]["sequence"], 4)

        # Lines 5..9 arrive in one write, so one group: the bad line 8 sinks it.
        self.send(proc, lines({"type": "e"}, {"type": "f"}, "", '{"type": "g", "data": }', {"type": "h"}))
        rc, rest, stderr = self.finish(proc, acks, reader)
        self.assertEqual(rc, EXIT_INVALID, stderr)
        self.assertIn("lighthouse: line 8: malformed JSON", stderr)
        acknowledged = first + second + rest
        self.assertEqual(self.count(), len(acknowledged))
        self.assertEqual(rest, [])
        for ack in acknowledged:
            self.assertEqual(self.get(ack["id"])["sequence"], ack["sequence"])

    def test_store_refusal_in_a_later_group_keeps_earlier_groups(self):
        proc, acks, reader = self.start()
        self.send(proc, lines({"type": "a", "aggregate": "s"}))
        first = self.receive(acks, 1)
        self.send(proc, lines({"type": "b", "aggregate": "s", "expected_version": 1},
                              {"type": "c", "aggregate": "s", "expected_version": 1}))
        rc, rest, stderr = self.finish(proc, acks, reader)
        self.assertEqual(rc, EXIT_CONFLICT, stderr)
        self.assertIn("lighthouse: line 3:", stderr)
        self.assertIn("expected 1", stderr)
        self.assertEqual(self.count(), len(first) + len(rest))
        self.assertEqual(rest, [])


class BatchTest(ToolTestCase):
    def test_two_processes_append_at_once(self):
        per_process = 3000
        procs = []
        for p in range(2):
            stdin = lines(*[{"type": "T", "aggregate": f"p{p}-{i % 13}", "data": i}
                            for i in range(per_process)])
            proc = subprocess.Popen([TOOL, "append", self.store], stdin=subprocess.PIPE,
                                    stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            procs.append((proc, stdin))
        outputs = [proc.communicate(stdin, timeout=TIMEOUT) for proc, stdin in procs]
        acked = []
        for (proc, _), (out, err) in zip(procs, outputs):
            self.assertEqual(proc.returncode, EXIT_OK, err)
            acked += [json.loads(text) for text in out.decode().splitlines()]
        self.assertEqual(len(acked), 2 * per_process)
        sequences = sorted(a["sequence"] for a in acked)
        self.assertEqual(sequences, list(range(1, 2 * per_process + 1)))
        ids = sorted(acked, key=lambda a: a["sequence"])
        timestamps = [int(a["id"].split("_")[0]) for a in ids]
        self.assertEqual(timestamps, sorted(set(timestamps)))  # strictly increasing
        self.assertEqual(self.count(), 2 * per_process)

    def _query_store(self):
        items = [{"type": f"T{i % 3}", "aggregate": f"a{i % 4}", "data": i} for i in range(40)]
        acked = self.append_ok(lines(*items))
        return items, acked

    def query(self, *args):
        result = run("query", self.store, *args)
        self.assertEqual(result.rc, EXIT_OK, result)
        return result.json_lines()

    def test_query_filters_and_order(self):
        items, acked = self._query_store()
        seqs = lambda events: [e["sequence"] for e in events]
        self.assertEqual(seqs(self.query("--type", "T1")), [i + 1 for i in range(40) if i % 3 == 1])
        self.assertEqual(seqs(self.query("--type", "T1", "--type", "T2")),
                         [i + 1 for i in range(40) if i % 3 != 0])
        self.assertEqual(seqs(self.query("--aggregate", "a2", "--type-prefix", "T")),
                         [i + 1 for i in range(40) if i % 4 == 2])
        self.assertEqual(seqs(self.query("--after", acked[9]["id"])), list(range(11, 41)))
        self.assertEqual(seqs(self.query("--from-sequence", "10", "--limit", "3")), [10, 11, 12])
        self.assertEqual(seqs(self.query("--reverse", "--limit", "3")), [40, 39, 38])
        self.assertEqual(seqs(self.query("--from-sequence", "35", "--limit", "0")), [35, 36, 37, 38, 39, 40])
        ts = [int(a["id"].split("_")[0]) for a in acked]
        self.assertEqual(seqs(self.query("--since", str(ts[5]), "--until", str(ts[8]))), [6, 7, 8])
        # An absent but well-formed ID is a valid bound.
        absent = f"{ts[20] + 0}_{0}_{0}"
        self.assertEqual(seqs(self.query("--after", absent))[0], 21)
        # RFC 3339 times
        self.assertEqual(len(self.query("--since", "2000-01-01T00:00:00Z")), 40)
        self.assertEqual(self.query("--until", "2000-01-01T00:00:00+02:00"), [])
        first = self.query("--limit", "1")[0]
        self.assertEqual(set(first), {"id", "sequence", "timestamp_ns", "node_id", "type", "aggregate",
                                      "aggregate_version", "content_type", "metadata", "data",
                                      "schema_version", "checksum"})

    def test_query_explain_names_the_plan(self):
        self._query_store()
        (plan,) = self.query("--aggregate", "a1", "--explain")
        self.assertEqual(plan["source"], "by_aggregate")
        self.assertEqual(plan["estimate"], 10)
        (plan,) = self.query("--explain")
        self.assertEqual((plan["source"], plan["estimate"]), ("events_range", 40))

    def test_read_prints_an_aggregate_stream(self):
        self._query_store()
        events = run("read", self.store, "a3", "--from-version", "2", "--to-version", "4").json_lines()
        self.assertEqual([e["aggregate_version"] for e in events], [2, 3, 4])
        self.assertTrue(all(e["aggregate"] == "a3" for e in events))
        self.assertEqual(run("read", self.store, "nothing").out, "")

    def test_query_bad_arguments_are_exit_4(self):
        self._query_store()
        for args in (["--after", "12_x"], ["--after", "01_2_3"], ["--since", "yesterday"],
                     ["--until", "2026-13-01T00:00:00Z"], ["--since", "2026-01-01T00:00:00"],
                     ["--from-sequence", "-1"], ["--limit", "ten"], ["--type", ""],
                     ["--to-sequence", "1.5"]):
            result = run("query", self.store, *args)
            self.assertEqual(result.rc, EXIT_INVALID, (args, result))
            self.assertIn("lighthouse:", result.err)
        result = run("read", self.store, "a1", "--from-version", "x")
        self.assertEqual(result.rc, EXIT_INVALID, result)
        result = run("query", os.path.join(self.tmp, "missing"))
        self.assertEqual(result.rc, EXIT_NOT_FOUND, result)

    def test_verify_repair_and_backup(self):
        self._query_store()
        result = run("verify", self.store)
        self.assertEqual(result.rc, EXIT_OK, result)
        self.assertRegex(result.out, r"^ok: \d+ pages, 40 events", result.out)
        (report,) = run("verify", self.store, "--json").json_lines()
        self.assertEqual((report["ok"], report["events_checked"], report["problem_count"]),
                         (True, 40, 0))
        (repaired,) = run("repair", self.store).json_lines()
        self.assertEqual((repaired["events_indexed"], repaired["problems_after"]), (40, 0))
        dest = os.path.join(self.tmp, "backup")
        result = run("backup", self.store, dest)
        self.assertEqual(result.rc, EXIT_OK, result)
        (backup,) = result.json_lines()
        self.assertEqual(backup["events"], 40)
        self.assertEqual(run("verify", dest).rc, EXIT_OK)
        self.assertEqual(run("backup", self.store, dest).rc, EXIT_INVALID)  # not empty

    def test_verify_reports_damage_with_exit_5(self):
        stdin = lines(*[{"type": "T", "content_type": "bytes",
                         "data_base64": base64.b64encode(f"MARKER-{i:04d}-PAYLOAD".encode()).decode()}
                        for i in range(20)])
        acked = self.append_ok(stdin)
        data = os.path.join(self.store, "data.mdb")
        with open(data, "r+b") as f:
            raw = bytearray(f.read())
            at = raw.find(b"MARKER-0007-PAYLOAD")
            self.assertGreater(at, 0)
            raw[at + 9] ^= 0x20
            f.seek(0)
            f.write(raw)
        result = run("verify", self.store)
        self.assertEqual(result.rc, EXIT_CORRUPTION, result)
        self.assertIn(acked[7]["id"], result.out)
        self.assertIn("checksum", result.out)
        result = run("get", self.store, acked[7]["id"])
        self.assertEqual(result.rc, EXIT_CORRUPTION, result)
        self.assertEqual(run("get", self.store, acked[8]["id"]).rc, EXIT_OK)
        result = run("repair", self.store)
        self.assertEqual(result.rc, EXIT_CORRUPTION, result)  # the damaged event is left as it is
        self.assertEqual(len(result.json_lines()[0]["left_for_operator"]), 1)

    def test_archive_list_prints_each_segment_of_the_manifest(self):
        self.append_ok(lines(*({"type": "T", "aggregate": f"a{i % 3}", "data": "x" * 50} for i in range(300))))
        archive = os.path.join(self.tmp, "archive")
        self.assertEqual(run("export", self.store, archive, "--segment-size", "4096").rc, EXIT_OK)
        result = run("archive", "list", archive)
        self.assertEqual(result.rc, EXIT_OK, result)
        segments = result.json_lines()
        with open(os.path.join(archive, "manifest.json"), encoding="utf-8") as f:
            manifest = json.load(f)
        self.assertGreater(len(segments), 3)
        self.assertEqual([s["file"] for s in segments], [s["file"] for s in manifest["segments"]])
        for listed, stored in zip(segments, manifest["segments"]):
            for key in ("first_id", "last_id", "first_sequence", "last_sequence", "count", "record_bytes",
                        "compressed_bytes", "sha256"):
                self.assertEqual(listed[key], stored[key], key)
            self.assertEqual(listed["compressed_bytes"], os.path.getsize(os.path.join(archive, listed["file"])))
        self.assertEqual(segments[0]["first_sequence"], 1)
        self.assertEqual(segments[-1]["last_sequence"], 300)
        self.assertEqual(sum(s["count"] for s in segments), 300)
        for a, b in zip(segments, segments[1:]):
            self.assertEqual(b["first_sequence"], a["last_sequence"] + 1)
        self.assert_fails(run("archive", "list", os.path.join(self.tmp, "none")), EXIT_NOT_FOUND)

    def test_import_until_stops_at_the_given_event(self):
        acks = self.append_ok(lines(*({"type": "T", "aggregate": f"a{i % 4}"} for i in range(50))))
        archive = os.path.join(self.tmp, "archive")
        self.assertEqual(run("export", self.store, archive, "--segment-size", "2048").rc, EXIT_OK)
        copy = os.path.join(self.tmp, "copy")
        result = run("import", archive, copy, "--until", acks[19]["id"])
        self.assertEqual(result.rc, EXIT_OK, result)
        (report,) = result.json_lines()
        self.assertEqual((report["events"], report["last_id"]), (20, acks[19]["id"]))
        imported = run("query", copy).json_lines()
        self.assertEqual([e["id"] for e in imported], [a["id"] for a in acks[:20]])
        self.assertEqual(run("verify", copy).rc, EXIT_OK)
        # The rest follows on a second import into the same store.
        (rest,) = run("import", archive, copy).json_lines()
        self.assertEqual(rest["events"], 30)
        self.assertEqual([e["id"] for e in run("query", copy).json_lines()], [a["id"] for a in acks])
        self.assert_fails(run("import", archive, os.path.join(self.tmp, "c2"), "--until", "1_x_2"), EXIT_INVALID)
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "c2")))

    def test_query_no_verify_reads_an_event_whose_checksum_fails(self):
        marker = b"VICTIM-PAYLOAD-0123456789"
        acks = self.append_ok(lines({"type": "Before"},
                                    {"type": "Victim", "content_type": "bytes",
                                     "data_base64": base64.b64encode(marker).decode()},
                                    {"type": "After"}))
        data = os.path.join(self.store, "data.mdb")
        with open(data, "rb") as f:
            raw = f.read()
        at = raw.find(marker)
        self.assertGreater(at, 0)
        with open(data, "r+b") as f:
            f.seek(at)
            f.write(b"W")
        verified = run("query", self.store)
        self.assert_fails(verified, EXIT_CORRUPTION, acks[1]["id"], "fast check")
        full = run("query", self.store, "--read-check", "full")
        self.assert_fails(full, EXIT_CORRUPTION, acks[1]["id"], "fast check")
        self.assertEqual([e["type"] for e in verified.json_lines()], ["Before"])  # what came before it
        unverified = run("query", self.store, "--no-verify")
        self.assertEqual(unverified.rc, EXIT_OK, unverified)
        events = unverified.json_lines()
        self.assertEqual([e["type"] for e in events], ["Before", "Victim", "After"])
        self.assertEqual(base64.b64decode(events[1]["data_base64"]), b"W" + marker[1:])

    def test_truncate_compact_and_cross_check(self):
        self._query_store()
        archive = os.path.join(self.tmp, "archive")
        # Without an archive: refused, nothing dropped.
        ids = [e["id"] for e in self.query()]
        result = run("truncate", self.store, "--archive", archive, "--before", ids[30])
        self.assertEqual(result.rc, EXIT_NOT_FOUND, result)
        self.assertEqual(self.count(), 40)
        result = run("export", self.store, archive)
        self.assertEqual(result.rc, EXIT_OK, result)
        self.assertEqual(result.err, "")  # no progress bar when stderr is not a terminal
        self.assertEqual(len(result.json_lines()), 1)  # one summary line
        result = run("truncate", self.store, "--archive", archive, "--before", "not-an-id")
        self.assertEqual(result.rc, EXIT_INVALID, result)
        (report,) = run("truncate", self.store, "--archive", archive, "--before", ids[30]).json_lines()
        self.assertEqual((report["events_dropped"], report["base_sequence"]), (30, 31))
        self.assertEqual(self.count(), 10)
        result = run("query", self.store)
        self.assertEqual(len(result.json_lines()), 10)
        self.assertIn("truncated", result.err)
        self.assertIn(os.path.abspath(archive), result.err)
        self.assertEqual(run("verify", self.store, "--archive", archive).rc, EXIT_OK)
        # Another process has the store open: compact refuses and changes nothing.
        holder = subprocess.Popen([TOOL, "append", self.store], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        holder.stdin.write(lines({"type": "Held"}))
        holder.stdin.flush()
        self.assertIn(b'"sequence"', holder.stdout.readline())  # it has the store open
        result = run("compact", self.store)
        self.assertEqual(result.rc, EXIT_OTHER, result)
        self.assertIn("open in process", result.err)
        holder.stdin.close()
        holder.wait(timeout=TIMEOUT)
        (compacted,) = run("compact", self.store).json_lines()
        self.assertLessEqual(compacted["bytes_after"], compacted["bytes_before"])
        self.assertEqual(run("verify", self.store).rc, EXIT_OK)
        # Another store's archive does not form a chain with this one.
        other, other_archive = os.path.join(self.tmp, "other"), os.path.join(self.tmp, "other-archive")
        run("init", other)
        run("append", other, stdin=lines(*[{"type": "X"} for _ in range(50)]))
        run("export", other, other_archive)
        result = run("verify", self.store, "--archive", other_archive)
        self.assertEqual(result.rc, EXIT_CORRUPTION, result)
        self.assertIn("archive", result.out)

    def test_sla_and_metrics_pass_promtool(self):
        self._query_store()
        (report,) = run("sla", self.store).json_lines()
        self.assertGreater(report["pid"], 0)
        self.assertGreaterEqual(report["age_seconds"], 0)
        self.assertEqual(len(report["windows"]), 3)
        result = run("metrics", self.store)
        self.assertEqual(result.rc, EXIT_OK, result)
        self.assertIn("lighthouse_events_appended_total 40", result.out)
        self.assertIn("lighthouse_last_sequence 40", result.out)
        check = subprocess.run(["promtool", "check", "metrics"], input=result.out.encode(),
                               capture_output=True, timeout=TIMEOUT)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)
        archive = os.path.join(self.tmp, "archive")
        run("export", self.store, archive)
        self.append_ok(lines({"type": "After"}, {"type": "After"}))
        result = run("metrics", self.store, "--archive", archive)
        self.assertIn("lighthouse_export_checkpoint_lag_events 2", result.out)
        check = subprocess.run(["promtool", "check", "metrics"], input=result.out.encode(),
                               capture_output=True, timeout=TIMEOUT)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

    def _files(self):
        """The store's data file, byte for byte (the lock file changes on every open)."""
        with open(os.path.join(self.store, "data.mdb"), "rb") as f:
            return f.read()

    def _newer_format_store(self):
        """A copy of a store whose meta says format version 99, made with LMDB's own tools."""
        path = os.path.join(self.tmp, "newer")
        self.assertEqual(run("init", path).rc, EXIT_OK)
        dump = subprocess.run(["mdb_dump", "-s", "meta", path], capture_output=True, check=True,
                              timeout=TIMEOUT).stdout.decode().splitlines()
        key = " " + b"format_version".hex()
        out = []
        for i, text in enumerate(dump):
            out.append(" 00000063" if i > 0 and dump[i - 1] == key else text)
        subprocess.run(["mdb_load", "-s", "meta", path], input=("\n".join(out) + "\n").encode(),
                       capture_output=True, check=True, timeout=TIMEOUT)
        return path

    def test_thirty_bad_inputs_each_refused_with_its_code_and_nothing_written(self):
        self.append_ok(lines({"type": "Seed", "aggregate": "a", "idempotency_key": "k1"},
                             {"type": "Seed", "aggregate": "a"}))
        long_name = "n" * 256
        ok_id = run("query", self.store, "--limit", "1").json_lines()[0]["id"]
        not_a_store = os.path.join(self.tmp, "file")
        with open(not_a_store, "w") as f:
            f.write("not a store")
        archive = os.path.join(self.tmp, "archive")
        self.assertEqual(run("export", self.store, archive).rc, EXIT_OK)
        damaged = os.path.join(self.tmp, "damaged")
        subprocess.run(["cp", "-r", archive, damaged], check=True)
        segment = sorted(n for n in os.listdir(damaged) if n.endswith(".gz"))[0]
        with open(os.path.join(damaged, segment), "r+b") as f:
            f.truncate(os.path.getsize(os.path.join(damaged, segment)) // 2)
        newer = self._newer_format_store()
        oversize_batch = lines(*({"type": "x"} for _ in range(10_001)))
        cases = [
            # (name, args, stdin, exit code, a phrase of the message)
            ("malformed JSON", ["append", self.store], b'{"type": \n', EXIT_INVALID, "line 1"),
            ("truncated JSON", ["append", self.store], b'{"type":"a"', EXIT_INVALID, "line 1"),
            # Found by fuzz_json_line: a number too large for a double escaped as a crash.
            ("number overflow", ["append", self.store], b'{"type":"x","data":555550000000000e851298}\n',
             EXIT_INVALID, "number overflow"),
            ("not an object", ["append", self.store], lines("[1, 2]"), EXIT_INVALID, "JSON object"),
            ("type not a string", ["append", self.store], lines({"type": 5}), EXIT_INVALID, "type"),
            ("missing type", ["append", self.store], lines({"aggregate": "a"}), EXIT_INVALID, "missing field 'type'"),
            ("empty type", ["append", self.store], lines({"type": ""}), EXIT_INVALID, "type"),
            ("type too long", ["append", self.store], lines({"type": long_name}), EXIT_INVALID, "255"),
            ("reserved type", ["append", self.store], lines({"type": "$x"}), EXIT_INVALID, "reserved"),
            ("reserved aggregate", ["append", self.store], lines({"type": "x", "aggregate": "$a"}), EXIT_INVALID,
             "reserved"),
            ("aggregate too long", ["append", self.store], lines({"type": "x", "aggregate": long_name}),
             EXIT_INVALID, "255"),
            ("event over 1 MiB", ["append", self.store],
             lines({"type": "x", "content_type": "bytes", "data_base64": "A" * (1400 * 1024)}), EXIT_INVALID,
             "limit"),
            ("batch over 10,000 events", ["append", self.store, "--batch"], oversize_batch, EXIT_INVALID, "10000"),
            ("expected version a word", ["append", self.store],
             lines({"type": "x", "aggregate": "a", "expected_version": "seven"}), EXIT_INVALID, "expected_version"),
            ("expected version negative", ["append", self.store],
             lines({"type": "x", "aggregate": "a", "expected_version": -1}), EXIT_INVALID, "expected_version"),
            ("expected version without aggregate", ["append", self.store],
             lines({"type": "x", "expected_version": 1}), EXIT_INVALID, "without aggregate"),
            ("wrong expected version", ["append", self.store],
             lines({"type": "x", "aggregate": "a", "expected_version": 7}), EXIT_CONFLICT, "at version 2, expected 7"),
            ("idempotency key reused with other content", ["append", self.store],
             lines({"type": "Other", "aggregate": "a", "idempotency_key": "k1"}), EXIT_CONFLICT, "k1"),
            ("unknown content type", ["append", self.store], lines({"type": "x", "content_type": "xml"}),
             EXIT_INVALID, "xml"),
            ("metadata not an object", ["append", self.store], lines({"type": "x", "metadata": [1]}), EXIT_INVALID,
             "metadata"),
            ("metadata value not a string", ["append", self.store], lines({"type": "x", "metadata": {"a": 1}}),
             EXIT_INVALID, "metadata"),
            ("empty idempotency key", ["append", self.store], lines({"type": "x", "idempotency_key": ""}),
             EXIT_INVALID, "idempotency"),
            ("idempotency key too long", ["append", self.store], lines({"type": "x", "idempotency_key": "k" * 129}),
             EXIT_INVALID, "128"),
            ("invalid UTF-8 in a name", ["append", self.store], b'{"type": "\xff\xfe"}\n', EXIT_INVALID, "line 1"),
            ("bad base64", ["append", self.store], lines({"type": "x", "content_type": "bytes", "data_base64": "!!"}),
             EXIT_INVALID, "base64"),
            ("unknown field", ["append", self.store], lines({"type": "x", "colour": "red"}), EXIT_INVALID,
             "unknown field 'colour'"),
            ("bad priority", ["append", self.store, "--priority", "urgent"], lines({"type": "x"}), EXIT_INVALID,
             "priority"),
            ("malformed ID", ["get", self.store, "12_x_3"], b"", EXIT_INVALID, "12_x_3"),
            ("ID not stored", ["get", self.store, "1_999999_5"], b"", EXIT_NOT_FOUND, "no event"),
            ("malformed time", ["query", self.store, "--since", "yesterday"], b"", EXIT_INVALID, "yesterday"),
            ("malformed sequence", ["query", self.store, "--from-sequence", "abc"], b"", EXIT_INVALID, "abc"),
            ("unknown flag", ["stats", self.store, "--bogus"], b"", EXIT_USAGE, "--bogus"),
            ("missing argument", ["get", self.store], b"", EXIT_USAGE, "ID"),
            ("unknown command", ["frobnicate"], b"", EXIT_USAGE, "frobnicate"),
            ("missing store", ["stats", os.path.join(self.tmp, "none")], b"", EXIT_NOT_FOUND, "no store at"),
            ("store path is a file", ["stats", not_a_store], b"", EXIT_INVALID, "is not a directory"),
            ("store of a newer format", ["stats", newer], b"", EXIT_OTHER, "format version 99"),
            ("append to a newer format", ["append", newer], lines({"type": "x"}), EXIT_OTHER, "format version 99"),
            ("damaged archive verified", ["archive", "verify", damaged], b"", EXIT_CORRUPTION, segment),
            ("damaged archive imported", ["import", damaged, os.path.join(self.tmp, "imported")], b"",
             EXIT_CORRUPTION, segment),
            ("empty emergency reason", ["health", self.store, "--enter-emergency", ""], b"", EXIT_INVALID, "empty"),
            ("empty consumer", ["tail", self.store, "--consumer", ""], b"", EXIT_INVALID, "--consumer"),
            ("empty bound", ["query", self.store, "--after", ""], b"", EXIT_INVALID, "--after"),
            ("empty limit", ["query", self.store, "--limit", ""], b"", EXIT_INVALID, "--limit"),
            ("empty archive", ["truncate", self.store, "--archive", "", "--before", ok_id], b"", EXIT_INVALID,
             "--archive"),
            ("empty version", ["read", self.store, "a", "--from-version", ""], b"", EXIT_INVALID, "--from-version"),
            ("level out of range", ["export", self.store, os.path.join(self.tmp, "arch"), "--level", "99"], b"",
             EXIT_INVALID, "--level"),
            ("segment size not a number", ["export", self.store, os.path.join(self.tmp, "arch"),
                                           "--segment-size", "abc"], b"", EXIT_INVALID, "--segment-size"),
            ("truncate without archive", ["truncate", self.store, "--before", ok_id], b"", EXIT_USAGE, "--archive"),
            ("schema version 0", ["append", self.store], lines({"type": "x", "schema_version": 0}), EXIT_INVALID,
             "schema_version"),
            ("schema version a word", ["append", self.store], lines({"type": "x", "schema_version": "2"}),
             EXIT_INVALID, "schema_version"),
            ("schema version over 32 bits", ["append", self.store], lines({"type": "x", "schema_version": 2 ** 32}),
             EXIT_INVALID, "4294967295"),
            ("trace context not an object", ["append", self.store],
             lines({"type": "x", "trace_context": "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}),
             EXIT_INVALID, "trace_context"),
            ("trace context without traceparent", ["append", self.store],
             lines({"type": "x", "trace_context": {"tracestate": "a=b"}}), EXIT_INVALID, "traceparent"),
            ("traceparent malformed", ["append", self.store],
             lines({"type": "x", "trace_context": {"traceparent": "00-XYZ-01"}}), EXIT_INVALID, "00-XYZ-01"),
            ("traceparent of another version", ["append", self.store],
             lines({"type": "x", "trace_context": {"traceparent":
                                                   "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}}),
             EXIT_INVALID, "version 00"),
            ("traceparent with a zero trace id", ["append", self.store],
             lines({"type": "x", "trace_context": {"traceparent":
                                                   "00-00000000000000000000000000000000-b7ad6b7169203331-01"}}),
             EXIT_INVALID, "all-zero"),
            ("tracestate over 512 bytes", ["append", self.store],
             lines({"type": "x", "trace_context": {"traceparent":
                                                   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                                                   "tracestate": "a" * 513}}), EXIT_INVALID, "512"),
            ("tracestate not printable ASCII", ["append", self.store],
             lines({"type": "x", "trace_context": {"traceparent":
                                                   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                                                   "tracestate": "a=\u00e9"}}), EXIT_INVALID, "printable ASCII"),
            ("unknown trace context field", ["append", self.store],
             lines({"type": "x", "trace_context": {"traceparent":
                                                   "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
                                                   "baggage": "x"}}), EXIT_INVALID, "baggage"),
            ("unknown read check", ["query", self.store, "--read-check", "sha"], b"", EXIT_INVALID, "--read-check"),
            ("upgrade a missing store", ["upgrade", os.path.join(self.tmp, "none")], b"", EXIT_NOT_FOUND,
             "no store at"),
        ]
        self.assertGreaterEqual(len(cases), 30)
        count, files = self.count(), self._files()
        for name, args, stdin, code, phrase in cases:
            with self.subTest(name):
                result = run(*args, stdin=stdin)
                self.assertEqual(result.rc, code, result)
                if args[:2] == ["archive", "verify"]:
                    # A verify prints its report on stdout.
                    self.assertIn(phrase, result.out, result)
                else:
                    self.assertTrue(result.err.startswith("lighthouse: "), result)
                    self.assertIn(phrase, result.err, result)
                    self.assertEqual(result.out, "", result)
                self.assertEqual(self.count(), count)
                self.assertEqual(self._files(), files, "the store's data file changed")
        # The refused import left no store behind, the refused exports no archive.
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "imported")))
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "arch")))

    def test_no_symlink_followed_out_of_a_store_or_archive(self):
        victim = os.path.join(self.tmp, "victim")
        with open(victim, "w") as f:
            f.write("precious\n")
        linked = os.path.join(self.tmp, "linked")
        os.makedirs(linked)
        os.symlink(victim, os.path.join(linked, "data.mdb"))
        for args in (["append", linked], ["stats", linked], ["init", linked]):
            result = run(*args, stdin=lines({"type": "x"}))
            self.assertNotEqual(result.rc, EXIT_OK, (args, result))
            self.assertIn("symbolic link", result.err, (args, result))
        archive = os.path.join(self.tmp, "archive")
        os.makedirs(archive)
        os.symlink(victim, os.path.join(archive, ".tmp-manifest.json"))
        self.append_ok(lines({"type": "x"}))
        self.assertEqual(run("export", self.store, archive).rc, EXIT_OK)
        with open(victim) as f:
            self.assertEqual(f.read(), "precious\n")
        self.assertEqual(oct(os.stat(os.path.join(archive, "manifest.json")).st_mode & 0o777), "0o600")
        self.assertEqual(oct(os.stat(os.path.join(self.store, "data.mdb")).st_mode & 0o777), "0o600")

    @unittest.skipUnless(hasattr(os, "geteuid"), "POSIX only")
    def test_store_directory_without_permission(self):
        # Root reads any directory: the tool runs as nobody for this case.
        base = tempfile.mkdtemp(prefix="lighthouse-perm-")
        try:
            os.chmod(base, 0o755)
            store = os.path.join(base, "store")
            self.assertEqual(run("init", store).rc, EXIT_OK)
            os.chmod(store, 0o700)
            if os.geteuid() == 0:
                completed = subprocess.run([TOOL, "stats", store], capture_output=True, timeout=TIMEOUT,
                                           preexec_fn=lambda: (os.setgid(65534), os.setuid(65534)))
            else:
                os.chmod(store, 0o000)
                completed = subprocess.run([TOOL, "stats", store], capture_output=True, timeout=TIMEOUT)
                os.chmod(store, 0o700)
            result = Result(completed)
            self.assertEqual(result.rc, EXIT_OTHER, result)
            self.assertIn("Permission denied", result.err)
            self.assertIn("cannot open store", result.err)
            self.assertEqual(run("stats", store).json_lines()[0]["event_count"], 0)
        finally:
            subprocess.run(["rm", "-rf", base])

    def test_tail_catches_up_filters_and_continues_a_consumer(self):
        self.append_ok(lines(*({"type": "order.placed" if i % 2 else "order.paid", "aggregate": f"o-{i % 3}"}
                               for i in range(10))))
        events = run("tail", self.store).json_lines()
        self.assertEqual([e["sequence"] for e in events], list(range(1, 11)))
        self.assertEqual(events, run("query", self.store).json_lines())  # the `get` format
        placed = run("tail", self.store, "--type", "order.placed").json_lines()
        self.assertEqual([e["sequence"] for e in placed], [2, 4, 6, 8, 10])
        after = run("tail", self.store, "--aggregate", "o-1", "--after", events[3]["id"]).json_lines()
        self.assertEqual([e["sequence"] for e in after], [5, 8])
        self.assertEqual(len(run("tail", self.store, "--from-sequence", "9").json_lines()), 2)
        self.assertEqual(len(run("tail", self.store, "--since", str(events[6]["timestamp_ns"])).json_lines()), 4)
        # A consumer continues where it stopped.
        first = run("tail", self.store, "--consumer", "mailer").json_lines()
        self.assertEqual(len(first), 10)
        self.append_ok(lines({"type": "later"}))
        second = run("tail", self.store, "--consumer", "mailer").json_lines()
        self.assertEqual([e["type"] for e in second], ["later"])
        self.assertEqual(run("tail", self.store, "--consumer", "mailer").out, "")
        # Bad input: a clear message, nothing written.
        count = self.count()
        for args, code in ((["--after", "x_1_2"], EXIT_INVALID), (["--since", "soon"], EXIT_INVALID),
                           (["--from-sequence", "-3"], EXIT_INVALID),
                           (["--from-start", "--from-sequence", "3"], EXIT_USAGE),
                           (["--after", "1_2_3", "--since", "0"], EXIT_USAGE),
                           (["--consumer", "c" * 129], EXIT_INVALID), (["--bogus"], EXIT_USAGE)):
            result = run("tail", self.store, *args)
            self.assertEqual(result.rc, code, (args, result))
            self.assertIn("lighthouse:", result.err)
        self.assertEqual(self.count(), count)

    def test_tail_follow_read_only_sees_other_processes(self):
        # Without a consumer the store is opened read-only: no commit of its
        # own wakes it, the bounded poll does.
        proc = subprocess.Popen([TOOL, "tail", self.store, "--follow"], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            got = queue.Queue()
            threading.Thread(target=lambda: [got.put(json.loads(l)) for l in proc.stdout], daemon=True).start()
            self.append_ok(lines({"type": "one"}, {"type": "two"}))
            self.assertEqual([got.get(timeout=TIMEOUT)["type"] for _ in range(2)], ["one", "two"])
        finally:
            proc.send_signal(15)  # SIGTERM
            proc.wait(timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr.read())

    def test_tail_follow_prints_what_another_process_appends_until_interrupted(self):
        self.append_ok(lines({"type": "before"}))
        proc = subprocess.Popen([TOOL, "tail", self.store, "--follow", "--consumer", "live"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            got = queue.Queue()
            threading.Thread(target=lambda: [got.put(json.loads(l)) for l in proc.stdout], daemon=True).start()
            self.assertEqual(got.get(timeout=TIMEOUT)["type"], "before")
            self.append_ok(lines({"type": "during"}))
            self.assertEqual(got.get(timeout=TIMEOUT)["type"], "during")
        finally:
            proc.send_signal(2)  # SIGINT
            proc.wait(timeout=TIMEOUT)
        self.assertEqual(proc.returncode, 0, proc.stderr.read())
        # Its checkpoint was stored on the way out.
        self.append_ok(lines({"type": "after"}))
        self.assertEqual([e["type"] for e in run("tail", self.store, "--consumer", "live").json_lines()], ["after"])

    def test_health_round_trip_and_emergency_refuses_appends(self):
        self.append_ok(lines({"type": "Before"}))
        data = os.path.join(self.store, "data.mdb")
        before = (os.stat(data).st_mtime_ns, os.path.getsize(data))
        (shown,) = run("health", self.store).json_lines()
        self.assertEqual(shown["state"], "healthy")
        self.assertFalse(shown["manual"])
        # Showing the state opens the store read-only: nothing is written.
        self.assertEqual((os.stat(data).st_mtime_ns, os.path.getsize(data)), before)

        result = run("health", self.store, "--enter-emergency", "restoring the SAN")
        self.assertEqual(result.rc, EXIT_OK, result)
        (entered,) = result.json_lines()
        self.assertEqual(entered["state"], "emergency")
        self.assertEqual(entered["reason"], "restoring the SAN")
        self.assertTrue(entered["manual"])
        self.assertRegex(entered["since"], r"^\d{4}-\d\d-\d\dT")
        count = self.count()
        for flags in ([], ["--priority", "critical"], ["--batch"]):
            result = self.append(lines({"type": "During"}), *flags)
            self.assertEqual(result.rc, EXIT_REFUSED, result)
            self.assertIn("emergency", result.err)
            self.assertIn("restoring the SAN", result.err)
        self.assertEqual(self.count(), count)
        # Reads keep working; sla and metrics show the state.
        self.assertEqual(run("query", self.store, "--type", "Before").rc, EXIT_OK)
        (report,) = run("sla", self.store).json_lines()
        self.assertEqual(report["health"]["state"], "emergency")
        metrics = run("metrics", self.store).out
        self.assertIn('lighthouse_health_state{state="emergency"} 1', metrics)
        self.assertIn("lighthouse_health_manual_emergency 1", metrics)
        check = subprocess.run(["promtool", "check", "metrics"], input=metrics.encode(),
                               capture_output=True, timeout=TIMEOUT)
        self.assertEqual(check.returncode, 0, check.stdout + check.stderr)

        result = run("health", self.store, "--clear-emergency")
        self.assertEqual(result.rc, EXIT_OK, result)
        self.assertEqual(result.json_lines()[0]["state"], "healthy")
        self.append_ok(lines({"type": "After"}), "--priority", "low")
        events = run("query", self.store, "--type-prefix", "$health.").json_lines()
        self.assertEqual([e["type"] for e in events], ["$health.emergency", "$health.healthy"])
        self.assertEqual(events[0]["data"]["reason"], "restoring the SAN")
        self.assertEqual(events[0]["data"]["from"], "healthy")

    def test_health_bad_flags(self):
        count = self.count()
        for args, code in ((["health", self.store, "--enter-emergency", "x", "--clear-emergency"], EXIT_USAGE),
                           (["health", self.store, "--enter-emergency", ""], EXIT_INVALID),
                           (["health", self.store, "--enter-emergency"], EXIT_USAGE),
                           (["health"], EXIT_USAGE),
                           (["append", self.store, "--priority", "urgent"], EXIT_INVALID)):
            result = run(*args, stdin=lines({"type": "x"}))
            self.assertEqual(result.rc, code, (args, result))
            self.assertIn("lighthouse:", result.err)
        result = run("health", os.path.join(self.tmp, "missing"))
        self.assertEqual(result.rc, EXIT_NOT_FOUND, result)
        self.assertEqual(self.count(), count)
        (shown,) = run("health", self.store).json_lines()
        self.assertEqual(shown["state"], "healthy")

    def test_batch_appends_all_lines_in_one_commit(self):
        acks = self.append_ok(lines({"type": "a", "aggregate": "x", "expected_version": "no_stream"},
                                    {"type": "b", "aggregate": "x", "expected_version": 1}),
                              "--batch")
        self.assertEqual([a["aggregate_version"] for a in acks], [1, 2])
        self.assertEqual(self.count(), 2)

    def test_batch_with_a_bad_line_writes_nothing(self):
        self.append_ok(lines({"type": "seed"}))
        result = self.append(lines({"type": "a"}, {"type": "b"}, '{"type": "c", "bogus": 1}',
                                   {"type": "d"}), "--batch")
        self.assert_fails(result, EXIT_INVALID, "line 3:", "unknown field 'bogus'")
        self.assertEqual(result.out, "")
        self.assertEqual(self.count(), 1)

    def test_batch_refused_by_the_store_writes_nothing(self):
        result = self.append(lines({"type": "a", "aggregate": "x"},
                                   {"type": "b", "aggregate": "x", "expected_version": 5}), "--batch")
        self.assert_fails(result, EXIT_CONFLICT, "line 2:")
        self.assertEqual(result.out, "")
        self.assertEqual(self.count(), 0)


class ConcurrencyTest(ToolTestCase):
    def test_expected_version_conflict_is_exit_3(self):
        self.append_ok(lines({"type": "a", "aggregate": "acct"}))
        for expected in [0, "no_stream", 2]:
            result = self.append(lines({"type": "b", "aggregate": "acct", "expected_version": expected}))
            self.assert_fails(result, EXIT_CONFLICT, "line 1:", "acct")
            self.assertEqual(self.count(), 1)
        result = self.append(lines({"type": "b", "aggregate": "new", "expected_version": "stream_exists"}))
        self.assert_fails(result, EXIT_CONFLICT)
        self.assertEqual(self.count(), 1)
        acks = self.append_ok(lines({"type": "b", "aggregate": "acct", "expected_version": 1}))
        self.assertEqual(acks[0]["aggregate_version"], 2)

    def test_idempotent_retry_prints_the_same_id_replayed(self):
        text = lines({"type": "paid", "aggregate": "inv", "data": {"n": 1}, "idempotency_key": "pay-1"})
        (original,) = self.append_ok(text)
        self.assertNotIn("replayed", original)
        (retry,) = self.append_ok(text)
        self.assertEqual(retry["id"], original["id"])
        self.assertEqual(retry["sequence"], original["sequence"])
        self.assertIs(retry["replayed"], True)
        self.assertEqual(self.count(), 1)

    def test_reused_idempotency_key_with_other_content_is_exit_3(self):
        self.append_ok(lines({"type": "paid", "data": 1, "idempotency_key": "k"}))
        result = self.append(lines({"type": "paid", "data": 2, "idempotency_key": "k"}))
        self.assert_fails(result, EXIT_CONFLICT, "'k'")
        self.assertEqual(self.count(), 1)


class UsageTest(ToolTestCase):
    def test_usage_errors_are_exit_2(self):
        self.append_ok(lines({"type": "a"}))
        for args in [["append", self.store, "--frobnicate"], ["get", self.store], ["append"],
                     ["stats"], [], ["stats", self.store, "extra"], ["init"]]:
            result = run(*args)
            self.assert_fails(result, EXIT_USAGE)
            self.assertEqual(result.out, "")
            self.assertEqual(self.count(), 1)

    def test_help_lists_the_exit_codes(self):
        result = run("--help")
        self.assertEqual(result.rc, EXIT_OK, result)
        self.assertIn("Exit codes", result.out)
        for code in range(8):
            self.assertRegex(result.out, rf"\n\s*{code}\s+\w")


class InvalidInputTest(ToolTestCase):
    CASES = [
        # (name, stdin bytes, texts the message must contain)
        ("malformed JSON", b'{"type": }\n', ["line 1:", "malformed JSON"]),
        ("truncated JSON", b'{"type": "a", "data": [1, 2', ["line 1:", "malformed JSON"]),
        ("not an object", b'["type", "a"]\n', ["line 1:", "JSON object"]),
        ("type as number", lines({"type": 42}), ["'type'", "number 42"]),
        ("missing type", lines({"data": 1}), ["'type'"]),
        ("metadata value not string", lines({"type": "a", "metadata": {"k": 1}}), ["'k'"]),
        ("metadata not object", lines({"type": "a", "metadata": ["k"]}), ["'metadata'"]),
        ("aggregate as number", lines({"type": "a", "aggregate": 1}), ["'aggregate'"]),
        ("unknown field", lines({"type": "a", "colour": "red"}), ["'colour'"]),
        ("duplicate field", b'{"type": "a", "type": "b"}\n', ["'type'"]),
        ("reserved $ type", lines({"type": "$health"}), ["'$health'", "reserved"]),
        ("empty type", lines({"type": ""}), ["empty"]),
        ("256-byte type", lines({"type": "t" * 256}), ["256 bytes", "255"]),
        ("oversize data", lines({"type": "big", "content_type": "json", "data": "x" * (1 << 20)}),
         ["'big'", "1048576"]),
        ("bad expected_version string", lines({"type": "a", "aggregate": "x", "expected_version": "latest"}),
         ["'latest'"]),
        ("negative expected_version", lines({"type": "a", "aggregate": "x", "expected_version": -1}),
         ["-1", "negative"]),
        ("fractional expected_version", lines({"type": "a", "aggregate": "x", "expected_version": 1.5}),
         ["1.5"]),
        ("expectation without aggregate", lines({"type": "a", "expected_version": 3}), ["without aggregate"]),
        ("unknown content type", lines({"type": "a", "content_type": "xml"}), ["'xml'"]),
        ("bad base64", lines({"type": "a", "content_type": "bytes", "data_base64": "!!!!"}), ["base64"]),
        ("unpadded base64", lines({"type": "a", "content_type": "bytes", "data_base64": "AAE"}), ["base64"]),
        ("bytes without data_base64", lines({"type": "a", "content_type": "bytes"}), ["data_base64"]),
        ("data with bytes content", lines({"type": "a", "content_type": "bytes", "data": 1}), ["'data'"]),
        ("data_base64 with msgpack", lines({"type": "a", "data_base64": "AA=="}), ["data_base64"]),
        ("empty idempotency key", lines({"type": "a", "idempotency_key": ""}), ["idempotency key"]),
        ("invalid UTF-8", b'{"type": "a\xff"}\n', ["line 1:", "malformed JSON"]),
        ("too deeply nested", lines('{"type": "a", "data": ' + "[" * 300 + "]" * 300 + "}"), ["256"]),
    ]

    def test_invalid_lines_are_exit_4_and_write_nothing(self):
        self.append_ok(lines({"type": "seed"}))
        for name, stdin, texts in self.CASES:
            # The bad line is line 2. Streaming may commit a good line before
            # it in a group of its own, so there it follows a blank line; with
            # --batch it follows a good line that must not be written either.
            for flags, first in [((), b"\n"), (("--batch",), lines({"type": "ok"}))]:
                with self.subTest(name=name, flags=flags):
                    result = self.append(first + stdin, *flags)
                    self.assert_fails(result, EXIT_INVALID, "line 2:",
                                      *[t for t in texts if not t.startswith("line ")])
                    self.assertEqual(result.out, "")
                    self.assertEqual(self.count(), 1)


class LookupTest(ToolTestCase):
    def test_get_malformed_id_is_exit_4(self):
        self.append_ok(lines({"type": "a"}))
        for bad in ["x", "1_2", "01_1_1", "1_1_-1", "1_1_4294967296", ""]:
            result = run("get", self.store, bad)
            self.assert_fails(result, EXIT_INVALID, "malformed event ID" if bad else "ID: an empty value")
            self.assertEqual(self.count(), 1)

    def test_get_absent_id_is_exit_7(self):
        (ack,) = self.append_ok(lines({"type": "a"}))
        timestamp, sequence, node = ack["id"].split("_")
        absent = f"{timestamp}_{int(sequence) + 1}_{node}"
        result = run("get", self.store, absent)
        self.assert_fails(result, EXIT_NOT_FOUND, absent)
        self.assertEqual(self.count(), 1)

    def test_any_command_on_a_missing_store_is_exit_7(self):
        missing = os.path.join(self.tmp, "missing")
        for args, stdin in [(["append", missing], lines({"type": "a"})),
                            (["append", missing, "--batch"], lines({"type": "a"})),
                            (["get", missing, "1_1_1"], b""), (["stats", missing], b"")]:
            result = run(*args, stdin=stdin)
            self.assert_fails(result, EXIT_NOT_FOUND, missing)
            self.assertFalse(os.path.exists(missing))
        self.assertEqual(self.count(), 0)


if __name__ == "__main__":
    if not TOOL or not os.access(TOOL, os.X_OK):
        sys.exit("LIGHTHOUSE_TOOL must name the lighthouse executable")
    unittest.main(verbosity=2)
