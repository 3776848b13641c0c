"""`fittorch tune examples/configs/digits_tune.yaml`: pruning vs none, and two workers vs one.

Runs, side by side in one invocation (so machine load hits all of them alike):

A. median pruner, 1 worker;  B. no pruner, 1 worker;  C. no pruner, 2 workers on one journal.

Each over the same number of trials (default: the config's 20), in a fresh folder. Prints wall
time, best val_accuracy, the best trial's test accuracy and the trial counts, as a Markdown table.

    python benchmarks/tune_digits.py [--trials 20] [--out /tmp/tune-bench]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "examples" / "configs" / "digits_tune.yaml"


def tune(out: Path, name: str, trials: int, pruner: str, workers: int) -> dict:
    cmd = [sys.executable, "-m", "fittorch", "tune", str(CONFIG), "--out", str(out), "--name", name,
           "--trials", str(trials), "--set", f"search.pruner={pruner}", "--quiet"]
    started = time.perf_counter()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(workers)]
    logs = [p.communicate()[0] for p in procs]
    seconds = time.perf_counter() - started
    if any(p.returncode for p in procs):
        raise SystemExit("tune failed:\n" + "\n".join(logs))
    summary = json.loads((out / name / "study.json").read_text())
    best = summary["best"]
    test = json.loads((out / name / best["run_dir"] / "run.json").read_text()).get("test", {})
    numbers = [t["number"] for t in summary["trials"]]
    train_s = sum(json.loads((out / name / t["run_dir"] / "run.json").read_text()).get("seconds") or 0.0
                  for t in summary["trials"])  # fit time only: no imports, data loading or plots
    return {"name": name, "pruner": pruner, "workers": workers, "seconds": seconds,
            "best_val_accuracy": best["value"], "best_test_accuracy": test.get("accuracy"),
            "complete": summary["counts"]["COMPLETE"], "pruned": summary["counts"]["PRUNED"],
            "epochs": sum(t["epochs"] or 0 for t in summary["trials"]), "train_s": train_s,
            "unique_numbers": len(set(numbers)) == len(numbers), "best": best["params"]}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=20)
    ap.add_argument("--out", default="/tmp/tune-bench")
    args = ap.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    rows = [tune(out, "pruned", args.trials, "median", 1), tune(out, "unpruned", args.trials, "none", 1),
            tune(out, "two_workers", args.trials, "none", 2)]
    print("| run | pruner | workers | wall s | training s (sum) | best val acc | its test acc | complete | pruned "
          "| epochs trained |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['pruner']} | {r['workers']} | {r['seconds']:.1f} | {r['train_s']:.1f} "
              f"| {r['best_val_accuracy']:.4f} "
              f"| {r['best_test_accuracy']:.4f} | {r['complete']} | {r['pruned']} | {r['epochs']} |")
    for r in rows:
        print(r["name"], "best params:", r["best"], "| no duplicate trial numbers:", r["unique_numbers"])


if __name__ == "__main__":
    main()
