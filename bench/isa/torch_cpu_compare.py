#!/usr/bin/env python3
"""PyTorch next to tether on the CPU (docs/benchmarks.md, "Instruction sets: against PyTorch on the CPU").

Times, with time.perf_counter (median of --reps runs after a warm-up), one update of N float32 parameters in
each of PyTorch's CPU variants that this torch has, on 1 and on 2 threads (torch.set_num_threads):
  sgd              torch.optim.SGD(lr)                                     (foreach False, True)
  sgd+leader       the LSGD update as torch ops: x.add_(g, -lr); x.add_(x - leader, -a)   (torch has no pull)
  momentum         torch.optim.SGD(lr, momentum=0.9)                       (foreach False, True, fused)
  nesterov         the same with nesterov=True
  momentum+leader  momentum's step, then the pull as torch ops
  adam             torch.optim.Adam(lr)                                    (foreach False, True, fused)
  adam+leader      Adam's step, then the pull as torch ops
  torch.compile    of the step function, where this torch has it (2.0 and later)
and reports GB/s with the byte model of ../shared/PERFORMANCE.md (what each update must move: SGD 12, SGD+pull
16, momentum 20, momentum+pull 24, Adam 28, Adam+pull 32 bytes per element), whatever the ops actually move.

With --tether FILE (bench_isa --benchmark_format=json > FILE, run alternately with this script) it puts
tether's rows for the same N beside them: exec::serial (1 thread) and exec::openmp on all cores, at the level
the default build picks on this CPU, and the ratio tether / torch's best variant per kernel and thread count.

Usage: python3 bench/isa/torch_cpu_compare.py [--n 16777216] [--reps 9] [--tether isa.json] [--json out.json]
"""
import argparse
import json
import statistics
import sys
import time

import torch

BYTES = {"sgd": 12, "sgd+leader": 16, "momentum": 20, "nesterov": 20, "momentum+leader": 24,
         "nesterov+leader": 24, "adam": 28, "adam+leader": 32}


def median_seconds(fn, reps):
    fn()  # warm-up (and lazy state: momentum buffers, Adam's moments)
    times = []
    for _ in range(reps):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def variants(kind):
    """The implementation switches this torch's optimizer accepts, each as (name, kwargs)."""
    import inspect
    params = inspect.signature(kind).parameters
    out = [("eager", {"foreach": False})] if "foreach" in params else [("eager", {})]
    if "foreach" in params:
        out.append(("foreach", {"foreach": True}))
    if "fused" in params:
        out.append(("fused", {"fused": True}))
    return out


def torch_rows(n, reps):
    gen = torch.Generator().manual_seed(0)
    x0 = torch.rand(n, generator=gen) + 0.5
    g0 = torch.rand(n, generator=gen) * 0.5 + 0.5
    leader = torch.rand(n, generator=gen)
    lr, a = 1e-6, 1e-3
    rows = {}
    for kernel, make, pull in [
        ("sgd", lambda p, kw: torch.optim.SGD([p], lr=lr, **kw), False),
        ("sgd+leader", lambda p, kw: torch.optim.SGD([p], lr=lr, **kw), True),
        ("momentum", lambda p, kw: torch.optim.SGD([p], lr=lr, momentum=0.9, **kw), False),
        ("nesterov", lambda p, kw: torch.optim.SGD([p], lr=lr, momentum=0.9, nesterov=True, **kw), False),
        ("momentum+leader", lambda p, kw: torch.optim.SGD([p], lr=lr, momentum=0.9, **kw), True),
        ("nesterov+leader", lambda p, kw: torch.optim.SGD([p], lr=lr, momentum=0.9, nesterov=True, **kw), True),
        ("adam", lambda p, kw: torch.optim.Adam([p], lr=1e-3, **kw), False),
        ("adam+leader", lambda p, kw: torch.optim.Adam([p], lr=1e-3, **kw), True),
    ]:
        opt_class = torch.optim.Adam if kernel.startswith("adam") else torch.optim.SGD
        for name, kw in variants(opt_class):
            p = torch.nn.Parameter(x0.clone())
            p.grad = g0.clone()
            try:
                opt = make(p, kw)

                def step(opt=opt, p=p):
                    opt.step()
                    if pull:
                        with torch.no_grad():
                            p.add_(p - leader, alpha=-a)

                step()
            except (RuntimeError, ValueError) as e:  # e.g. fused=True on a CPU tensor in torch < 2.4
                print(f"torch_cpu_compare: {kernel} {name}: not run ({str(e).splitlines()[0]})", file=sys.stderr)
                continue
            rows[(kernel, name)] = median_seconds(step, reps)
            if hasattr(torch, "compile") and name == "eager":
                try:
                    compiled = torch.compile(step)
                    rows[(kernel, "compile")] = median_seconds(compiled, reps)
                except Exception as e:  # noqa: BLE001 - report any compiler failure and go on
                    print(f"torch_cpu_compare: {kernel} compile: not run ({str(e).splitlines()[0]})",
                          file=sys.stderr)
            del opt, p
    return rows


