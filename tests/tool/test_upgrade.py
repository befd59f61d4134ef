"""Format 1 keeps working: the fixtures of tests/fixtures/format1 (written by
the code of record format 1, see make-format1.sh) open read-only, verify, and
are upgraded by `lighthouse upgrade`, also when it is killed with SIGKILL;
their archive verifies, imports and serves `truncate --archive`.

The tool's path comes from the environment variable LIGHTHOUSE_TOOL."""

import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

TOOL = os.environ.get("LIGHTHOUSE_TOOL", "")
FIXTURES = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "format1")
TIMEOUT = 60
EXIT_OK, EXIT_INVALID, EXIT_CORRUPTION, EXIT_REFUSED = 0, 4, 5, 6
# What an event is, apart from its checksum (which an upgrade recomputes).
CONTENT = ("id", "sequence", "timestamp_ns", "node_id", "type", "aggregate", "aggregate_version", "content_type",
           "metadata", "data", "data_base64", "idempotency_key", "schema_version")


def run(*args, stdin=b""):
    return subprocess.run([TOOL, *args], input=stdin, capture_output=True, timeout=TIMEOUT)


def content(events):
    return [{k: e.get(k) for k in CONTENT} for e in events]


class UpgradeTestCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="lighthouse-upgrade-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        shutil.copytree(FIXTURES, os.path.join(self.tmp, "f"))
        self.f = os.path.join(self.tmp, "f")
        self.store = os.path.join(self.f, "store")
        self.truncated = os.path.join(self.f, "store-truncated")
        self.archive = os.path.join(self.f, "archive")
        with open(os.path.join(self.f, "acks.jsonl"), encoding="utf-8") as f:
            self.acks = [json.loads(line) for line in f]
        with open(os.path.join(self.f, "events.jsonl"), encoding="utf-8") as f:
            self.lines = f.read().splitlines()

    def ok(self, *args, stdin=b""):
        r = run(*args, stdin=stdin)
        self.assertEqual(r.returncode, EXIT_OK, r)
        return r

    def query(self, store):
        return [json.loads(line) for line in self.ok("query", store, "--read-check", "full").stdout.splitlines()]

    def stats(self, store):
        return json.loads(self.ok("stats", store).stdout)

    def digest(self, path):
        with open(path, "rb") as f:
            return f.read()


class Format1Test(UpgradeTestCase):
    def test_a_format1_store_opens_read_only_and_verifies(self):
        before = self.digest(os.path.join(self.store, "data.mdb"))
        stats = self.stats(self.store)
        self.assertEqual(stats["format_version"], 1)
        self.assertTrue(stats["read_only"])
        self.assertEqual(stats["event_count"], 40)
        self.assertIn("0 problems", self.ok("verify", self.store).stdout.decode())
        events = self.query(self.store)
        self.assertEqual([e["id"] for e in events], [a["id"] for a in self.acks])
        self.assertTrue(all(e["schema_version"] == 1 and "trace_context" not in e for e in events))
        r = run("append", self.store, stdin=b'{"type":"New"}\n')
        self.assertEqual(r.returncode, EXIT_REFUSED, r)
        self.assertIn("lighthouse upgrade", r.stderr.decode())
        self.assertIn("format version 1", r.stderr.decode())
        self.assertEqual(self.digest(os.path.join(self.store, "data.mdb")), before, "a refused write wrote")

    def test_a_format1_archive_verifies_and_imports_into_an_empty_store(self):
        self.assertIn("ok: 1 segments, 40 events", self.ok("archive", "verify", self.archive).stdout.decode())
        copy = os.path.join(self.tmp, "copy")
        self.ok("import", self.archive, copy)
        self.assertEqual(self.stats(copy)["format_version"], 2)
        self.assertIn("0 problems", self.ok("verify", copy).stdout.decode())
        self.assertEqual(content(self.query(copy)), content(self.query(self.store)))
        # Into a store that holds events it would need the format-1 chain: refused.
        other = os.path.join(self.tmp, "other")
        self.ok("init", other)
        self.ok("append", other, stdin=b'{"type":"A"}\n')
        r = run("import", self.archive, other)
        self.assertEqual(r.returncode, EXIT_INVALID, r)
        self.assertIn("format 1", r.stderr.decode())


