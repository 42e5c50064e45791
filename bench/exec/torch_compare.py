#!/usr/bin/env python3
"""PyTorch next to tether on the same GPU (docs/benchmarks.md#execution-spaces).

Times, with CUDA events (median of --reps runs after a warm-up), on N float32 parameters:
  torch_separate_sgd_leader       the LSGD update written as separate torch ops:
                                    d = x - x_leader; x.add_(g, alpha=-lr); x.add_(d, alpha=-a)
  torch_separate_momentum_leader  the same with momentum: v.mul_(mu).add_(g); d = x - x_leader;
                                    x.add_(v, alpha=-lr); x.add_(d, alpha=-a)
  torch_fused_sgd_momentum        torch.optim.SGD([x], lr, momentum=0.9, fused=True).step()
  torch_foreach_sgd_momentum      the same with foreach=True
  torch_memcpy_d2d                y.copy_(x), the reference (8 bytes per element)
and reports GB/s with the byte model of ../shared/PERFORMANCE.md (what each update must move: SGD+pull 16,
momentum 20, momentum+pull 24 bytes per element), whatever the separate ops actually move.

With --tether FILE (bench_exec_gpu --benchmark_format=json > FILE) it puts tether's figures for the same N
beside them (exec::cuda: sgd+leader, momentum, momentum+leader) and checks the targets of issue 4:
  tether's GB/s >= torch's fused kernel (momentum, the same 20 bytes per element), and
  tether's time <= half the separate ops' time (sgd+leader and momentum+leader).

Usage: python3 bench/exec/torch_compare.py [--n 67108864] [--reps 50] [--tether gpu.json]
"""
import argparse
import json
import statistics
import sys

import torch


def time_ms(fn, reps):
    fn()  # warm-up (and lazy state, e.g. the momentum buffer)
    torch.cuda.synchronize()
    times = []
    for _ in range(reps):
        a = torch.cuda.Event(enable_timing=True)
        b = torch.cuda.Event(enable_timing=True)
        a.record()
        fn()
        b.record()
        b.synchronize()
        times.append(a.elapsed_time(b))
    return statistics.median(times)


def torch_figures(n, reps):
    dev = torch.device("cuda")
    gen = torch.Generator(device=dev).manual_seed(0)
    x = torch.rand(n, device=dev, generator=gen) + 0.5
    g = torch.rand(n, device=dev, generator=gen) * 0.5 + 0.5
    xl = torch.rand(n, device=dev, generator=gen)
    v = torch.zeros(n, device=dev)
    y = torch.empty_like(x)
    lr, a, mu = 1e-6, 1e-3, 0.9
    out = {}

    def separate_sgd_leader():
        d = x - xl
        x.add_(g, alpha=-lr)
        x.add_(d, alpha=-a)

    def separate_momentum_leader():
        v.mul_(mu).add_(g)
        d = x - xl
        x.add_(v, alpha=-lr)
        x.add_(d, alpha=-a)

    with torch.no_grad():
        out["torch_memcpy_d2d"] = (time_ms(lambda: y.copy_(x), reps), 8)
        out["torch_separate_sgd_leader"] = (time_ms(separate_sgd_leader, reps), 16)
        out["torch_separate_momentum_leader"] = (time_ms(separate_momentum_leader, reps), 24)

    for kind in ("fused", "foreach"):
        p = torch.nn.Parameter(x.clone())
        p.grad = g.clone()
        opt = torch.optim.SGD([p], lr=lr, momentum=mu, **{kind: True})
        out[f"torch_{kind}_sgd_momentum"] = (time_ms(opt.step, reps), 20)
        del opt, p
    return out


def tether_figures(path, n):
    with open(path) as f:
        data = json.load(f)
    res = {}
    has_median = any(b.get("aggregate_name") == "median" for b in data["benchmarks"])
    for b in data["benchmarks"]:
        if has_median and b.get("aggregate_name") != "median":
            continue
        if not has_median and b.get("run_type", "iteration") != "iteration":
            continue
        name = b.get("run_name", b["name"])
        for kernel in ("sgd+leader", "momentum", "momentum+leader"):
            if name.split("/")[:3] == [kernel, "cuda", f"N:{n}"]:
                res[f"tether_{kernel}"] = (b["real_time"] * {"ns": 1e-6, "us": 1e-3, "ms": 1.0}[b["time_unit"]],
                                           b["bytes_per_elem"])
        if name.split("/")[:3] == ["copy", "cuda", f"N:{n}"]:  # exec::cuda's copy: cudaMemcpyAsync D2D
            res["tether_memcpy_d2d"] = (b["real_time"] * {"ns": 1e-6, "us": 1e-3, "ms": 1.0}[b["time_unit"]], 8)
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=1 << 26)
    ap.add_argument("--reps", type=int, default=50)
    ap.add_argument("--tether", help="bench_exec_gpu JSON output")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("torch_compare: no CUDA device", file=sys.stderr)
        return 1

    rows = torch_figures(args.n, args.reps)
    if args.tether:
        rows.update(tether_figures(args.tether, args.n))
    print(f"GPU: {torch.cuda.get_device_name()}, torch {torch.__version__}, N = {args.n} float32")
    print()
    print("| kernel | bytes/elem (model) | time (ms) | GB/s |")
    print("| --- | --- | --- | --- |")
    gbps = {}
    for name, (ms, bpe) in rows.items():
        gbps[name] = bpe * args.n / (ms * 1e-3) / 1e9
        print(f"| {name} | {bpe} | {ms:.3f} | {gbps[name]:.0f} |")

    ok = True
    if args.tether:
        print()
        checks = []
        if "tether_momentum" in rows:
            checks.append(("tether momentum GB/s >= torch fused SGD(momentum) GB/s",
                           gbps["tether_momentum"] >= gbps["torch_fused_sgd_momentum"],
                           f'{gbps["tether_momentum"]:.0f} vs {gbps["torch_fused_sgd_momentum"]:.0f}'))
        for k in ("sgd_leader", "momentum_leader"):
            ours = rows.get(f"tether_{k.replace('_leader', '+leader')}")
            if ours:
                theirs = rows[f"torch_separate_{k}"][0]
                checks.append((f"tether {k} time <= separate torch ops / 2", ours[0] * 2 <= theirs,
                               f"{ours[0]:.3f} ms vs {theirs:.3f} ms ({theirs / ours[0]:.2f}x)"))
        for what, passed, detail in checks:
            print(f"{'PASS' if passed else 'FAIL'}: {what}: {detail}")
            ok = ok and passed
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
