#!/usr/bin/env python3
"""Markdown tables of bench_exec_cpu / bench_exec_gpu JSON output (docs/benchmarks.md#execution-spaces).

For each N: the copy reference of each space (GB/s), then one row per kernel, one column per space, cells
"GB/s (pct_of_copy %)"; medians when the run had
repetitions (--benchmark_repetitions=k), else the single run. GB/s are 10^9 bytes/s.

Usage: python3 bench/exec/report.py out/exec_cpu.json
"""
import json
import sys
from collections import OrderedDict


def main(path):
    with open(path) as f:
        data = json.load(f)
    has_median = any(b.get("aggregate_name") == "median" for b in data["benchmarks"])
    cells = OrderedDict()  # N -> kernel -> space -> text
    spaces = []
    for b in data["benchmarks"]:
        if has_median and b.get("aggregate_name") != "median":
            continue
        name = b.get("run_name", b["name"])
        parts = name.split("/")
        if len(parts) < 3 or not parts[2].startswith("N:"):
            continue
        kernel, space, n = parts[0], parts[1], parts[2][2:]
        if space not in spaces:
            spaces.append(space)
        gbps = b["bytes_per_second"] / 1e9
        rows = cells.setdefault(n, OrderedDict())
        if "copy_GBps" in b:
            rows.setdefault("copy reference (GB/s)", {}).setdefault(space, f"{b['copy_GBps']:.1f}")
        rows.setdefault(kernel, {})[space] = f"{gbps:.1f} ({b['pct_of_copy']:.0f}%)"
    ctx = data.get("context", {})
    print(f"host: {ctx.get('host_name', '?')}, {ctx.get('num_cpus', '?')} CPUs, "
          f"load average {ctx.get('load_avg', '?')}, clock {ctx.get('clock', 'real')}")
    for n, rows in cells.items():
        print(f"\nN = {n}\n")
        print("| kernel | " + " | ".join(spaces) + " |")
        print("| --- |" + " --- |" * len(spaces))
        for kernel, row in rows.items():
            print(f"| {kernel} | " + " | ".join(row.get(s, "") for s in spaces) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
