#!/usr/bin/env bash
# The scaling run of docs/performance.md: Lighthouse and raw LMDB at 10^5,
# 10^6 and 10^7 events — batched append rate (workload 1), query by type
# (4), a 1,000-event aggregate's p50 (5) and open time (6) — then the plot
# docs/scaling.png (scripts/plot-scaling.py, python3-matplotlib).
# Usage: scripts/scaling.sh [OUT_DIR] (default ./scaling; about 15 minutes,
# 13 GB of disk under OUT_DIR at 10^7 events).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh >/dev/null
ninja -C build benchmarks >/dev/null
out=${1:-scaling}
mkdir -p "$out"
for n in 100000 1000000 10000000; do
  build/bench/compare --events "$n" --systems lighthouse,lmdb --workloads 1,4,5,6 --repeat 1 \
    --dir "$out/data" --json "$out/compare-$n.json" >/dev/null
done
/usr/bin/python3 scripts/plot-scaling.py "$out" docs/scaling.png
