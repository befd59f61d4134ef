#!/usr/bin/env bash
# The long run of the power-loss crash-state tests: 10,000 crash states per
# workload (the suite explores 500 each). Usage: scripts/crash-states.sh
# [STATES] [--seed S] [--workloads a,b,...]
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
states=${1:-10000}
shift || true
exec build/tests/crash_states build/tests/crash_workload build/tests/libcrash_recorder.so --states "$states" "$@"
