"""Damage to the LMDB file itself, one page class at a time, through the
`lighthouse` tool: the structural check finds it (exit 5, naming the page),
writers refuse the marked store, no command dies of a signal, and salvage
builds a new store from what can still be read, saying exactly what was
lost.

The tool's path comes from the environment variable LIGHTHOUSE_TOOL."""

import base64
import json
import os
import shutil
import signal
import struct
import subprocess
import tempfile
import time
import unittest

import lmdb_pages

TOOL = os.environ.get("LIGHTHOUSE_TOOL", "")
TIMEOUT = 120
EXIT_OK, EXIT_CORRUPTION = 0, 5
READ_COMMANDS = (["stats"], ["query", "--limit", "100000"], ["query", "--type", "T"], ["query", "--aggregate", "a3"],
                 ["tail"], ["sla"], ["health"], ["metrics"])


def run(*args, stdin=b""):
    r = subprocess.run([TOOL, *args], input=stdin, capture_output=True, timeout=TIMEOUT)
    r.stderr.decode("utf-8", "strict")  # every message is valid UTF-8
    return r


def lines(*items):
    return ("\n".join(json.dumps(i) for i in items) + "\n").encode()


def sequences(store):
    r = run("query", store, "--limit", "1000000", "--no-verify")
    return [json.loads(line)["sequence"] for line in r.stdout.splitlines()]


class Pristine:
    """One store of several trees, overflow pages and a free list, built
    once for the whole module and copied for each damage."""
    tmp = None
    store = None
    events = None  # sequence -> the event's JSON line

    @classmethod
    def get(cls):
        if cls.store is None:
            cls.tmp = tempfile.TemporaryDirectory(prefix="lighthouse-structure-")
            cls.store = os.path.join(cls.tmp.name, "pristine")
            assert run("init", cls.store).returncode == EXIT_OK
            for batch in range(12):  # many transactions: a free list
                items = [{"type": "T" if i % 3 else "U", "aggregate": f"a{i % 7}", "data": {"i": i, "batch": batch},
                          "idempotency_key": f"key-{batch}-{i}"} for i in range(250)]
                # A few events larger than a page: overflow pages.
                items.append({"type": "Big", "content_type": "bytes",
                              "data_base64": base64.b64encode(os.urandom(9000)).decode()})
                r = run("append", cls.store, stdin=lines(*items))
                assert r.returncode == EXIT_OK, r.stderr
            assert run("tail", cls.store, "--consumer", "projector").returncode == EXIT_OK  # a checkpoint
            r = run("query", cls.store, "--limit", "1000000")
            cls.events = {json.loads(l)["sequence"]: json.loads(l) for l in r.stdout.splitlines()}
        return cls.store


class StructureTestCase(unittest.TestCase):
    def setUp(self):
        pristine = Pristine.get()
        self._tmp = tempfile.TemporaryDirectory(prefix="lighthouse-damaged-")
        self.addCleanup(self._tmp.cleanup)
        self.tmp = self._tmp.name
        self.store = os.path.join(self.tmp, "store")
        shutil.copytree(pristine, self.store)
        self.data = os.path.join(self.store, "data.mdb")
        self.file = lmdb_pages.DataFile(self.data)
        self.all_events = Pristine.events

    def assert_no_signal(self, args, allowed=(EXIT_OK, EXIT_CORRUPTION)):
        r = run(*args)
        self.assertGreaterEqual(r.returncode, 0, f"{args} died of signal {-r.returncode}: {r.stderr!r}")
        self.assertIn(r.returncode, allowed, (args, r.stderr))
        return r

    def assert_found(self, page_number, what):
        """verify reports the damage as corruption, naming the page; every
        command then ends cleanly, writers refuse the marked store."""
        r = run("verify", self.store)
        self.assertEqual(r.returncode, EXIT_CORRUPTION, f"{what}: {r.stdout!r} {r.stderr!r}")
        out = r.stdout.decode()
        if page_number is not None:
            self.assertIn(f"page {page_number}", out, what)
        self.assertIn("structure", out, what)
        for args in READ_COMMANDS:
            self.assert_no_signal([args[0], self.store, *args[1:]])
        export = os.path.join(self.tmp, "export")
        self.assert_no_signal(["export", self.store, export])
        backup = self.assert_no_signal(["backup", self.store, os.path.join(self.tmp, "backup")],
                                       allowed=(EXIT_CORRUPTION,))
        self.assertIn("damaged", backup.stderr.decode())
        repair = self.assert_no_signal(["repair", self.store], allowed=(EXIT_CORRUPTION,))
        self.assertIn("salvage", repair.stdout.decode() + repair.stderr.decode())
        before = os.path.getsize(self.data), open(self.data, "rb").read()
        append = run("append", self.store, stdin=lines({"type": "T", "data": {}}))
        self.assertEqual(append.returncode, EXIT_CORRUPTION, append.stderr)
        self.assertIn("damaged", append.stderr.decode())
        self.assertEqual(open(self.data, "rb").read(), before[1], "a refused append wrote to the file")
        salvaged = os.path.join(self.tmp, "salvaged")
        self.assert_no_signal(["salvage", self.store, salvaged])
        self.assertEqual(run("verify", salvaged).returncode, EXIT_OK)


