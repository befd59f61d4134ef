#!/usr/bin/env python3
"""Prints 'N passed, N failed, N skipped' for one run of the suite, from the
Meson test log that run wrote (one JSON object a line).

Counting rules — the summary never reports a pass that Meson did not:
  * A test Meson skipped counts as one skip.
  * A test Meson passed (OK, EXPECTEDFAIL) counts the cases its own output
    reports (Catch2's totals, Python unittest's "Ran N tests" and its OK or
    FAILED line, skips and unexpected successes included); without such a
    report it counts as one pass. One whose report says it ran no case counts
    as a failure: nothing was tested.
  * A test Meson failed (FAIL, TIMEOUT, ERROR, UNEXPECTEDPASS, or anything
    else) counts no pass at all: it counts the failures its output reports,
    and at least one — a program that prints "All tests passed" and then
    fails at exit is a failure.
  * A missing or empty log, or a run in which nothing passed or failed, is a
    failure of the run: it prints why and exits 1 (a suite name that matches
    nothing, a rebuild that failed before any test ran).

Usage: test-summary.py TESTLOG_JSON"""
import json
import re
import sys

MESON_PASSED = ("OK", "EXPECTEDFAIL")


def inner_counts(test):
    """(passed, failed, skipped) from the program's own report, or None."""
    out = (test.get("stdout") or "") + "\n" + (test.get("stderr") or "")
    py = re.search(r"^Ran (\d+) tests? in [^\n]*\n\n(OK|FAILED)(?: \(([^)]*)\))?", out, re.M)
    if py:
        ran = int(py.group(1))
        fields = dict((k.strip(), int(v)) for k, v in re.findall(r"([a-z ]+)=(\d+)", py.group(3) or ""))
        failed = fields.get("failures", 0) + fields.get("errors", 0) + fields.get("unexpected successes", 0)
        skipped = fields.get("skipped", 0)
        if py.group(2) == "FAILED" and failed == 0:
            failed = 1
        return max(ran - failed - skipped, 0), failed, skipped
    m = re.search(r"All tests passed \(\d+ assertions? in (\d+) test cases?\)", out)
    if m:
        return int(m.group(1)), 0, 0
    n = re.search(r"test cases:\s+(\d+) \|\s+(\d+) passed \|\s+(\d+) failed", out)
    if n:
        return int(n.group(2)), int(n.group(3)), 0
    n = re.search(r"test cases:\s+(\d+) \|\s+(\d+) failed", out)  # Catch2 when none passed
    if n:
        return 0, int(n.group(2)), 0
    if re.search(r"^No tests ran$", out, re.M):
        return 0, 0, 0
    return None


def summarise(lines):
    passed = failed = skipped = 0
    notes = []
    for line in lines:
        line = line.strip()
        if not line:
            continue
        test = json.loads(line)
        name, result = test.get("name", "?"), test.get("result", "?")
        if result == "SKIP":
            skipped += 1
            notes.append(f"{name}: skipped")
            continue
        counts = inner_counts(test)
        if result in MESON_PASSED:
            if counts is None:
                passed += 1
            elif counts[0] + counts[1] == 0:
                failed += 1
                notes.append(f"{name}: ran no test case")
            else:
                passed += counts[0]
                failed += counts[1]
                skipped += counts[2]
                if counts[1]:
                    notes.append(f"{name}: {counts[1]} failed although Meson reports {result}")
                if counts[2]:
                    notes.append(f"{name}: {counts[2]} skipped")
        else:
            bad = max(counts[1] if counts else 0, 1)
            failed += bad
            if counts:
                skipped += counts[2]
            notes.append(f"{name}: {result}" + (f" ({bad} failed)" if counts and counts[1] else ""))
    return passed, failed, skipped, notes


def main(argv):
    if len(argv) != 2:
        print("usage: test-summary.py TESTLOG_JSON", file=sys.stderr)
        return 2
    try:
        with open(argv[1], encoding="utf-8") as log:
            lines = log.readlines()
    except OSError as error:
        print(f"no test ran: this run wrote no test log ({error.strerror}: {argv[1]})")
        print("0 passed, 0 failed, 0 skipped")
        return 1
    passed, failed, skipped, notes = summarise(lines)
    for note in notes:
        print(note)
    if passed + failed == 0:
        print("no test ran" + (f" ({skipped} skipped)" if skipped else ""))
    print(f"{passed} passed, {failed} failed, {skipped} skipped")
    return 1 if failed or passed + failed == 0 else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
