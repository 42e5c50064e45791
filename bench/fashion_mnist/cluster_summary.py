#!/usr/bin/env python3
"""The cluster study's tables and plot data (run_cluster_study.sh calls it).

    python3 bench/fashion_mnist/cluster_summary.py OUT_DIR > OUT_DIR/summary.md

Reads OUT_DIR/<layout>/<rate>/seed<k>/<algorithm>/{runs,curves}.csv (fmnist_study_mpi's files) and
OUT_DIR/<layout>/<rate>/seed<k>/sandblaster.md; writes markdown tables to standard output and, for gnuplot,
OUT_DIR/plot/<layout>_<rate>_<algorithm>.dat (epoch, mean training seconds, mean test accuracy % over the seeds).
"""
import csv
import os
import statistics
import sys

RATES = ["100mbit", "1gbit", "unlimited"]
RATE_LABEL = {"100mbit": "100 Mbit/s", "1gbit": "1 Gbit/s", "unlimited": "unlimited"}
# The study's order (run_cluster_study.sh's ALGOS); others follow in the order found.
ORDER = ["sync-sgd", "lsgd", "lsgd-grouped", "easgd", "local-sgd", "overlap-local-sgd", "async-lsgd", "async-easgd",
         "downpour", "downpour-sgd", "swarm", "swarm+bits=8"]


