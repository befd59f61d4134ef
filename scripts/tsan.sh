#!/usr/bin/env bash
# Builds and runs the suite under ThreadSanitizer (build-tsan/).
# Usage: scripts/tsan.sh              the unit suite (but [fault] and [memory]), tool, store_format
#        scripts/tsan.sh ARGS...      `meson test ARGS...` alone (e.g. tool_serve)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -f build-tsan/build.ninja ]; then
  meson setup build-tsan -Db_sanitize=thread -Db_lundef=false -Dbenchmarks=false \
    --buildtype=debugoptimized >/dev/null
fi
ninja -C build-tsan >/dev/null
export TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 suppressions=$PWD/scripts/tsan.supp"
# The fault shim cannot be preloaded into a TSan process, and TSan's shadow
# memory makes the streaming-memory measurement meaningless: those tests run
# under scripts/sanitize.sh and the plain suite.
if [ $# -gt 0 ]; then
  exec meson test -C build-tsan --print-errorlogs --timeout-multiplier 3 "$@"
fi
meson test -C build-tsan --print-errorlogs --timeout-multiplier 3 unit --test-args='~[fault]~[memory]'
meson test -C build-tsan --print-errorlogs --timeout-multiplier 3 tool store_format
