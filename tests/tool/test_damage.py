"""Damage and bad input through the `lighthouse` tool, as a hostile but fair
user meets them: interrupted imports, tampered archives, messages that must
stay valid UTF-8 and in the store's own words, a full disk.

The tool's path comes from the environment variable LIGHTHOUSE_TOOL."""

import base64
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import unittest

TOOL = os.environ.get("LIGHTHOUSE_TOOL", "")
TIMEOUT = 120
EXIT_OK, EXIT_OTHER, EXIT_INVALID, EXIT_CORRUPTION = 0, 1, 4, 5


def run(*args, stdin=b""):
    return subprocess.run([TOOL, *args], input=stdin, capture_output=True, timeout=TIMEOUT)


def lines(*items):
    return ("\n".join(json.dumps(i) for i in items) + "\n").encode()


def stderr_text(result):
    """The tool's stderr, which must be valid UTF-8 (raises otherwise)."""
    return result.stderr.decode("utf-8", "strict")


class DamageTestCase(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="lighthouse-damage-")
        self.addCleanup(self._tmp.cleanup)  # last: after what later cleanups unmount
        self.tmp = self._tmp.name
        self.store = os.path.join(self.tmp, "store")
        self.assertEqual(run("init", self.store).returncode, EXIT_OK)

    def append(self, n, start=0, store=None):
        items = [{"type": "T", "aggregate": f"a{i % 7}", "data": {"i": i}} for i in range(start, start + n)]
        r = run("append", store or self.store, stdin=lines(*items))
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)

    def count(self, store=None):
        r = run("stats", store or self.store)
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        return json.loads(r.stdout)["event_count"]


class InterruptedImportTest(DamageTestCase):
    def test_verify_and_repair_report_an_interrupted_import(self):
        self.append(30000)
        archive = os.path.join(self.tmp, "archive")
        self.assertEqual(run("export", self.store, archive).returncode, EXIT_OK)
        copy = os.path.join(self.tmp, "copy")
        # Kill imports until one is caught between its mark and its end
        # (bounded): the copy is then refused by every command. The kill
        # comes once the copy's file has grown past its first transactions
        # (the mark is written before any event), however fast the build.
        caught = False
        for attempt in range(10):
            shutil.rmtree(copy, ignore_errors=True)
            p = subprocess.Popen([TOOL, "import", archive, copy], stdout=subprocess.DEVNULL,
                                 stderr=subprocess.DEVNULL)
            data = os.path.join(copy, "data.mdb")
            deadline = time.monotonic() + 60
            while p.poll() is None and time.monotonic() < deadline:
                if os.path.exists(data) and os.path.getsize(data) > 256 * 1024 * (1 + attempt % 3):
                    break
                time.sleep(0.002)
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=TIMEOUT)
            stats = run("stats", copy)
            if stats.returncode == EXIT_CORRUPTION and b"interrupted" in stats.stderr:
                caught = True
                break
        self.assertTrue(caught, "no import was killed between its mark and its end")
        verify = run("verify", copy)
        self.assertEqual(verify.returncode, EXIT_CORRUPTION, verify.stdout)
        self.assertIn(b"import", verify.stdout)
        self.assertIn(b"interrupted", verify.stdout)
        repair = run("repair", copy)
        self.assertEqual(repair.returncode, EXIT_CORRUPTION, repair.stdout)
        self.assertIn(b"interrupted", repair.stdout)
        # Still refused afterwards: repair does not pretend to finish an import.
        self.assertEqual(run("stats", copy).returncode, EXIT_CORRUPTION)


class TamperedArchiveTest(DamageTestCase):
    def setUp(self):
        super().setUp()
        self.append(400)
        self.archive = os.path.join(self.tmp, "archive")
        r = run("export", self.store, self.archive, "--segment-size", "4096")
        self.assertEqual(r.returncode, EXIT_OK, r.stderr)
        self.manifest_path = os.path.join(self.archive, "manifest.json")
        with open(self.manifest_path, encoding="utf-8") as f:
            self.manifest = json.load(f)
        first = json.loads(run("query", self.store, "--from-sequence", "300", "--limit", "1").stdout)
        self.cut = first["id"]

    def write_manifest(self, manifest):
        with open(self.manifest_path, "w", encoding="utf-8") as f:
            json.dump(manifest, f)

    def refused_everywhere(self):
        verify = run("archive", "verify", self.archive)
        self.assertEqual(verify.returncode, EXIT_CORRUPTION, verify.stdout)
        imported = run("import", self.archive, os.path.join(self.tmp, "imported"))
        self.assertEqual(imported.returncode, EXIT_CORRUPTION, imported.stderr)
        truncated = run("truncate", self.store, "--archive", self.archive, "--before", self.cut)
        self.assertEqual(truncated.returncode, EXIT_CORRUPTION, truncated.stderr)
        self.assertIn("does not verify", stderr_text(truncated))
        self.assertEqual(self.count(), 400)  # nothing dropped

    def test_a_checkpoint_moved_forward_is_refused_by_truncate_too(self):
        m = dict(self.manifest)
        m["checkpoint"] = dict(m["checkpoint"], last_sequence=m["checkpoint"]["last_sequence"] + 5)
        self.write_manifest(m)
        self.refused_everywhere()

    def test_a_last_segment_removed_with_its_entry_is_refused_by_truncate_too(self):
        m = dict(self.manifest)
        last = m["segments"][-1]
        os.remove(os.path.join(self.archive, last["file"]))
        m["segments"] = m["segments"][:-1]
        self.write_manifest(m)
        self.refused_everywhere()


