#!/usr/bin/python3
"""Plots the scaling run (scripts/scaling.sh): for each of 10^5, 10^6 and
10^7 events, Lighthouse and raw LMDB's batched append rate, query-by-type
rate, 1,000-event aggregate p50 and open time in a new process, read from
compare's JSON rows. Usage: plot-scaling.py RUN_DIR OUT.png"""
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

PANELS = [
    ("1 batched append x1000, lifecycle", "batched appends (events/s)"),
    ("4 query by type, checksums on", "query by type (events/s)"),
    ("5 read a 1,000-event aggregate: p50", "1,000-event aggregate, p50 (ms)"),
    ("6 open the store, new process", "open in a new process (ms)"),
]


def main():
    run_dir, out = sys.argv[1], sys.argv[2]
    values = {}  # (workload, system) -> {events: value}
    for path in glob.glob(os.path.join(run_dir, "compare-*.json")):
        events = int(os.path.basename(path)[len("compare-"):-len(".json")])
        for row in json.load(open(path, encoding="utf-8")):
            values.setdefault((row["workload"], row["system"]), {})[events] = row["value"]
    fig, axes = plt.subplots(2, 2, figsize=(10, 7))
    for ax, (workload, title) in zip(axes.flat, PANELS):
        for system in ("lighthouse", "lmdb"):
            points = sorted(values.get((workload, system), {}).items())
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", label=system)
        ax.set_xscale("log")
        ax.set_title(title)
        ax.set_xlabel("events in the store")
        ax.set_ylim(bottom=0)
        ax.legend()
    fig.suptitle("Lighthouse (record format 2) and raw LMDB from 10^5 to 10^7 events")
    fig.tight_layout()
    fig.savefig(out, dpi=90)


main()
