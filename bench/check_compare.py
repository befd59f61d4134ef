#!/usr/bin/env python3
"""Runs bench/compare at a tiny size and checks what it promises: one JSON row
{"workload", "system", "value", "unit"} per workload and system (the median
when --repeat runs a workload more than once), every workload on every
system, a printed table with the ratio Lighthouse / each peer, and a clear
refusal of a bad flag.

Usage: check_compare.py PATH/TO/compare"""
import json
import math
import subprocess
import sys
import tempfile
import unittest

COMPARE = sys.argv.pop(1) if len(sys.argv) > 1 else "build/bench/compare"
SYSTEMS = ["lighthouse", "lmdb", "sqlite", "rocksdb"]
WRITE = [
    ("1 batched append x1000, {d}", "events/s"),
    ("1 batched append x1000, {d}: bytes written", "bytes/event"),
    ("2 durable appends, 16 threads, {d}", "events/s"),
    ("2 durable appends, 16 threads, {d}: p99", "ms"),
    ("2 durable appends, 16 threads, {d}: bytes written", "bytes/event"),
    ("3 async appends, 4096 in flight, {d}", "events/s"),
    ("3 async appends, 4096 in flight, {d}: p99", "ms"),
    ("3 async appends, 4096 in flight, {d}: bytes written", "bytes/event"),
]
READ = [
    ("4 query by type, checksums on", "events/s"),
    ("4 query by type, checksums off", "events/s"),
    ("5 read a 1,000-event aggregate: p50", "ms"),
    ("5 read a 1,000-event aggregate: p99", "ms"),
    ("5 read a 1,000-event aggregate, checksums off: p50", "ms"),
    ("5 read a 1,000-event aggregate, checksums off: p99", "ms"),
    ("6 open the store, new process", "ms"),
    ("6 open the store, reopened in this process", "ms"),
    ("6 query over all events: memory growth", "MiB"),
]
# Lighthouse's rows only: its SHA-256 on every read (the peers have no
# second level of check), and its group commit's events per write
# transaction in workload 3 (the peers' commits are this program's own, not
# theirs to count).
LIGHTHOUSE_ONLY = [
    ("3 async appends, 4096 in flight, uniform: events per commit", "events"),
    ("3 async appends, 4096 in flight, lifecycle: events per commit", "events"),
    ("4 query by type, checksums full", "events/s"),
    ("5 read a 1,000-event aggregate, checksums full: p50", "ms"),
    ("5 read a 1,000-event aggregate, checksums full: p99", "ms"),
]


class CompareTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.TemporaryDirectory()
        out = cls.tmp.name + "/rows.json"
        cls.run_ = subprocess.run(
            [COMPARE, "--events", "2000", "--seconds", "0.2", "--repeat", "3",
             "--dir", cls.tmp.name + "/data", "--json", out],
            capture_output=True, text=True, timeout=240)
        cls.rows = json.load(open(out)) if cls.run_.returncode == 0 else []

    @classmethod
    def tearDownClass(cls):
        cls.tmp.cleanup()

    def test_exits_cleanly(self):
        self.assertEqual(self.run_.returncode, 0, self.run_.stderr[-2000:])

    def test_one_row_per_workload_and_system(self):
        expected = {(w.format(d=d), u) for d in ("uniform", "lifecycle") for w, u in WRITE} | set(READ)
        seen = {}
        for row in self.rows:
            self.assertEqual(sorted(row), ["system", "unit", "value", "workload"])
            key = (row["workload"], row["system"])
            self.assertNotIn(key, seen, "a workload reported twice for one system")
            seen[key] = row
        for workload, unit in list(expected) + LIGHTHOUSE_ONLY:
            for system in (SYSTEMS if (workload, unit) in expected else ["lighthouse"]):
                self.assertIn((workload, system), seen, f"{workload} missing for {system}")
                row = seen[(workload, system)]
                self.assertEqual(row["unit"], unit, workload)
                self.assertTrue(math.isfinite(row["value"]) and row["value"] >= 0, row)
                if unit in ("events/s", "ms"):
                    self.assertGreater(row["value"], 0, row)
        self.assertEqual(len(self.rows), len(expected) * len(SYSTEMS) + len(LIGHTHOUSE_ONLY))

    def test_repeats_are_reported_as_their_median(self):
        # Each write workload ran three times per system: every run is on
        # stderr (3 decimals), the JSON holds the median of the three.
        checked = 0
        for row in self.rows:
            if not row["workload"][0] in "123":
                continue
            runs = [float(line.split()[-2]) for line in self.run_.stderr.splitlines()
                    if line.startswith("  " + row["workload"] + " ")
                    and line.split()[-3] == row["system"] and line.split()[-1] == row["unit"]]
            self.assertEqual(len(runs), 3, (row, runs))
            self.assertAlmostEqual(row["value"], sorted(runs)[1], delta=0.0006, msg=(row, runs))
            checked += 1
        self.assertEqual(checked, 2 * 8 * len(SYSTEMS) + 2)

    def test_events_per_commit_is_a_group_of_the_workload(self):
        # Between one event a commit and the 4,096 in flight (the committer
        # takes what is queued, and never more than is in flight).
        for d in ("uniform", "lifecycle"):
            row = next(r for r in self.rows
                       if r["workload"] == f"3 async appends, 4096 in flight, {d}: events per commit")
            self.assertGreaterEqual(row["value"], 1, row)
            self.assertLessEqual(row["value"], 4096, row)

    def test_table_has_the_ratio_to_every_peer(self):
        lines = self.run_.stdout.splitlines()
        header = next(line for line in lines if line.startswith("workload"))
        for peer in SYSTEMS[1:]:
            self.assertIn("L/" + peer, header)
        value = {(r["workload"], r["system"]): r["value"] for r in self.rows}
        name = "4 query by type, checksums off"
        row = next(line for line in lines if line.startswith(name + " "))
        ratios = [float(cell.rstrip("x")) for cell in row[len(name):].split()[-3:]]
        for peer, ratio in zip(SYSTEMS[1:], ratios):
            expected = value[(name, "lighthouse")] / value[(name, peer)]
            self.assertAlmostEqual(ratio, expected, delta=0.006, msg=peer)

    def test_bad_flags_are_refused(self):
        for args in (["--systems", "postgres"], ["--repeat", "0"], ["--events", "10"], ["--bogus"],
                     ["--workloads", "7"], ["--workloads", "x"], ["--workloads", ""],
                     ["--systems", "lmdb,lmdb"], ["--systems", ""],
                     # tracing is a system of its own, lighthouse-traced
                     ["--systems", "lighthouse", "--trace-sampling", "1"],
                     ["--systems", "lighthouse", "--trace-sink", "discard"],
                     ["--systems", "lighthouse-traced", "--trace-sampling", "1.5"],
                     ["--systems", "lighthouse-traced", "--trace-sink", "jaeger"]):
            with self.subTest(args=args):
                r = subprocess.run([COMPARE, "--dir", self.tmp.name + "/bad"] + args,
                                   capture_output=True, text=True, timeout=60)
                self.assertNotEqual(r.returncode, 0)
                self.assertTrue(r.stderr.strip() or r.stdout.strip())


class TracedCompareTest(unittest.TestCase):
    """lighthouse-traced beside lighthouse: the same store with tracing at
    100 %, its spans counted, and each write workload's ratio traced /
    untraced given round by round and as the median of the rounds."""

    def run_traced(self, sink):
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run(
                [COMPARE, "--systems", "lighthouse,lighthouse-traced", "--workloads", "3", "--seconds", "0.2",
                 "--repeat", "3", "--trace-sink", sink, "--dir", tmp + "/data", "--json", tmp + "/rows.json"],
                capture_output=True, text=True, timeout=120)
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            with open(tmp + "/rows.json") as f:
                return r, json.load(f)

    def test_ratio_per_round_and_its_median(self):
        r, rows = self.run_traced("discard")
        value = {(row["workload"], row["system"]): row["value"] for row in rows}
        spans = [line for line in r.stdout.splitlines() if line.startswith("tracing at 1 into a discarding sink:")]
        self.assertEqual(len(spans), 1, r.stdout)
        self.assertGreater(int(spans[0].split()[-2]), 0)
        for d in ("uniform", "lifecycle"):
            w = f"3 async appends, 4096 in flight, {d}"
            runs = {}
            for system in ("lighthouse", "lighthouse-traced"):
                runs[system] = [float(line.split()[-2]) for line in r.stderr.splitlines()
                                if line.startswith("  " + w + " ") and line.split()[-3] == system
                                and line.split()[-1] == "events/s"]
                self.assertEqual(len(runs[system]), 3, (system, runs))
            ratios = sorted(t / p for p, t in zip(runs["lighthouse"], runs["lighthouse-traced"]))
            self.assertAlmostEqual(value[(w + ": traced/untraced, median of rounds", "lighthouse-traced")],
                                   ratios[1], delta=0.002)
            line = next(line for line in r.stdout.splitlines() if line.startswith("  " + w + ":"))
            self.assertIn("median", line)

    def test_exported_spans_are_reported(self):
        r, rows = self.run_traced("otlp")
        value = {(row["workload"], row["system"]): row["value"] for row in rows}
        self.assertGreater(value[("tracing: spans exported", "lighthouse-traced")], 0)
        self.assertIn(("tracing: spans dropped", "lighthouse-traced"), value)
        header = next(line for line in r.stdout.splitlines() if line.startswith("workload"))
        self.assertIn("L/lighthouse-traced", header)


if __name__ == "__main__":
    unittest.main(verbosity=2)
