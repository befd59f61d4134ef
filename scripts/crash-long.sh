#!/usr/bin/env bash
# The long variants of the crash, fault and multi-process tests: 300 SIGKILL
# cycles each for the append worker and the tool (the suite runs 30).
# Usage: scripts/crash-long.sh [cycles]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
export LIGHTHOUSE_CRASH_CYCLES="${1:-300}"
export APPEND_WORKER="$PWD/build/tests/append_worker"
export FAULT_SHIM="$PWD/build/tests/libfault_shim.so"
export LIGHTHOUSE_TOOL="$PWD/build/tools/lighthouse"
build/tests/unit_tests "[crash],[fault],[multi_process]" 2> >(grep -v '^\[20' >&2)
