#!/usr/bin/env bash
# Builds and runs the whole suite under AddressSanitizer + UndefinedBehaviorSanitizer
# (build-asan/). Usage: scripts/sanitize.sh [meson test arguments]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
if [ ! -f build-asan/build.ninja ]; then
  meson setup build-asan -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbenchmarks=false --buildtype=debug >/dev/null
fi
ninja -C build-asan >/dev/null
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
# Everything runs 3 to 10 times slower under the sanitizers.
meson test -C build-asan --print-errorlogs --no-suite packaging --timeout-multiplier 3 "$@"
