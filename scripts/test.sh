#!/usr/bin/env bash
# Sets everything up, builds and runs the test suite. The last line is the
# plain summary "N passed, N failed, N skipped" of this run only (see
# scripts/test-summary.py); it exits non-zero when a test failed or none ran.
# Arguments go to `meson test` (for example --suite unit).
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || exit 1
bash scripts/build.sh || exit 1
build_dir=${BUILD_DIR:-build}
log="$build_dir/meson-logs/testlog.json"
# Meson writes no log when it runs nothing (a suite name that matches no
# test, a rebuild that fails): the summary must not read the last run's.
rm -f "$log"
meson test -C "$build_dir" --print-errorlogs --num-processes 2 "$@"
status=$?
python3 scripts/test-summary.py "$log"
summary=$?
if [ $status -ne 0 ]; then exit $status; fi
exit $summary
