"""One-time cost of each implementation's first training call, in fresh processes.

    python benchmarks/one_time.py -w W1 -r 3

Each process imports torch and the implementation, then trains the workload twice: the first
call pays every one-time cost (lazy imports, first-call initialisation), the second does not.
``first - second`` is the one-time cost; the modules the first call imported say where it went.
The implementations run alternately, each in its own new process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

CHILD = r"""
import json, sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import torch
torch.set_num_threads(1)
import workloads
from impls import load
w = workloads.get(sys.argv[4])
mod = load(sys.argv[3])
before = set(sys.modules)
t = time.perf_counter(); mod.run(w); first = time.perf_counter() - t
new = sorted(set(sys.modules) - before)
t = time.perf_counter(); mod.run(w); second = time.perf_counter() - t
print(json.dumps({"first": first, "second": second, "modules": new}))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-w", "--workload", default="W1")
    p.add_argument("-r", "--repeats", type=int, default=3)
    p.add_argument("--impls", default="fittorch,hand_optimized,plain_loop")
    args = p.parse_args()
    impls = args.impls.split(",")
    runs: dict[str, list[dict]] = {name: [] for name in impls}
    for r in range(args.repeats):
        for name in impls[r % len(impls):] + impls[: r % len(impls)]:
            out = subprocess.run([sys.executable, "-c", CHILD, str(HERE), str(HERE.parent / "src"), name,
                                  args.workload], capture_output=True, text=True, check=True).stdout
            runs[name].append(json.loads(out.splitlines()[-1]))
    print(f"{args.workload}, {args.repeats} fresh processes each (medians)\n")
    print("| implementation | first call s | second call s | one-time s | modules the first call imported |")
    print("|---|---:|---:|---:|---:|")
    for name in impls:
        rows = runs[name]
        first = statistics.median(x["first"] for x in rows)
        second = statistics.median(x["second"] for x in rows)
        one_time = statistics.median(x["first"] - x["second"] for x in rows)
        print(f"| {name} | {first:.2f} | {second:.2f} | {one_time:.2f} | {len(rows[-1]['modules'])} |")
    own = {m for m in runs[impls[0]][-1]["modules"]} - {m for n in impls[1:] for m in runs[n][-1]["modules"]}
    print(f"\nModules only {impls[0]}'s first call imported: {sorted(own) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