def tether_rows(path, n):
    """tether's median seconds per (kernel, space) from bench_isa's JSON, at the level the default build runs."""
    with open(path) as f:
        data = json.load(f)
    level = data["context"].get("cpu_isa", "baseline")
    unit = {"ns": 1e-9, "us": 1e-6, "ms": 1e-3, "s": 1.0}
    has_median = any(b.get("aggregate_name") == "median" for b in data["benchmarks"])
    out = {}
    for b in data["benchmarks"]:
        if has_median and b.get("aggregate_name") != "median":
            continue
        name = [p for p in b.get("run_name", b["name"]).split("/") if p != "real_time"]
        if len(name) != 3 or name[2] != f"N:{n}" or name[0] not in BYTES:
            continue
        space, _, at = name[1].partition("@")
        if at not in (level, "native"):
            continue
        out[(name[0], space)] = b["real_time"] * unit[b["time_unit"]]
    return out, level


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1 << 24)
    ap.add_argument("--reps", type=int, default=9)
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--tether", help="bench_isa JSON output")
    ap.add_argument("--json", help="write the torch figures here")
    ap.add_argument("--figures", help="print the table from figures an earlier run wrote with --json")
    args = ap.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    figures = {}
    version = torch.__version__
    if args.figures:
        with open(args.figures) as f:
            saved = json.load(f)
        figures, version, args.n = saved["seconds"], saved["torch"], saved["n"]
    else:
        for t in threads:
            torch.set_num_threads(t)
            for (kernel, variant), s in torch_rows(args.n, args.reps).items():
                figures[f"{kernel}|{variant}|{t}"] = s
    if args.json and not args.figures:
        with open(args.json, "w") as f:
            json.dump({"torch": torch.__version__, "n": args.n, "seconds": figures}, f, indent=1)
    tether = {}
    level = None
    if args.tether:
        tether, level = tether_rows(args.tether, args.n)
    capability = getattr(getattr(torch.backends, "cpu", None), "get_cpu_capability", lambda: "?")()
    print(f"torch {version} (CPU capability {capability}), N = {args.n} float32, GB/s with the byte model")
    print()
    print("| kernel | threads | torch variants (GB/s) | torch best | tether (GB/s) | tether / best |")
    print("| --- | --- | --- | --- | --- | --- |")
    for kernel, bpe in BYTES.items():
        for t in threads:
            mine = {k.split("|")[1]: bpe * args.n / s / 1e9 for k, s in figures.items()
                    if k.split("|")[0] == kernel and int(k.split("|")[2]) == t}
            if not mine:
                continue
            best = max(mine.values())
            cells = ", ".join(f"{v} {g:.1f}" for v, g in mine.items())
            space = "serial" if t == 1 else f"openmp_{t}"
            ours = tether.get((kernel, space))
            ours_gbps = bpe * args.n / ours / 1e9 if ours else None
            print(f"| {kernel} | {t} | {cells} | {best:.1f} | "
                  f"{f'{ours_gbps:.1f} ({space}@{level})' if ours_gbps else '-'} | "
                  f"{f'{ours_gbps / best:.2f}x' if ours_gbps else '-'} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
