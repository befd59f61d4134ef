#!/usr/bin/env bash
# Sets everything up, builds and runs the test suite. The last line is the
# plain summary "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh || exit 1
bash scripts/build.sh || exit 1
build_dir=${BUILD_DIR:-build}
meson test -C "$build_dir" --print-errorlogs --num-processes 2 "$@"
status=$?
python3 scripts/test-summary.py "$build_dir/meson-logs/testlog.json"
summary=$?
if [ $status -ne 0 ]; then exit $status; fi
exit $summary
