#!/usr/bin/env python3
"""Prints 'N passed, N failed' from a Meson test log (one JSON object a line).

Counts Catch2 test cases and Python unittest cases inside each test program
where its output says how many there were, and every other test as one."""
import json
import re
import sys

passed = failed = 0
with open(sys.argv[1], encoding="utf-8") as log:
    for line in log:
        line = line.strip()
        if not line:
            continue
        test = json.loads(line)
        ok = test["result"] in ("OK", "EXPECTEDFAIL")
        skipped = test["result"] == "SKIP"
        if skipped:
            continue
        out = test.get("stdout") or ""
        m = re.search(r"All tests passed \(\d+ assertions? in (\d+) test cases?\)", out)
        n = re.search(r"test cases:\s+(\d+) \|\s+(\d+) passed \|\s+(\d+) failed", out)
        err = test.get("stderr") or ""
        py = re.search(r"^Ran (\d+) tests? in .*\n\n(OK|FAILED \((.*)\))", err, re.M)
        if py:
            ran = int(py.group(1))
            bad = sum(int(x) for x in re.findall(r"(?:failures|errors)=(\d+)", py.group(3) or ""))
            passed += ran - bad
            failed += bad
        elif m:
            passed += int(m.group(1))
        elif n:
            passed += int(n.group(2))
            failed += int(n.group(3))
        elif ok:
            passed += 1
        else:
            failed += 1
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
