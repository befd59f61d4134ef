"""Replication into NATS JetStream (docs/replication.md), against a real
three-node cluster of nats-server processes on loopback ports
(nats_cluster.py), started and stopped by the tests. The tool's path comes
from LIGHTHOUSE_TOOL; every process and wait is bounded in time.
"""

import http.client
import json
import os
import random
import shutil
import signal
import subprocess
import tempfile
import threading
import time
import unittest

from nats_cluster import NatsCluster, publish_raw
from test_serve import Server

TOOL = os.environ.get("LIGHTHOUSE_TOOL", "")
TIMEOUT = 60


def tool(*args, stdin=b"", timeout=TIMEOUT):
    return subprocess.run([TOOL, *args], input=stdin, capture_output=True, timeout=timeout)


def events(n, start=0, prefix="order"):
    return "".join(json.dumps({"type": "order.placed", "aggregate": f"{prefix}-{i % 97}", "data": {"i": i}}) + "\n"
                   for i in range(start, start + n)).encode()


def status_lines(out):
    return [json.loads(line) for line in out.decode().splitlines() if line.startswith("{")]


class ReplicationTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.cluster = NatsCluster().__enter__()

    @classmethod
    def tearDownClass(cls):
        cls.cluster.close()

    def setUp(self):
        self.dir = tempfile.mkdtemp(prefix="lh-repl-")
        self.stream = "s" + self.id().rsplit(".", 1)[1][5:30].replace("_", "")
        # Nodes a failed test left stopped: all started before any is waited
        # for (one node alone has no quorum to elect a meta leader with).
        stopped = [i for i in range(self.cluster.n) if self.cluster.procs[i] is None]
        for i in stopped:
            self.cluster.start(i, wait=False)
        if stopped:
            self.cluster.wait_ready()

    def tearDown(self):
        shutil.rmtree(self.dir, ignore_errors=True)

    def store(self, name, n=0):
        path = os.path.join(self.dir, name)
        r = tool("init", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        if n:
            self.append(path, n)
        return path

    def append(self, path, n, start=0):
        r = tool("append", path, stdin=events(n, start))
        self.assertEqual(r.returncode, 0, r.stderr)

    def replicate(self, path, *args, expect=0):
        r = tool("replicate", path, "--nats", self.cluster.urls, "--stream", self.stream, "--until-caught-up",
                 "--status-interval", "0", *args)
        self.assertEqual(r.returncode, expect, r.stderr.decode() + r.stdout.decode())
        return status_lines(r.stdout)[-1], r.stderr.decode()

    def replica(self, path, *args, expect=0):
        r = tool("replica", path, "--nats", self.cluster.urls, "--stream", self.stream, "--until-caught-up",
                 "--status-interval", "0", "--wait-seconds", "20", *args)
        self.assertEqual(r.returncode, expect, r.stderr.decode() + r.stdout.decode())
        return status_lines(r.stdout)[-1], r.stderr.decode()

    def listing(self, path):
        r = tool("query", path)
        self.assertEqual(r.returncode, 0, r.stderr)
        return r.stdout

    def stats(self, path):
        return json.loads(tool("stats", path).stdout)

    def wait_for(self, check, seconds, what, every=0.05):
        """Polls `check` until it holds; fails after `seconds` saying `what`."""
        deadline = time.monotonic() + seconds
        while not check():
            self.assertLess(time.monotonic(), deadline, what() if callable(what) else what)
            time.sleep(every)

    def wait_stream_last(self, n, seconds):
        self.wait_for(lambda: (self.stream_state() or {}).get("last_seq") == n, seconds,
                      f"the stream did not reach sequence {n}")

    def stream_state(self):
        info = self.cluster.stream_info(self.stream)
        return info["state"] if info else None

    def assert_exact_replica(self, primary, replica, count):
        a, b = self.listing(primary), self.listing(replica)
        self.assertEqual(len(a.splitlines()), count)
        self.assertEqual(a, b, "the replica's listing differs from the primary's")
        r = tool("verify", replica)
        self.assertEqual(r.returncode, 0, r.stdout + r.stderr)
        state = self.stream_state()
        self.assertEqual((state["first_seq"], state["last_seq"], state["messages"]), (1, count, count))

    # --- the promises ------------------------------------------------------

    def test_100000_events_replicate_with_the_streams_sequences_equal_to_the_stores(self):
        primary = self.store("p", 100_000)
        # 100,000 appended; a slow machine (a sanitizer build) may add the
        # store's own `$health.*` events (the appender's SLA, the replicator's
        # lag), which are replicated like any other.
        status, _ = self.replicate(primary)
        n = self.stats(primary)["last_sequence"]
        self.assertGreaterEqual(n, 100_000)
        self.assertEqual((status["confirmed"], status["persisted"], status["lag"]), (n, n, 0))
        state = self.stream_state()
        self.assertEqual((state["first_seq"], state["last_seq"], state["messages"]), (1, n, n))
        info = self.cluster.stream_info(self.stream)
        self.assertEqual(len(info["cluster"]["replicas"]), 2, "R=3: a leader and two replicas")
        # The replica checks each message's stream sequence against its event's.
        replica = os.path.join(self.dir, "r")
        status, _ = self.replica(replica)
        self.assertEqual(status["applied"], n)
        self.assert_exact_replica(primary, replica, n)
        # Running again publishes nothing: the confirmed position was stored.
        status, _ = self.replicate(primary)
        self.assertEqual(status["published"], 0)

    def test_a_replica_refuses_appends_naming_the_primary_and_writes_no_events_of_its_own(self):
        primary = self.store("p", 300)
        self.replicate(primary)
        replica = os.path.join(self.dir, "r")
        self.replica(replica)
        r = tool("append", replica, stdin=events(1))
        self.assertEqual(r.returncode, 6, r.stderr)
        self.assertIn(f"is a read replica of stream '{self.stream}' at nats://", r.stderr.decode())
        self.assertIn("lighthouse promote", r.stderr.decode())
        r = tool("health", replica, "--enter-emergency", "testing the replica's own health")
        self.assertEqual(r.returncode, 0, r.stderr)
        # An emergency on a replica is recorded in its meta, not as an event.
        self.assertEqual(self.stats(replica)["event_count"], 300)
        self.assert_exact_replica(primary, replica, 300)
        # The primary goes on; the replica follows from where it was.
        self.append(primary, 50, 300)
        self.replicate(primary)
        status, _ = self.replica(replica)
        self.assertEqual(status["applied"], 350)
        self.assert_exact_replica(primary, replica, 350)
        # A replica has no replicator.
        r = tool("replicate", replica, "--nats", self.cluster.urls, "--stream", self.stream)
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("is a read replica", r.stderr.decode())

    def test_a_message_planted_out_of_turn_stops_the_replicator_and_the_store_says_why(self):
        primary = self.store("p", 100)
        self.replicate(primary)
        publish_raw(self.cluster.url(1), "lighthouse." + self.stream, b"not an event")
        self.append(primary, 10, 100)
        status, err = self.replicate(primary, expect=6)
        self.assertEqual(status["state"], "stopped")
        self.assertEqual(status["confirmed"], 100)
        self.assertFalse(status["fenced"])
        self.assertIn("at sequence 101 a message that is not a Lighthouse event", status["stopped_reason"])
        self.assertIn("planted out of turn", err)
        self.assertEqual(self.stream_state()["last_seq"], 101, "nothing published after the planted message")
        health = json.loads(tool("health", primary).stdout)
        self.assertEqual(health["state"], "emergency")
        self.assertIn("planted out of turn", json.dumps(health))

    def test_a_promoted_replica_continues_the_stream_and_fences_the_stale_primary(self):
        primary = self.store("p", 200)
        self.replicate(primary)
        replica = os.path.join(self.dir, "r")
        self.replica(replica)
        # The primary takes appends its replicator has not sent (async mode) ...
        self.append(primary, 7, 200)
        # ... when the replica is promoted.
        r = tool("promote", replica, "--nats", self.cluster.urls, "--stream", self.stream, "--status-interval", "0")
        self.assertEqual(r.returncode, 0, r.stderr)
        report = status_lines(r.stdout)[0]
        self.assertEqual(report["stream_last"], 200)
        self.assertEqual(self.stream_state()["last_seq"], 201, "the promoted event moves the stream on")
        promoted = json.loads(tool("get", replica, report["promoted_event"]).stdout)
        self.assertEqual(promoted["type"], "$replication.promoted")
        # The new primary takes appends and replicates them.
        self.append(replica, 20, 1000)
        status, _ = self.replicate(replica)
        self.assertEqual(status["confirmed"], 221)
        # The stale primary comes back: fenced, in emergency, its 7 events named.
        status, err = self.replicate(primary, expect=6)
        self.assertTrue(status["fenced"])
        self.assertEqual(status["unreplicated"], 7)
        self.assertIn("fenced", err)
        self.assertIn("promotion of a replica", err)
        self.assertIn("events 201 to 207 (7)", err)
        self.assertIn("lighthouse replica", err)
        r = tool("append", primary, stdin=events(1))
        self.assertEqual(r.returncode, 6)
        self.assertIn("emergency", r.stderr.decode())
        self.assertEqual(self.stream_state()["last_seq"], 221, "the stale primary published nothing")
        # A new replica of the stream is the new primary, exactly.
        again = os.path.join(self.dir, "r2")
        self.replica(again)
        self.assert_exact_replica(replica, again, 221)
        # The stale primary cannot follow the stream either: its log forked.
        r = tool("replica", primary, "--nats", self.cluster.urls, "--stream", self.stream, "--until-caught-up")
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("not a prefix of the stream", r.stderr.decode())

    def test_sigkill_of_the_streams_leader_node_during_replication_loses_and_duplicates_nothing(self):
        primary = self.store("p", 30_000)
        self.replicate(primary, "--window", "64")  # creates the stream; then more events
        self.append(primary, 30_000, 30_000)
        proc = subprocess.Popen([TOOL, "replicate", primary, "--nats", self.cluster.urls, "--stream", self.stream,
                                 "--until-caught-up", "--status-interval", "0", "--timeout", "2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        time.sleep(0.3)
        leader = self.cluster.stream_leader(self.stream)
        self.cluster.kill(leader)
        out, err = proc.communicate(timeout=90)
        self.assertEqual(proc.returncode, 0, err)
        # 60,000 appended; a slow machine (a sanitizer build) may add `$health.*` events.
        n = self.stats(primary)["last_sequence"]
        self.assertGreaterEqual(n, 60_000)
        self.assertEqual(status_lines(out)[-1]["confirmed"], n)
        self.cluster.start(leader)
        self.cluster.wait_stream_on_every_node(self.stream, n)
        replica = os.path.join(self.dir, "r")
        self.replica(replica)
        self.assert_exact_replica(primary, replica, n)

    def test_sigkill_of_the_replicator_and_of_the_primary_at_random_moments_keeps_the_stream_exact(self):
        primary = self.store("p", 10)
        rng = random.Random(23)
        appended = 10
        for cycle in range(20):
            writer = subprocess.Popen([TOOL, "append", primary], stdin=subprocess.PIPE,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            replicator = subprocess.Popen([TOOL, "replicate", primary, "--nats", self.cluster.urls,
                                           "--stream", self.stream, "--status-interval", "0"],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            try:
                writer.stdin.write(events(2000, appended))
                writer.stdin.close()
            except BrokenPipeError:
                pass
            time.sleep(rng.uniform(0.05, 0.6))
            for p in (writer, replicator) if cycle % 2 else (replicator, writer):
                p.send_signal(signal.SIGKILL)
            writer.wait(timeout=10)
            replicator.wait(timeout=10)
            appended += 2000
        status, _ = self.replicate(primary)
        count = self.stats(primary)["event_count"]
        self.assertEqual(status["confirmed"], count)
        replica = os.path.join(self.dir, "r")
        self.replica(replica)
        self.assert_exact_replica(primary, replica, count)

    def test_appends_go_on_while_the_cluster_is_unreachable_and_replication_catches_up(self):
        primary = self.store("p", 100)
        proc = subprocess.Popen([TOOL, "replicate", primary, "--nats", self.cluster.urls, "--stream", self.stream,
                                 "--status-interval", "0.2", "--timeout", "1"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.wait_stream_last(100, 30)
            for i in range(self.cluster.n):
                self.cluster.stop(i)
            t = time.monotonic()
            self.append(primary, 500, 100)  # async mode: local appends do not wait for the stream
            self.assertLess(time.monotonic() - t, 10)
            time.sleep(1.5)
            for i in range(self.cluster.n):
                self.cluster.start(i, wait=False)
            self.cluster.wait_ready()
            # 600 appended; an outage long enough for the replicator's lag
            # trigger adds the store's own `$health.*` events (warning, and
            # healthy once it clears), which are replicated like any other.
            def caught_up():
                last = (self.stream_state() or {}).get("last_seq") or 0
                return last >= 600 and last == self.stats(primary)["last_sequence"]
            try:
                self.wait_for(caught_up, 60, "replication did not catch up", every=0.2)
            except AssertionError as e:
                proc.send_signal(signal.SIGTERM)
                out, err = proc.communicate(timeout=30)
                raise AssertionError(f"{e}; stream: {self.stream_state()}; the replicator's last status lines: "
                                     f"{status_lines(out)[-5:]}; its stderr: {err.decode()[-2000:]}") from None
        finally:
            if proc.returncode is None:
                proc.send_signal(signal.SIGTERM)
                out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, err)
        lines = status_lines(out)
        self.assertTrue(any("last_error" in s for s in lines), "the outage was reported")
        # Its lag too: the age of the oldest event the stream had not acknowledged.
        self.assertTrue(any(s["lag"] > 0 and s["lag_seconds"] > 0.5 for s in lines), lines)
        self.assertGreaterEqual(lines[-1]["confirmed"], 600)
        # A health transition recorded as the replicator stopped is published
        # by the next run; then the stream holds exactly the store.
        self.replicate(primary)
        n = self.stats(primary)["last_sequence"]
        self.assertGreaterEqual(n, 600)
        replica = os.path.join(self.dir, "r")
        self.replica(replica)
        self.assert_exact_replica(primary, replica, n)

    def test_a_replica_can_start_from_an_archive_of_the_primary(self):
        primary = self.store("p", 500)
        self.replicate(primary)
        archive = os.path.join(self.dir, "archive")
        self.assertEqual(tool("export", primary, archive).returncode, 0)
        self.append(primary, 100, 500)
        self.replicate(primary)
        replica = os.path.join(self.dir, "r")
        self.assertEqual(tool("init", replica).returncode, 0)
        r = tool("import", archive, replica)
        self.assertEqual(r.returncode, 0, r.stderr)
        status, _ = self.replica(replica)
        self.assertEqual(status["applied"], 600)
        self.assert_exact_replica(primary, replica, 600)

    def test_bad_configurations_are_refused_clearly_and_write_nothing(self):
        primary = self.store("p", 5)
        data = os.path.join(primary, "data.mdb")
        with open(data, "rb") as f:
            before = f.read()
        cases = [
            (["--stream", "a.b"], 4, "bad stream name"),
            (["--stream", "ok", "--window", "0"], 4, "--window"),
            (["--stream", "ok", "--replicas", "7"], 4, "--replicas"),
            (["--stream", "ok", "--subject", "a.*"], 4, "bad subject"),
        ]
        for args, code, text in cases:
            r = tool("replicate", primary, "--nats", self.cluster.urls, *args)
            self.assertEqual(r.returncode, code, (args, r.stderr))
            self.assertIn(text, r.stderr.decode())
        r = tool("replicate", primary, "--nats", "nats://127.0.0.1:1", "--stream", "ok", "--timeout", "0.5")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("connecting to stream 'ok' at nats://127.0.0.1:1", r.stderr.decode())
        r = tool("promote", primary, "--nats", self.cluster.urls, "--stream", "ok")
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIn("is not a read replica", r.stderr.decode())
        serve_cases = [
            (["--nats", self.cluster.urls], 2, "--nats requires --stream"),
            (["--stream", "ok"], 2, "--stream requires --nats"),
            (["--read-only", "--nats", self.cluster.urls, "--stream", "ok"], 2, "--read-only excludes --nats"),
            (["--nats", self.cluster.urls, "--stream", "ok", "--mode", "eventual"], 4, "--mode"),
            (["--nats", self.cluster.urls, "--stream", "a b"], 4, "bad stream name"),
        ]
        for args, code, text in serve_cases:
            r = tool("serve", primary, "--listen", "127.0.0.1:0", *args)
            self.assertEqual(r.returncode, code, (args, r.stderr))
            self.assertIn(text, r.stderr.decode())
        r = tool("replicate", primary, "--nats", self.cluster.urls, "--stream", "ok", "--mode", "sync")
        self.assertEqual(r.returncode, 4, r.stderr)
        r = tool("--quorum-timeout", "-1", "append", primary, stdin=events(1))
        self.assertEqual(r.returncode, 4, r.stderr)
        self.assertIsNone(self.cluster.stream_info("ok"), "no stream was created")
        with open(data, "rb") as f:
            self.assertEqual(f.read(), before, "a refused start wrote to the store")

    def test_a_server_whose_max_payload_is_below_the_largest_record_is_refused(self):
        with NatsCluster(nodes=1, max_payload=1024 * 1024) as small:
            primary = self.store("p", 5)
            r = tool("replicate", primary, "--nats", small.urls, "--stream", "small", "--replicas", "1")
            self.assertEqual(r.returncode, 4, r.stderr)
            self.assertIn("max_payload is 1048576 bytes, below the largest record", r.stderr.decode())
            self.assertIsNone(small.stream_info("small"))

    # --- quorum mode -------------------------------------------------------

    def query_sequences(self, path):
        return [json.loads(line)["sequence"] for line in self.listing(path).decode().splitlines()]

    def query_sequences_and_types(self, path):
        return [(e["sequence"], e["type"]) for e in map(json.loads, self.listing(path).decode().splitlines())]

    def visible_without_health(self, path):
        """The sequences a reader sees, checked contiguous from 1, and those
        of the events that are not the store's own `$health.*` ones (an
        outage longer than the replicator's 10 s lag trigger adds them)."""
        seen = self.query_sequences_and_types(path)
        self.assertEqual([s for s, _ in seen], list(range(1, len(seen) + 1)), seen)
        self.assertTrue(all(not t.startswith("$") or t.startswith("$health.") for _, t in seen), seen)
        return [s for s, t in seen if not t.startswith("$health.")]

    def test_quorum_appends_through_the_server_wait_for_the_stream_fail_clearly_in_a_partition_and_succeed_after(self):
        primary = self.store("p", 3)
        server = Server(primary, "--nats", self.cluster.urls, "--stream", self.stream, "--mode", "quorum",
                        "--nats-timeout", "1", "--quorum-timeout", "2")
        try:
            first = server.json("POST", "/streams/pay", {"type": "payment.taken", "data": 1},
                                {"Idempotency-Key": "pay-1"})
            self.assertEqual(first[0], 201, first)
            seq = first[2]["events"][0]["sequence"]
            self.assertEqual(seq, 4)
            # Answered only once the stream held it (and the three before it).
            self.assertEqual(self.stream_state()["last_seq"], 4)
            self.assertEqual([e["sequence"] for e in server.lines("/streams/pay")[2] if "sequence" in e], [4])
            # Another process reads the mark the replicator stores every 10 ms.
            self.wait_for(lambda: self.query_sequences(primary) == [1, 2, 3, 4], 5,
                          lambda: self.query_sequences(primary), every=0.02)

            # A partition: every node of the cluster stopped.
            for i in range(self.cluster.n):
                self.cluster.stop(i)
            t = time.monotonic()
            pending = server.json("POST", "/streams/pay", {"type": "payment.taken", "data": 2},
                                  {"Idempotency-Key": "pay-2"})
            waited = time.monotonic() - t
            self.assertEqual(pending[0], 503, pending)
            self.assertEqual(pending[1].get("Retry-After"), "1")
            body = pending[2]
            self.assertEqual(body["error"], "replication_pending")
            self.assertIn("event 5", body["message"])
            self.assertIn("is durable in store", body["message"])
            self.assertIn("within 2 s", body["message"])
            self.assertIn("same idempotency key", body["message"])
            self.assertGreaterEqual(waited, 1.9)
            self.assertLess(waited, 10)
            pending_id = body["message"].split("(first ID ", 1)[1].split(")", 1)[0]
            # Durable here, seen by no reader: not the server's, not another process's.
            self.assertEqual(self.stats(primary)["last_sequence"], 5)
            self.assertEqual(self.query_sequences(primary), [1, 2, 3, 4])
            status, _, listed = server.lines("/streams/pay")
            self.assertEqual(status, 200)
            self.assertEqual([e["sequence"] for e in listed if "sequence" in e], [4])
            self.assertEqual(server.json("GET", "/events/" + pending_id)[0], 404)
            # An append of another process waits on the mark in meta, and fails the same way.
            r = tool("--quorum-timeout", "1", "append", primary, stdin=events(1))
            self.assertEqual(r.returncode, 8, r.stderr)
            self.assertIn("is durable in store", r.stderr.decode())
            self.assertIn("(no replicator of this process: the mark is read from the store)", r.stderr.decode())
            metrics = server.request("GET", "/metrics")[2].decode()
            self.assertIn(f'lighthouse_replication_confirmed_sequence{{stream="{self.stream}",mode="quorum"}} 4',
                          metrics)
            # Event 6 is the other process's: the server's replicator counts it
            # once it has looked at the store again (its next poll).
            # (2, or more if the lag trigger has added a `$health.warning`.)
            def lag_counts_the_other_process():
                lag = self.stats(primary)["last_sequence"] - 4
                line = f'lighthouse_replication_lag_events{{stream="{self.stream}",mode="quorum"}} {lag}'
                return lag >= 2 and line in server.request("GET", "/metrics")[2].decode()
            self.wait_for(lag_counts_the_other_process, 10,
                          lambda: [line for line in server.request("GET", "/metrics")[2].decode().splitlines()
                                   if "replication_lag_events{" in line], every=0.1)

            for i in range(self.cluster.n):
                self.cluster.start(i, wait=False)
            self.cluster.wait_ready()
            # The retry with the same key returns the event the first try stored.
            deadline = time.monotonic() + 60
            while True:
                retry = server.json("POST", "/streams/pay", {"type": "payment.taken", "data": 2},
                                    {"Idempotency-Key": "pay-2"})
                if retry[0] != 503 or time.monotonic() > deadline:
                    break
            self.assertEqual(retry[0], 200, retry)
            self.assertTrue(retry[2]["replayed"])
            self.assertEqual(retry[2]["events"][0]["id"], pending_id)
            # Every reader sees both pending events once the stream has them
            # (another process through the mark stored every 10 ms). The
            # outage may have added the store's own `$health.*` events after
            # them, which a reader sees in turn like any other.
            self.wait_for(lambda: self.visible_without_health(primary) == [1, 2, 3, 4, 5, 6], 10,
                          lambda: self.query_sequences_and_types(primary), every=0.02)
            self.assertEqual(server.json("GET", "/events/" + pending_id)[0], 200)
            after = server.json("POST", "/streams/pay", {"type": "payment.taken", "data": 3})
            self.assertEqual(after[0], 201, after)
            after_seq = after[2]["events"][0]["sequence"]
            self.assertGreaterEqual(after_seq, 7)
            # Answered once the stream held it.
            self.assertGreaterEqual(self.stream_state()["last_seq"], after_seq)
        finally:
            self.assertEqual(server.stop(), 0)
        # A health transition recorded as the server stopped is published by
        # the next run; then the stream holds exactly the store.
        self.replicate(primary, "--mode", "quorum")
        n = self.stats(primary)["last_sequence"]
        self.assertEqual(self.visible_without_health(primary)[-1], after_seq)
        replica = os.path.join(self.dir, "r")
        self.replica(replica)
        self.assert_exact_replica(primary, replica, n)

    def test_a_quorum_replicator_in_its_own_process_gates_the_appends_and_readers_of_others(self):
        primary = self.store("p", 2)
        proc = subprocess.Popen([TOOL, "replicate", primary, "--nats", self.cluster.urls, "--stream", self.stream,
                                 "--mode", "quorum", "--status-interval", "0.2"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        try:
            self.wait_stream_last(2, 30)
            # `lighthouse append` in another process returns once the stream holds its events.
            r = tool("append", primary, stdin=events(5, 2))
            self.assertEqual(r.returncode, 0, r.stderr)
            self.assertEqual(self.stream_state()["last_seq"], 7)
            self.assertEqual(self.query_sequences(primary), list(range(1, 8)))
            os.kill(proc.pid, signal.SIGSTOP)  # the replicator frozen: nothing is acknowledged
            try:
                r = tool("--quorum-timeout", "0.5", "append", primary, stdin=events(1, 7))
                self.assertEqual(r.returncode, 8, r.stderr)
                self.assertEqual(self.query_sequences(primary), list(range(1, 8)))
            finally:
                os.kill(proc.pid, signal.SIGCONT)
            self.wait_for(lambda: self.query_sequences(primary) == list(range(1, 9)), 30, "the mark did not move on")
        finally:
            proc.send_signal(signal.SIGTERM)
            out, err = proc.communicate(timeout=30)
        self.assertEqual(proc.returncode, 0, err)
        self.assertEqual(status_lines(out)[-1]["mode"], "quorum")
        # Starting it in async mode takes the store out of quorum mode.
        self.replicate(primary)
        self.append(primary, 1, 8)
        self.assertEqual(self.query_sequences(primary), list(range(1, 10)))

    def test_in_quorum_mode_a_failover_loses_no_acknowledged_event(self):
        primary = self.store("p")
        server = Server(primary, "--nats", self.cluster.urls, "--stream", self.stream, "--mode", "quorum")
        acknowledged, stop = [], threading.Event()

        def client(c):
            conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
            i = 0
            try:
                while not stop.is_set():
                    conn.request("POST", f"/streams/acct-{c}", body=json.dumps({"type": "credit", "data": i}).encode(),
                                 headers={"Idempotency-Key": f"c{c}-{i}"})
                    r = conn.getresponse()
                    body = r.read()
                    if r.status == 201:
                        acknowledged.append(json.loads(body)["events"][0]["id"])
                    i += 1
            except (OSError, http.client.HTTPException):
                pass  # the server was killed

        threads = [threading.Thread(target=client, args=(c,)) for c in range(4)]
        for t in threads:
            t.start()
        self.wait_for(lambda: len(acknowledged) >= 300, 30, "300 appends were not acknowledged", every=0.01)
        server.proc.kill()  # SIGKILL of the primary in the middle of its appends
        server.proc.wait(timeout=30)
        stop.set()
        for t in threads:
            t.join(timeout=30)
        server.stop()
        replica = os.path.join(self.dir, "r")
        self.replica(replica)
        r = tool("promote", replica, "--nats", self.cluster.urls, "--stream", self.stream, "--status-interval", "0")
        self.assertEqual(r.returncode, 0, r.stderr)
        promoted = {json.loads(line)["id"] for line in self.listing(replica).decode().splitlines()}
        missing = [i for i in acknowledged if i not in promoted]
        self.assertEqual(missing, [], f"{len(missing)} of {len(acknowledged)} acknowledged events lost")


if __name__ == "__main__":
    unittest.main(verbosity=2)