class PageClassTest(StructureTestCase):
    """A single flipped byte, by page class: each one found, none a crash."""

    def damage_each(self, pages, offsets, what):
        self.assertTrue(pages, f"the pristine store has no {what} page")
        for name, offset in offsets:
            with self.subTest(damage=f"{what}: {name}"):
                self.setUp()
                page = pages[len(pages) // 2]
                at = self.file.offset(page.number) + offset(page)
                lmdb_pages.flip(self.data, at, 0x10)
                self.assert_found(page.number, f"{what} {page}: {name}")

    def test_branch_pages(self):
        pages = self.file.of("branch", "events")
        self.damage_each(pages, [("page number", lambda p: 1), ("flags", lambda p: 10), ("lower", lambda p: 12),
                                 ("first node offset", lambda p: 17), ("a child's page number",
                                                                       lambda p: self.node(p, 1) + 2)],
                         "branch of events")

    def test_leaf_pages_of_each_database(self):
        for database in ("events", "by_type", "by_aggregate", "by_idempotency_key", "meta", "main"):
            pages = self.file.of("leaf", database)
            self.damage_each(pages, [("flags", lambda p: 10), ("upper", lambda p: 15),
                                     ("node offset", lambda p: 16), ("key size", lambda p: self.node(p, 0) + 6)],
                             f"leaf of {database}")

    def test_a_flipped_bit_in_a_leaf_of_events_is_not_a_crash(self):
        """Issue 19's second finding: one bit in a leaf of `events` crashed
        verify, query, repair, backup and export with SIGSEGV."""
        page = self.file.of("leaf", "events")[-1]
        for bit in (0x01, 0x08, 0x80):
            with self.subTest(bit=bit):
                self.setUp()
                lmdb_pages.flip(self.data, self.file.offset(page.number) + 16 + 1, bit)  # a node offset's high byte
                self.assert_found(page.number, f"{page}: bit {bit:#x} of a node offset")

    def test_a_value_in_a_set_of_duplicates_is_index_damage_that_repair_mends(self):
        pages = self.file.of("leaf2", "by_type")
        self.assertTrue(pages, "the pristine store has no set of duplicates in its own pages")
        lmdb_pages.flip(self.data, self.file.offset(pages[0].number) + 16 + 19, 0x01)  # an event key's node id
        r = run("verify", self.store)
        self.assertEqual(r.returncode, EXIT_CORRUPTION, r.stdout)
        self.assertIn(b"by_type", r.stdout)
        self.assertNotIn(b"structure", r.stdout)
        self.assertEqual(run("repair", self.store).returncode, EXIT_OK)
        self.assertEqual(run("verify", self.store).returncode, EXIT_OK)

    def test_overflow_pages(self):
        pages = self.file.of("overflow", "events")  # the first page of each run
        self.damage_each(pages, [("page number", lambda p: 0), ("page count", lambda p: 13)], "overflow of events")

    def test_free_list_pages(self):
        self.damage_each(self.file.of("free list"), [("flags", lambda p: 10), ("node offset", lambda p: 16)],
                         "free list")

    def test_a_free_page_is_not_damage(self):
        free = self.file.of("free")
        self.assertTrue(free)
        for page in free:
            lmdb_pages.flip(self.data, self.file.offset(page.number) + 100, 0xFF)
        r = run("verify", self.store)
        self.assertEqual(r.returncode, EXIT_OK, r.stdout)
        self.assertIn(f"ok: {self.file.meta['last_page'] + 1} pages", r.stdout.decode())

    def node(self, page, index):
        offsets = self.file.leaf_node_offsets(page.number)
        return offsets[min(index, len(offsets) - 1)] - self.file.offset(page.number)


class FreeListTest(StructureTestCase):
    def test_a_free_list_that_lists_a_live_page_is_found_and_obeyed(self):
        """Issue 19's first finding: one flipped byte in the free list passed
        verify, and the next write reused live pages."""
        leaf = self.file.of("free list")[0]
        entry = self.file.free_list_entry(leaf.number)
        self.assertIsNotNone(entry)
        at, _listed = entry
        live = self.file.of("leaf", "events")[0].number
        lmdb_pages.write_u64(self.data, at, live)
        r = run("verify", self.store)
        self.assertEqual(r.returncode, EXIT_CORRUPTION, r.stdout)
        self.assertIn(f"page {live}", r.stdout.decode())
        self.assertIn("free list", r.stdout.decode())
        self.assertTrue(os.path.exists(os.path.join(self.store, "lighthouse-damaged")))
        # Every writer obeys the mark: none reuses the live page.
        for args, stdin in ((["append", self.store], lines({"type": "T"})), (["health", self.store, "--enter-emergency", "x"], b""),
                            (["compact", self.store], b"")):
            r = run(*args, stdin=stdin)
            self.assertEqual(r.returncode, EXIT_CORRUPTION, (args, r.stderr))
            self.assertIn("damaged", r.stderr.decode())
        self.assertEqual(sequences(self.store), sorted(self.all_events))
        # The tree is whole: salvage loses nothing.
        dest = os.path.join(self.tmp, "salvaged")
        r = run("salvage", self.store, dest)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        report = json.loads(r.stdout)
        self.assertTrue(report["complete"])
        self.assertEqual(report["events_salvaged"], len(self.all_events))
        self.assertEqual(run("verify", dest).returncode, EXIT_OK)
        got = {json.loads(l)["sequence"]: json.loads(l) for l in run("query", dest, "--limit", "1000000").stdout.splitlines()}
        self.assertEqual(got, self.all_events)
        # The damaged store keeps its mark; the salvaged one takes writes.
        self.assertTrue(os.path.exists(os.path.join(self.store, "lighthouse-damaged")))
        self.assertEqual(run("append", dest, stdin=lines({"type": "T"})).returncode, EXIT_OK)


class MetaPageTest(StructureTestCase):
    def test_a_damaged_meta_page_is_corruption_for_every_command(self):
        """Issue 19's fifth finding: exit 1 with "Cannot allocate memory"."""
        current = 1 if self.file._meta(1)["txnid"] > self.file._meta(0)["txnid"] else 0
        for name, offset, mask in (("magic", 16, 0x01), ("map size", 32 + 7, 0x40), ("last page", 136 + 3, 0x01),
                                   ("main root", 128 + 4, 0x01), ("page size", 40 + 1, 0x01)):
            with self.subTest(field=name):
                self.setUp()
                lmdb_pages.flip(self.data, current * self.file.page_size + offset, mask)
                for args in (["stats"], ["verify"], ["query"]):
                    r = run(args[0], self.store)
                    self.assertEqual(r.returncode, EXIT_CORRUPTION, (name, args, r.stderr))
                    err = r.stderr.decode() + r.stdout.decode()
                    self.assertIn("meta page", err, (name, args))
                    self.assertNotIn("Cannot allocate memory", err)
                r = run("append", self.store, stdin=lines({"type": "T"}))
                self.assertEqual(r.returncode, EXIT_CORRUPTION, (name, r.stderr))


class EventKeyTest(StructureTestCase):
    def test_a_damaged_event_key_is_corruption(self):
        """Issue 19's fifth finding: exit 4 for a damaged key."""
        page = self.file.of("leaf", "events")[1]
        node = self.file.leaf_node_offsets(page.number)[3]
        lmdb_pages.flip(self.data, node + 8 + 19, 0x01)  # the node id's last byte: keys stay in order
        r = run("verify", self.store)
        self.assertEqual(r.returncode, EXIT_CORRUPTION, r.stdout)
        r = run("query", self.store, "--limit", "1000000")
        self.assertEqual(r.returncode, EXIT_CORRUPTION, r.stderr)


class SalvageTest(StructureTestCase):
    def salvage(self):
        dest = os.path.join(self.tmp, "salvaged")
        r = run("salvage", self.store, dest)
        self.assertIn(r.returncode, (EXIT_OK, EXIT_CORRUPTION), r.stderr)
        return dest, json.loads(r.stdout), r.returncode

    def after_gap(self, path):
        """The sequences of the records in a salvage's after-gap file."""
        found = []
        with open(path, "rb") as f:
            data = f.read()
        at = 0
        while at < len(data):
            size, = struct.unpack_from(">I", data, at)
            key = data[at + 4:at + 24]
            found.append(lmdb_pages.event_sequence(key))
            at += 4 + 20 + size
        self.assertEqual(at, len(data))
        return found

    def check_report(self, dest, report, damaged_sequences):
        """The report says exactly what the new store holds and what it lost."""
        held = sequences(dest)
        everything = sorted(self.all_events)
        self.assertEqual(run("verify", dest).returncode, EXIT_OK)
        self.assertEqual(held, everything[:len(held)], "the new store is not a prefix of the old history")
        self.assertEqual(report["events_salvaged"], len(held))
        lost = [s for r in report["lost"] for s in range(r["first"], r["last"] + 1)]
        self.assertEqual(report["events_lost"], len(lost))
        after = self.after_gap(report["after_gap_file"]) if report["events_after_gap"] else []
        self.assertEqual(report["events_after_gap"], len(after))
        self.assertEqual(sorted(held + lost + after), everything, "salvaged + lost + after the gap != the old store")
        self.assertTrue(set(lost) <= set(damaged_sequences), f"lost {lost} outside the damage {damaged_sequences}")
        got = {json.loads(l)["sequence"]: json.loads(l) for l in run("query", dest, "--limit", "1000000").stdout.splitlines()}
        for s, e in got.items():
            self.assertEqual(e, self.all_events[s])
        return lost, after

    def node_of(self, sequence):
        """The file offset of the live leaf node of event `sequence`."""
        for page in self.file.of("leaf", "events"):
            for key, node in zip(page.keys, self.file.leaf_node_offsets(page.number)):
                if lmdb_pages.event_sequence(key) == sequence:
                    return node
        self.fail(f"no leaf holds event {sequence}")

    def stale_copy(self):
        """An event of which a free page still holds an old, whole copy: its
        sequence (the node's bytes are the live node's)."""
        live = {}
        for page in self.file.of("leaf", "events"):
            for node in self.file.leaf_node_offsets(page.number):
                live[self.file.bytes[node:node + 8 + 20]] = node
        for page in self.file.of("free"):
            pgno, flags, lower, upper = self.file.header(page.number)
            if pgno != page.number or flags != lmdb_pages.P_LEAF or lower < 16 or lower > upper:
                continue
            for node in self.file.leaf_node_offsets(page.number):
                head = self.file.bytes[node:node + 8 + 20]
                size = struct.unpack_from("<I", head, 0)[0] if len(head) == 28 else 0
                if head in live and size < 2000 and self.file.bytes[node:node + 28 + size] == \
                        self.file.bytes[live[head]:live[head] + 28 + size]:
                    return lmdb_pages.event_sequence(head[8:])
        return None

    def test_a_damaged_record_of_the_last_commit_is_lost_and_the_rest_after_the_gap(self):
        # Written once, by the last commit: no old copy of it anywhere.
        victim = max(self.all_events) - 100
        lmdb_pages.flip(self.data, self.node_of(victim) + 8 + 20 + 40, 0x01)  # its checksum fails
        self.assertEqual(run("verify", self.store).returncode, EXIT_CORRUPTION)
        dest, report, rc = self.salvage()
        self.assertEqual(rc, EXIT_CORRUPTION)
        self.assertFalse(report["complete"])
        self.assertEqual(report["records_damaged"], 1)
        self.assertTrue(report["scanned_pages"])
        lost, after = self.check_report(dest, report, [victim])
        self.assertEqual(lost, [victim])
        self.assertEqual(after, [s for s in sorted(self.all_events) if s > victim])
        self.assertEqual(report["lost"], [{"first": victim, "last": victim}])

    def test_a_damaged_record_is_taken_from_an_old_copy_in_a_free_page(self):
        victim = self.stale_copy()
        self.assertIsNotNone(victim, "the pristine store has no old copy of an event in a free page")
        lmdb_pages.flip(self.data, self.node_of(victim) + 8 + 20 + 40, 0x01)
        dest, report, rc = self.salvage()
        self.assertEqual(rc, EXIT_OK, report)
        self.assertTrue(report["complete"])
        self.assertEqual(report["records_damaged"], 1)
        self.check_report(dest, report, [victim])

    def test_an_unreadable_leaf_page_loses_at_most_its_events(self):
        page = self.file.of("leaf", "events")[3]
        on_page = [lmdb_pages.event_sequence(k) for k in page.keys]
        with open(self.data, "r+b") as f:  # the node offsets: garbage
            f.seek(self.file.offset(page.number) + 16)
            f.write(b"\xff" * 64)
        self.assertEqual(run("verify", self.store).returncode, EXIT_CORRUPTION)
        dest, report, rc = self.salvage()
        lost, _after = self.check_report(dest, report, on_page)
        self.assertTrue(report["scanned_pages"])
        self.assertEqual(rc, EXIT_OK if not lost and not report["events_after_gap"] else EXIT_CORRUPTION)

    def test_salvage_refuses_a_destination_that_is_not_new_or_empty(self):
        dest = os.path.join(self.tmp, "full")
        os.makedirs(dest)
        open(os.path.join(dest, "x"), "w").close()
        r = run("salvage", self.store, dest)
        self.assertEqual(r.returncode, 4, r.stderr)
        r = run("salvage", self.store, os.path.join(self.store, "inside"))
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertEqual(os.listdir(dest), ["x"])


class FaultHandlerTest(StructureTestCase):
    def follow(self):
        last = str(max(self.all_events))
        p = subprocess.Popen([TOOL, "tail", self.store, "--from-sequence", last, "--follow"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE)
        self.addCleanup(lambda: p.poll() is None and p.kill())
        self.assertTrue(p.stdout.readline(), "tail printed nothing")
        return p

    def test_a_fault_inside_the_store_map_is_exit_5_with_a_message(self):
        p = self.follow()
        # The file shrinks under the reader: its next read of a page past
        # the end raises SIGBUS inside the store's map.
        os.truncate(self.data, 2 * self.file.page_size)
        run("append", self.store, stdin=lines({"type": "T"}))  # refused or not: the reader looks again
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.fail("tail did not read the shrunken file")
        err = p.stderr.read().decode("utf-8", "strict")
        self.assertEqual(p.returncode, EXIT_CORRUPTION, err)
        self.assertIn(f"store '{self.store}' is damaged", err)
        self.assertIn("lighthouse verify", err)

    def test_any_other_fault_stays_a_crash(self):
        p = self.follow()
        p.send_signal(signal.SIGSEGV)
        p.wait(timeout=20)
        self.assertEqual(p.returncode, -signal.SIGSEGV)


class StructureCheckOptionTest(StructureTestCase):
    def test_check_refuses_a_damaged_store_before_writing(self):
        page = self.file.of("free list")[0]
        lmdb_pages.flip(self.data, self.file.offset(page.number) + 10, 0x10)
        # With --check the write commands read every page before LMDB
        # does: they refuse, and write nothing.
        before = open(self.data, "rb").read()
        for args, stdin in ((["append", self.store, "--check"], lines({"type": "T"})),
                            (["tail", self.store, "--check"], b""),
                            (["health", self.store, "--check"], b"")):
            r = run(*args, stdin=stdin)
            self.assertEqual(r.returncode, EXIT_CORRUPTION, (args, r.stderr))
            self.assertIn(f"page {page.number}", r.stderr.decode(), args)
        self.assertEqual(open(self.data, "rb").read(), before)
        self.assertTrue(os.path.exists(os.path.join(self.store, "lighthouse-damaged")))

    def test_check_passes_a_whole_store(self):
        r = run("append", self.store, "--check", stdin=lines({"type": "T"}))
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