class MessagesTest(DamageTestCase):
    def test_long_values_are_cut_at_a_character_boundary(self):
        r = run("append", self.store, stdin=lines({"type": "é" * 200}))
        self.assertEqual(r.returncode, EXIT_INVALID)
        err = stderr_text(r)
        self.assertIn("é" * 32, err)
        self.assertIn("...", err)
        self.assertIn("255", err)

    def test_raw_bytes_are_escaped_not_echoed(self):
        r = run("append", self.store, stdin=b'{"type":"T\xff"}\n')
        self.assertEqual(r.returncode, EXIT_INVALID)
        err = stderr_text(r)
        self.assertIn("\\xff", err)
        # A parse error deep in a line: the JSON library's own quote of
        # half a character is not echoed either.
        r = run("append", self.store, stdin=b'{"type":"T", "data": \xc3\n')
        self.assertEqual(r.returncode, EXIT_INVALID)
        err = stderr_text(r)
        self.assertIn("malformed JSON", err)
        self.assertNotIn("json.exception", err)
        self.assertEqual(self.count(), 0)

    def test_no_internal_exception_text(self):
        archive = os.path.join(self.tmp, "archive")
        os.makedirs(archive)
        with open(os.path.join(archive, "manifest.json"), "w") as f:
            f.write('{"format": "lighthouse-archive", "segments": [ ')
        for args in (["archive", "verify", archive], ["import", archive, os.path.join(self.tmp, "x")]):
            r = run(*args)
            self.assertEqual(r.returncode, EXIT_CORRUPTION, (args, r))
            out = stderr_text(r) + r.stdout.decode("utf-8", "strict")
            self.assertNotIn("json.exception", out)
            self.assertIn("not JSON", out)
        odd = os.path.join(self.tmp, "odd")
        os.makedirs(os.path.join(odd, "data.mdb"))
        r = run("compact", odd)
        self.assertNotEqual(r.returncode, EXIT_OK)
        err = stderr_text(r)
        self.assertNotIn("filesystem error", err)
        self.assertTrue(err.startswith("lighthouse: "), err)


def mount_tmpfs(path, size):
    """Mounts a tmpfs of `size` at `path`; returns how to unmount it."""
    os.makedirs(path, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", path], capture_output=True)
    if r.returncode != 0:
        raise AssertionError(f"cannot mount a small tmpfs to fill (run as root): {r.stderr.decode()}")
    return lambda: subprocess.run(["umount", "-l", path], capture_output=True)


class FullDiskTest(DamageTestCase):
    def setUp(self):
        super().setUp()
        self.small = os.path.join(self.tmp, "small")
        self.addCleanup(mount_tmpfs(self.small, "1m"))

    def test_appends_on_a_full_disk_say_so(self):
        store = os.path.join(self.small, "store")
        self.assertEqual(run("init", store).returncode, EXIT_OK)
        # Random bytes: they do not compress.
        big = [{"type": "T", "content_type": "bytes", "data_base64": base64.b64encode(os.urandom(12000)).decode()}
               for _ in range(200)]
        r = run("append", store, stdin=lines(*big))
        self.assertNotEqual(r.returncode, EXIT_OK)
        err = stderr_text(r)
        self.assertIn("no space left on device", err)
        self.assertIn("free on the filesystem of", err)
        self.assertIn("the store's data file is", err)
        self.assertNotIn("Input/output error", err)

    def test_a_compact_or_backup_that_fills_the_disk_leaves_nothing(self):
        self.append(3000)
        # A store in the small filesystem, then filled up with a ballast file.
        store = os.path.join(self.small, "store")
        shutil.copytree(self.store, store)
        st = os.statvfs(self.small)
        with open(os.path.join(self.small, "ballast"), "wb") as f:
            f.write(b"\0" * max(0, st.f_bavail * st.f_frsize - 4096))
        r = run("compact", store)
        self.assertNotEqual(r.returncode, EXIT_OK)
        self.assertIn("no space left on device", stderr_text(r))
        self.assertFalse(os.path.exists(os.path.join(store, ".compact")), "a partial copy was left")
        self.assertEqual(run("verify", store).returncode, EXIT_OK)
        dest = os.path.join(self.small, "backup")
        r = run("backup", self.store, dest)
        self.assertNotEqual(r.returncode, EXIT_OK)
        self.assertIn("no space left on device", stderr_text(r))
        self.assertFalse(os.path.exists(dest))


if __name__ == "__main__":
    unittest.main(verbosity=2)