class UpgradeTest(UpgradeTestCase):
    def test_upgrade_keeps_every_event_and_recomputes_checksum_and_chain(self):
        before = self.query(self.store)
        report = json.loads(self.ok("upgrade", self.store).stdout)
        self.assertEqual((report["from_format"], report["to_format"], report["upgraded"], report["events"]),
                         (1, 2, True, 40))
        self.assertFalse(os.path.exists(os.path.join(self.store, ".upgrade")))
        after = self.query(self.store)
        self.assertEqual(content(after), content(before))
        self.assertTrue(all(a["checksum"] != b["checksum"] for a, b in zip(after, before)))
        self.assertIn("0 problems", self.ok("verify", self.store).stdout.decode())
        stats = self.stats(self.store)
        self.assertEqual((stats["format_version"], stats["node_id"]), (2, int(self.acks[0]["id"].split("_")[2])))
        # It writes now; idempotency keys and the consumer's checkpoint came along.
        self.ok("append", self.store, stdin=b'{"type":"After"}\n')
        retry = json.loads(self.ok("append", self.store, stdin=(self.lines[6] + "\n").encode()).stdout)
        self.assertEqual((retry["id"], retry.get("replayed")), (self.acks[6]["id"], True))
        tail = self.ok("tail", self.store, "--consumer", "fixture-consumer").stdout.decode().splitlines()
        self.assertEqual([json.loads(t)["type"] for t in tail], ["After"])
        # Upgrading again changes nothing.
        again = json.loads(self.ok("upgrade", self.store).stdout)
        self.assertEqual((again["from_format"], again["upgraded"]), (2, False))

    def test_the_old_archive_serves_truncation_and_the_next_export_starts_a_new_one(self):
        for store, cut in ((self.store, 21), (self.truncated, 31)):
            self.ok("upgrade", store)
            self.ok("truncate", store, "--archive", self.archive, "--before", self.acks[cut - 1]["id"])
            self.assertEqual(self.query(store)[0]["sequence"], cut)
            self.assertIn("0 problems", self.ok("verify", store).stdout.decode())
        # The truncated store's dropped idempotency keys still replay.
        retry = json.loads(self.ok("append", self.truncated, stdin=(self.lines[0] + "\n").encode()).stdout)
        self.assertEqual((retry["id"], retry.get("replayed")), (self.acks[0]["id"], True))
        r = run("export", self.store, self.archive)
        self.assertEqual(r.returncode, EXIT_INVALID, r)
        self.assertIn("new archive", r.stderr.decode())
        fresh = os.path.join(self.tmp, "fresh-archive")
        self.ok("export", self.truncated, fresh)
        self.assertIn("0 leftovers", self.ok("archive", "verify", fresh).stdout.decode())
        # Another store's format-1 archive is still refused.
        other = os.path.join(self.tmp, "other")
        self.ok("init", other)
        acks = self.ok("append", other, stdin=("\n".join(self.lines[:25]) + "\n").encode()).stdout.splitlines()
        r = run("truncate", other, "--archive", self.archive, "--before", json.loads(acks[10])["id"])
        self.assertEqual(r.returncode, EXIT_INVALID, r)
        self.assertIn("another store's archive", r.stderr.decode())

    def test_a_damaged_store_is_not_upgraded(self):
        data = os.path.join(self.store, "data.mdb")
        raw = bytearray(self.digest(data))
        at = raw.find(b"fixture fixture")
        self.assertGreater(at, 0)
        raw[at] ^= 0x20
        with open(data, "wb") as f:
            f.write(raw)
        r = run("upgrade", self.store)
        self.assertEqual(r.returncode, EXIT_CORRUPTION, r)
        self.assertIn("nothing is upgraded", r.stderr.decode())
        self.assertEqual(self.digest(data), bytes(raw))
        self.assertFalse(os.path.exists(os.path.join(self.store, ".upgrade")))

    def test_upgrade_refuses_a_store_another_process_has_open(self):
        tail = subprocess.Popen([TOOL, "tail", self.store, "--follow"], stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)
        try:
            self.assertTrue(tail.stdout.readline(), "tail printed nothing")  # it has the store open
            r = run("upgrade", self.store)
            self.assertEqual(r.returncode, 1, r)
            self.assertIn(b"open in process", r.stderr, r)
        finally:
            tail.kill()
            tail.wait(timeout=TIMEOUT)
        self.assertEqual(self.stats(self.store)["format_version"], 1)

    def test_sigkill_at_any_moment_leaves_the_old_store_or_the_new_one(self):
        reference = os.path.join(self.tmp, "reference")
        shutil.copytree(self.store, reference)
        self.ok("upgrade", reference)
        expected = content(self.query(reference))
        rng = random.Random(20)
        landed = {1: 0, 2: 0}
        deadline = time.monotonic() + 60
        attempt = 0
        while (min(landed.values()) < 3 or attempt < 30) and time.monotonic() < deadline:
            attempt += 1
            copy = os.path.join(self.tmp, f"kill-{attempt}")
            shutil.copytree(self.store, copy)
            p = subprocess.Popen([TOOL, "upgrade", copy], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(rng.uniform(0, 0.03))
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=TIMEOUT)
            if p.returncode != -signal.SIGKILL:
                continue  # it finished first
            fmt = self.stats(copy)["format_version"]
            landed[fmt] += 1
            self.assertIn("0 problems", self.ok("verify", copy).stdout.decode())
            if fmt == 1:
                self.assertEqual(content(self.query(copy)), content(self.query(self.store)))
            self.ok("upgrade", copy)  # picks up after whatever the kill left
            self.assertEqual(content(self.query(copy)), expected)
            self.assertFalse(os.path.exists(os.path.join(copy, ".upgrade")))
            shutil.rmtree(copy)
        # Kills landed before the swap and after it.
        self.assertGreaterEqual(landed[1], 3, landed)
        self.assertGreaterEqual(landed[2] + landed[1], 6, landed)


if __name__ == "__main__":
    unittest.main(verbosity=2)
