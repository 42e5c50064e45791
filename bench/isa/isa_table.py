#!/usr/bin/env python3
"""The table of docs/benchmarks.md, "Instruction sets", from bench_isa's and bench_isa_native's JSON.

GB/s (medians, the byte model) of every kernel on exec::serial and exec::openmp at each level of the default
build, the native build's figure, and two ratios: the default build's automatic level against the baseline,
and against -march=native.

Usage: python3 bench/isa/isa_table.py default.json native.json [--n 16777216]
"""
import argparse
import json


def medians(path, n):
    with open(path) as f:
        data = json.load(f)
    out = {}
    for b in data["benchmarks"]:
        if b.get("aggregate_name") != "median":
            continue
        parts = [p for p in b["run_name"].split("/") if p != "real_time"]
        if parts[-1] != f"N:{n}":
            continue
        kernel = "/".join(parts[:-2])
        out[(kernel, parts[-2])] = b["bytes_per_second"] / 1e9
        if b.get("label"):
            out[("label", parts[-2])] = b["label"]
    return out, data["context"]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("default")
    ap.add_argument("native")
    ap.add_argument("--n", type=int, default=1 << 24)
    args = ap.parse_args()
    d, ctx = medians(args.default, args.n)
    nat, _ = medians(args.native, args.n)
    auto = ctx.get("cpu_isa", "baseline")
    kernels = []
    for k, _ in list(d) + list(nat):
        if k not in kernels and k != "label":
            kernels.append(k)
    spaces = sorted({s.split("@")[0] for _, s in d if "@" in s})
    levels = [lv for lv in ("baseline", "avx2", "avx512") if any(s.endswith("@" + lv) for _, s in d)]
    print(f"N = {args.n}, GB/s (medians), automatic level on this CPU: {auto}")
    print()
    print("| kernel | space | " + " | ".join(levels) + " | -march=native | auto / baseline | auto / native |")
    print("| --- | --- | " + " | ".join("---" for _ in levels) + " | --- | --- | --- |")
    for k in kernels:
        for sp in spaces:
            row = [d.get((k, f"{sp}@{lv}")) for lv in levels]
            native = nat.get((k, f"{sp}@native"))
            if all(v is None for v in row):
                continue
            base = d.get((k, f"{sp}@baseline"))
            mine = d.get((k, f"{sp}@{auto}"))
            cells = " | ".join(f"{v:.1f}" if v else "-" for v in row)
            r1 = f"{mine / base:.2f}x" if mine and base else "-"
            r2 = f"{mine / native:.2f}" if mine and native else "-"
            print(f"| {k} | {sp} | {cells} | {f'{native:.1f}' if native else '-'} | {r1} | {r2} |")
    for k, s in d:
        if s == "highway" and k != "label":
            print(f"\nHighway's Adam (its own dispatch, target {d.get(('label', s), '?')}): {d[(k, s)]:.1f} GB/s "
                  f"in the default build; {nat.get((k, s), 0):.1f} GB/s in the native build's run")


if __name__ == "__main__":
    main()
