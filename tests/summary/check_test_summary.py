#!/usr/bin/python3
"""scripts/test-summary.py against Meson logs made up for each rule it
promises: counts come from this run's log only, a skip is a skip, no pass is
reported that Meson did not report, and a run in which nothing ran fails.

Usage: check_test_summary.py SCRIPT"""
import json
import os
import subprocess
import sys
import tempfile
import unittest

SCRIPT = sys.argv.pop(1)


def summary(*tests, missing=False):
    """Runs the script on a log of `tests` (dicts): (exit code, last line, output)."""
    with tempfile.TemporaryDirectory() as tmp:
        log = os.path.join(tmp, "testlog.json")
        if not missing:
            with open(log, "w", encoding="utf-8") as f:
                for t in tests:
                    f.write(json.dumps(t) + "\n")
        r = subprocess.run([sys.executable, SCRIPT, log], capture_output=True, text=True, timeout=60)
        return r.returncode, r.stdout.strip().splitlines()[-1], r.stdout


def test(name, result="OK", stdout="", stderr=""):
    return {"name": name, "result": result, "stdout": stdout, "stderr": stderr}


CATCH_OK = "===\nAll tests passed (41 assertions in 3 test cases)\n"
CATCH_FAIL = "===\ntest cases:  5 |  4 passed | 1 failed\nassertions: 9 | 8 passed | 1 failed\n"
PY_OK = "Ran 4 tests in 0.1s\n\nOK\n"


class Summary(unittest.TestCase):
    def test_plain_programs_count_one_each(self):
        self.assertEqual(summary(test("a"), test("b"))[:2], (0, "2 passed, 0 failed, 0 skipped"))

    def test_catch2_and_unittest_cases_are_counted(self):
        self.assertEqual(summary(test("unit", stdout=CATCH_OK), test("py", stderr=PY_OK))[:2],
                         (0, "7 passed, 0 failed, 0 skipped"))

    def test_unittest_skips_are_skips_not_passes(self):
        code, line, _ = summary(test("py", stderr="Ran 5 tests in 1s\n\nOK (skipped=2)\n"))
        self.assertEqual((code, line), (0, "3 passed, 0 failed, 2 skipped"))

    def test_unexpected_successes_and_errors_are_failures(self):
        code, line, _ = summary(test("py", stderr="Ran 6 tests in 1s\n\n"
                                     "FAILED (failures=1, errors=1, skipped=1, expected failures=1, "
                                     "unexpected successes=1)\n"))
        self.assertEqual((code, line), (1, "2 passed, 3 failed, 1 skipped"))
        code, line, _ = summary(test("py", stderr="Ran 1 test in 1s\n\nFAILED (unexpected successes=1)\n"))
        self.assertEqual((code, line), (1, "0 passed, 1 failed, 0 skipped"))

    def test_meson_skip_is_counted_as_skipped(self):
        code, line, out = summary(test("a"), test("b", result="SKIP"))
        self.assertEqual((code, line), (0, "1 passed, 0 failed, 1 skipped"))
        self.assertIn("b: skipped", out)

    def test_a_program_that_claims_success_but_fails_at_exit_is_a_failure(self):
        code, line, out = summary(test("unit", result="FAIL", stdout=CATCH_OK))
        self.assertEqual((code, line), (1, "0 passed, 1 failed, 0 skipped"))
        self.assertIn("unit: FAIL", out)

    def test_a_failed_program_counts_its_failures_and_no_pass(self):
        self.assertEqual(summary(test("unit", result="FAIL", stdout=CATCH_FAIL))[:2],
                         (1, "0 passed, 1 failed, 0 skipped"))
        for result in ("TIMEOUT", "ERROR", "UNEXPECTEDPASS"):
            self.assertEqual(summary(test("x", result=result), test("y"))[:2],
                             (1, "1 passed, 1 failed, 0 skipped"), result)

    def test_failures_inside_a_passed_program_still_count(self):
        self.assertEqual(summary(test("unit", stdout=CATCH_FAIL))[:2], (1, "4 passed, 1 failed, 0 skipped"))

    def test_a_program_that_ran_no_case_fails(self):
        code, line, out = summary(test("unit", stdout="No test cases matched 'x'\n===\nNo tests ran\n"))
        self.assertEqual((code, line), (1, "0 passed, 1 failed, 0 skipped"))
        self.assertIn("ran no test case", out)
        self.assertEqual(summary(test("py", stderr="Ran 0 tests in 0.000s\n\nOK\n"))[:2],
                         (1, "0 passed, 1 failed, 0 skipped"))

    def test_no_log_or_an_empty_one_fails(self):
        code, line, out = summary(missing=True)
        self.assertEqual((code, line), (1, "0 passed, 0 failed, 0 skipped"))
        self.assertIn("no test ran", out)
        code, line, out = summary()
        self.assertEqual((code, line), (1, "0 passed, 0 failed, 0 skipped"))
        code, line, out = summary(test("a", result="SKIP"))
        self.assertEqual((code, line), (1, "0 passed, 0 failed, 1 skipped"))


unittest.main(verbosity=1)
