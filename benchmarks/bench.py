"""fittorch benchmarks: one command, every implementation side by side.

    python benchmarks/bench.py                      # W1-W4, all implementations, 5 rounds, 1 thread
    python benchmarks/bench.py -w W1 -r 7           # just the reference experiment
    python benchmarks/bench.py --process            # also: demo vs plain script, import time, peak RSS
    python benchmarks/bench.py -w W1 --impls fittorch,hand_optimized --fittorch-opts compile=True
    python benchmarks/bench.py --fresh -w W1,W2,W3,W4 -r 5   # fresh processes instead (see fresh.py)
    python benchmarks/bench.py --cli -r 5                    # CLI latency vs `import torch` (fresh.py)
    python benchmarks/bench.py --device cuda -r 5            # on a GPU, with fittorch_cuda_graphs too

Warm mode (the default): each workload runs every implementation once to warm up (imports, lazy initialisation),
then ``--repeats`` rounds; each round runs every implementation once, in a rotated order,
so slow drifts in machine load hit all of them alike. The thread count is pinned with
``torch.set_num_threads`` before every run. Reported, for wall time and for the process's
CPU time (steadier on a shared machine): the median seconds, and the median of the
per-round ratios ``t(hand_optimized) / t(impl)`` (speed relative to the hand-optimized
loop; above 1 is faster) and ``t(impl) / t(fittorch)``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path[:0] = [str(HERE), str(ROOT / "src")]  # this checkout's fittorch, not an installed one

import torch  # noqa: E402

import workloads  # noqa: E402
from impls import IMPLS, available, load  # noqa: E402

BASELINE = "hand_optimized"
ON_DEVICE = ("fittorch", "fittorch_cuda_graphs", "hand_optimized", "plain_loop")


def parse_opts(text: str) -> dict:
    opts = {}
    for item in filter(None, (text or "").split(",")):
        key, _, value = item.partition("=")
        try:
            opts[key] = json.loads(value.lower() if value in ("True", "False") else value)
        except json.JSONDecodeError:
            opts[key] = value
    return opts


def run_one(name: str, w, threads: int, fittorch_opts: dict):
    torch.set_num_threads(threads)
    mod = load(name)
    (wall, cpu), acc = mod.run(w, **fittorch_opts) if name.startswith("fittorch") else mod.run(w)
    return wall, cpu, acc, torch.get_num_threads()


def _median_ratio(num: list[float], den: list[float]) -> float:
    return statistics.median(a / b for a, b in zip(num, den))


def bench_workload(wname: str, impls: list[str], repeats: int, threads: int, fittorch_opts: dict,
                   epochs: int | None, log, device: str = "cpu") -> dict:
    w = workloads.get(wname, epochs=epochs)
    w.device = device
    log(f"\n{w.name}: {w.title}; {len(w.X_train):,} train / {len(w.X_val):,} val rows; "
        f"{threads} thread(s); {repeats} rounds")
    warm = workloads.get(wname, epochs=1)
    warm.device = device
    warm.X_train, warm.y_train = warm.X_train[: warm.batch_size * 4], warm.y_train[: warm.batch_size * 4]
    for name in impls:  # imports and lazy initialisation happen here, outside the timed rounds
        run_one(name, warm, threads, fittorch_opts)
    wall = {name: [] for name in impls}
    cpu = {name: [] for name in impls}
    accs = {name: [] for name in impls}
    for r in range(repeats):
        order = impls[r % len(impls):] + impls[: r % len(impls)]
        for name in order:
            t_wall, t_cpu, acc, got_threads = run_one(name, w, threads, fittorch_opts)
            if got_threads != threads:
                log(f"  note: {name} left torch at {got_threads} threads (pinned {threads})")
            wall[name].append(t_wall)
            cpu[name].append(t_cpu)
            accs[name].append(acc)
        log("  round %d (load %.1f): %s" % (r + 1, os.getloadavg()[0], "  ".join(
            f"{n} {wall[n][-1]:.2f}s/{cpu[n][-1]:.2f}cpu" for n in impls)))
    rows = {}
    for name in impls:
        has_base, has_ft = BASELINE in wall, "fittorch" in wall
        rows[name] = {
            "wall_s": statistics.median(wall[name]), "cpu_s": statistics.median(cpu[name]),
            "wall": wall[name], "cpu": cpu[name],
            "vs_hand_wall": _median_ratio(wall[BASELINE], wall[name]) if has_base else None,
            "vs_hand_cpu": _median_ratio(cpu[BASELINE], cpu[name]) if has_base else None,
            "ft_speedup_wall": _median_ratio(wall[name], wall["fittorch"]) if has_ft else None,
            "ft_speedup_cpu": _median_ratio(cpu[name], cpu["fittorch"]) if has_ft else None,
            "steps_per_s": w.steps / statistics.median(wall[name]), "val_acc": statistics.median(accs[name]),
        }
    if device != "cpu":
        w.title += f" on {device}" + (f" ({torch.cuda.get_device_name()})" if device.startswith("cuda") else "")
    return {"workload": w.name, "title": w.title, "steps": w.steps, "threads": threads, "repeats": repeats,
            "fittorch_opts": fittorch_opts, "rows": rows}


def _f(x, fmt="{:.2f}"):
    return "-" if x is None else fmt.format(x)


def table(result: dict) -> str:
    opts = f", fittorch {result['fittorch_opts']}" if result["fittorch_opts"] else ""
    lines = [f"### {result['workload']}, warm: {result['title']} ({result['threads']} thread(s), "
             f"{result['repeats']} rounds{opts})", "",
             "| implementation | wall s (median) | CPU s (median) | steps/s | vs hand-optimized, wall | "
             "vs hand-optimized, CPU | fittorch is N× faster, wall | fittorch is N× faster, CPU | val acc |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name, r in sorted(result["rows"].items(), key=lambda kv: kv[1]["cpu_s"]):
        lines.append(f"| {name} | {r['wall_s']:.3f} | {r['cpu_s']:.3f} | {r['steps_per_s']:,.0f} | "
                     f"{_f(r['vs_hand_wall'])} | {_f(r['vs_hand_cpu'])} | {_f(r['ft_speedup_wall'])} | "
                     f"{_f(r['ft_speedup_cpu'])} | {r['val_acc']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-w", "--workloads", default="W1,W2,W3,W4")
    p.add_argument("--impls", default=",".join(IMPLS), help=f"comma-separated, from {', '.join(IMPLS)}")
    p.add_argument("-r", "--repeats", type=int, default=5)
    p.add_argument("-t", "--threads", type=int, default=1, help="pinned intra-op thread count for every run")
    p.add_argument("--epochs", type=int, default=None, help="override every workload's epochs (smoke runs)")
    p.add_argument("--device", default="cpu", help="cpu or cuda: for fittorch, hand_optimized and plain_loop")
    p.add_argument("--fittorch-opts", default="", help="extra Trainer kwargs, e.g. compile=True")
    p.add_argument("--process", action="store_true", help="also measure whole processes (see process.py)")
    p.add_argument("--process-only", action="store_true")
    p.add_argument("--fresh", action="store_true",
                   help="time each training call in its own new process (cold), and each whole process")
    p.add_argument("--cli", action="store_true", help="CLI latency: --help, runs, predict, evaluate vs import torch")
    p.add_argument("--json", default=None, help="write all results to this file")
    args = p.parse_args(argv)

    def log(msg=""):
        print(msg, flush=True)

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit(f"--device {args.device}: CUDA is not available (torch {torch.__version__}).")
    impls = [n.strip() for n in args.impls.split(",") if n.strip()]
    for name in list(impls):
        if name not in IMPLS:
            raise SystemExit(f"unknown implementation {name!r}; choose from {', '.join(IMPLS)}")
        why = available(name)
        if args.device != "cpu" and name not in ON_DEVICE:
            why = f"only {', '.join(ON_DEVICE)} run on --device {args.device}"
        if args.device == "cpu" and name == "fittorch_cuda_graphs":
            why = "CUDA graphs need --device cuda"
        if why:
            log(f"skipping {name}: {why}")
            impls.remove(name)
    load_avg = os.getloadavg()
    log(f"torch {torch.__version__}, Python {platform.python_version()}, {os.cpu_count()} CPUs, "
        f"load average {load_avg[0]:.1f} at start")
    results = {"torch": torch.__version__, "cpus": os.cpu_count(), "load_start": load_avg, "workloads": [],
               "command": " ".join([Path(sys.executable).name, *sys.argv])}
    wnames = [x.strip() for x in args.workloads.split(",") if x.strip()]
    if args.fresh or args.cli:
        import fresh

        if args.fresh:
            results["fresh"] = []
            for wname in wnames:
                w = workloads.get(wname, epochs=args.epochs)
                log(f"\n{w.name} in fresh processes: {w.title}")
                res = fresh.fresh_fits(wname, impls, args.repeats, args.threads, args.epochs, log)
                res["title"] = w.title
                results["fresh"].append(res)
                log("\n" + fresh.fresh_table(res, w.title))
        if args.cli:
            results["cli"] = fresh.cli_latency(args.repeats, log)
            log("\n" + fresh.cli_table(results["cli"]))
    elif not args.process_only:
        for wname in wnames:
            res = bench_workload(wname, impls, args.repeats, args.threads, parse_opts(args.fittorch_opts),
                                 args.epochs, log, device=args.device)
            results["workloads"].append(res)
            log("\n" + table(res))
    if args.process or args.process_only:
        import process

        results["process"] = process.measure(repeats=max(3, args.repeats), log=log)
    results["load_end"] = os.getloadavg()
    log(f"\nload average {results['load_end'][0]:.1f} at the end")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