def read_csv(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def time_to(curve, target):
    """Training seconds at the end of the first epoch at or above target, and that epoch (None if never)."""
    for row in curve:
        if int(row["epoch"]) > 0 and float(row["test_accuracy"]) >= target:
            return float(row["train_s"]), int(row["epoch"])
    return None


def mean(values):
    return statistics.fmean(values) if values else float("nan")


def collect(out):
    """{layout: {rate: {algorithm: [run, ...]}}}, a run being (runs.csv row, its curve rows); also failures."""
    data, failed = {}, []
    for layout in sorted(os.listdir(out)):
        if layout == "plot" or not os.path.isdir(os.path.join(out, layout)):
            continue
        for rate in RATES:
            rate_dir = os.path.join(out, layout, rate)
            if not os.path.isdir(rate_dir):
                continue
            for seed in sorted(os.listdir(rate_dir)):
                seed_dir = os.path.join(rate_dir, seed)
                if not os.path.isdir(seed_dir):
                    continue
                for algo in sorted(os.listdir(seed_dir)):
                    d = os.path.join(seed_dir, algo)
                    if not os.path.isdir(d):
                        continue
                    curves_path = os.path.join(d, "curves.csv")
                    curves = read_csv(curves_path) if os.path.exists(curves_path) else []
                    if os.path.exists(os.path.join(d, "failed")) or not os.path.exists(os.path.join(d, "runs.csv")):
                        failed.append((layout, rate, seed, algo))
                        if len(curves) < 2:
                            continue
                        # Cut at the time limit: the run as far as its last epoch, marked cut.
                        last = curves[-1]
                        runs = [{"algorithm": last["algorithm"], "seed": last["seed"], "cut": last["epoch"],
                                 "final_accuracy": last["test_accuracy"], "bytes_per_worker": last["bytes_per_worker"],
                                 "train_s": last["train_s"], "gradient_s": last["gradient_s"],
                                 "step_s": last["step_s"], "comm_s": last["comm_s"]}]
                    else:
                        runs = read_csv(os.path.join(d, "runs.csv"))
                    for run in runs:
                        curve = [c for c in curves if c["seed"] == run["seed"]]
                        data.setdefault(layout, {}).setdefault(rate, {}).setdefault(run["algorithm"], []).append(
                            (run, curve))
    return data, failed


def algorithm_order(data):
    order = list(ORDER)
    for rates in data.values():
        for algos in rates.values():
            for a in algos:
                if a not in order:
                    order.append(a)
    present = {a for rates in data.values() for algos in rates.values() for a in algos}
    return [a for a in order if a in present]


def fmt_time(runs, target):
    """Mean training seconds to `target` over the seeds that reached it, and its epoch: '23 s (ep 5)'."""
    hits = [time_to(curve, target) for _, curve in runs]
    reached = [h for h in hits if h is not None]
    if not reached:
        return "–"
    text = f"{mean([h[0] for h in reached]):.0f} s (ep {mean([h[1] for h in reached]):g})"
    return text if len(reached) == len(runs) else f"{text} [{len(reached)}/{len(runs)}]"


def main():
    out = sys.argv[1]
    data, failed = collect(out)
    order = algorithm_order(data)
    os.makedirs(os.path.join(out, "plot"), exist_ok=True)
    for layout, rates in sorted(data.items(), key=lambda kv: (-int(kv[0].split("x")[0]), kv[0])):
        hosts, per_host = layout.split("x")
        print(f"### {hosts} hosts x {per_host} rank{'s' if per_host != '1' else ''} per host\n")
        print("Per link rate: wall time to 88% / to 87% test accuracy (training seconds, evaluations excluded, at "
              "the end of the first epoch at or above it, and that epoch; – : not reached in 8 epochs; [k/n]: "
              "reached by k of n seeds); and the training time of the whole run, the share of the workers' "
              "time spent in communication (`seconds_comm` over gradient + step) and the MB received per worker. "
              "Final accuracy: at 1 Gbit/s (mean ± sd over the seeds; the synchronous algorithms' does not depend "
              "on the rate).\n")
        head = "| algorithm | final accuracy % |"
        rule = "|---|---|"
        for rate in RATES:
            if rate in rates:
                head += f" {RATE_LABEL[rate]}: to 88% / 87% |"
                rule += "---|"
        for rate in RATES:
            if rate in rates:
                head += f" {RATE_LABEL[rate]}: run s, comm %, MB |"
                rule += "---|"
        print(head)
        print(rule)
        for algo in order:
            ref_rate = "1gbit" if algo in rates.get("1gbit", {}) else next((r for r in RATES if algo in rates.get(r, {})), None)
            if ref_rate is None:
                continue
            ref = rates[ref_rate][algo]
            acc = [float(r["final_accuracy"]) * 100 for r, _ in ref]
            sd = statistics.stdev(acc) if len(acc) > 1 else 0.0
            acc_text = f"{mean(acc):.2f} ± {sd:.2f}" if len(acc) > 1 else f"{acc[0]:.2f}"
            line = f"| {algo} | {acc_text} |"
            cells_time, cells_run = "", ""
            for rate in RATES:
                if rate not in rates:
                    continue
                runs = rates[rate].get(algo, [])
                if not runs:
                    cells_time += " not run |"
                    cells_run += " not run |"
                    continue
                train = mean([float(r["train_s"]) for r, _ in runs])
                cut = [r["cut"] for r, _ in runs if r.get("cut")]
                comm = mean([float(r["comm_s"]) / max(1e-12, float(r["gradient_s"]) + float(r["step_s"])) * 100
                             for r, _ in runs])
                cells_time += f" {fmt_time(runs, 0.88)} / {fmt_time(runs, 0.87)} |"
                cut_text = f", cut after epoch {', '.join(cut)}" if cut else ""
                mb = mean([float(r["bytes_per_worker"]) / 1e6 for r, _ in runs])
                cells_run += f" {train:.0f} s, {comm:.0f}%, {mb:.0f}{cut_text} |"
            line += cells_time + cells_run
            print(line)
            # Plot data: mean over seeds per epoch.
            for rate in RATES:
                runs = rates.get(rate, {}).get(algo, [])
                if not runs:
                    continue
                n = min(len(c) for _, c in runs)
                name = algo.replace("+", "_").replace("=", "_")
                with open(os.path.join(out, "plot", f"{layout}_{rate}_{name}.dat"), "w") as f:
                    f.write(f"# {algo} on {layout} at {rate}: epoch, training s, test accuracy % (means over "
                            f"{len(runs)} seeds)\n")
                    for e in range(n):
                        t = mean([float(c[e]["train_s"]) for _, c in runs])
                        a = mean([float(c[e]["test_accuracy"]) * 100 for _, c in runs])
                        f.write(f"{e} {t:.3f} {a:.3f}\n")
        print()
        sb_rows = []
        for rate in RATES:
            rate_dir = os.path.join(out, layout, rate)
            if not os.path.isdir(rate_dir):
                continue
            for seed in sorted(os.listdir(rate_dir)):
                path = os.path.join(rate_dir, seed, "sandblaster.md")
                if os.path.exists(path):
                    rows = [l for l in open(path).read().splitlines() if l.startswith("| ") and l[2].isdigit()]
                    sb_rows += [(RATE_LABEL[rate], r) for r in rows]
        if sb_rows:
            print(f"Sandblaster L-BFGS on the softmax regression ({hosts} x {per_host}; lbfgs_scaling_mpi: 20000 "
                  "images, 32 portions, 10 iterations, median of 3):\n")
            print("| link | ranks | portions | ms / iteration | CPU ms / iteration | final loss | coordinator B / batch "
                  "| model | all ranks KB / batch | model | same as the team |")
            print("|---|---|---|---|---|---|---|---|---|---|---|")
            for lab, r in sb_rows:
                print(f"| {lab} {r}")
            print()
    if failed:
        print("Runs that failed or were cut at the time limit (their epochs so far are in the table, marked cut): " +
              ", ".join(f"{a} ({l}, {r}, {s})" for l, r, s, a in failed) + ".\n")


if __name__ == "__main__":
    main()
