"""One-time cost of each implementation's first training call, in fresh processes.

    python benchmarks/one_time.py -w W1 -r 3

Each process imports torch and the implementation, then trains the workload twice: the first
call pays every one-time cost (lazy imports, first-call initialisation), the second does not.
``first - second`` is the one-time cost; the modules the first call imported say where it went.
The implementations run alternately, each in its own new process. Times are CPU seconds of the
process (``time.process_time``), which this shared VM's neighbours disturb less than wall time.

    python benchmarks/one_time.py -w W1 -r 9 --preimport torch._dynamo

``--preimport`` imports a module before the first call. With ``torch._dynamo`` (which every
torch optimizer's first use imports, whoever calls it) what remains is each implementation's
own one-time cost.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

# a child process: argv = BENCHMARKS_DIR SRC IMPL WORKLOAD ...; leaves `w` (the workload) and `mod` (the impl)
CHILD_PRELUDE = r"""
import json, sys, time
sys.path[:0] = [sys.argv[1], sys.argv[2]]
import torch
torch.set_num_threads(1)
import workloads
from impls import load
w = workloads.get(sys.argv[4])
mod = load(sys.argv[3])
"""

CHILD = CHILD_PRELUDE + r"""
if sys.argv[5]:
    __import__(sys.argv[5])
before = set(sys.modules)
t = time.process_time(); mod.run(w); first = time.process_time() - t
new = sorted(set(sys.modules) - before)
t = time.process_time(); mod.run(w); second = time.process_time() - t
print(json.dumps({"first": first, "second": second, "modules": new}))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("-w", "--workload", default="W1")
    p.add_argument("-r", "--repeats", type=int, default=3)
    p.add_argument("--impls", default="fittorch,hand_optimized,plain_loop")
    p.add_argument("--preimport", default="", metavar="MODULE",
                   help="import this module before the first call (e.g. torch._dynamo), outside the timing")
    args = p.parse_args()
    impls = args.impls.split(",")
    runs: dict[str, list[dict]] = {name: [] for name in impls}
    for r in range(args.repeats):
        for name in impls[r % len(impls):] + impls[: r % len(impls)]:
            out = subprocess.run([sys.executable, "-c", CHILD, str(HERE), str(HERE.parent / "src"), name,
                                  args.workload, args.preimport], capture_output=True, text=True,
                                 check=True).stdout
            runs[name].append(json.loads(out.splitlines()[-1]))
    pre = f", {args.preimport} imported beforehand" if args.preimport else ""
    print(f"{args.workload}, {args.repeats} fresh processes each (medians, CPU seconds{pre})\n")
    print("| implementation | first call s | second call s | one-time s | modules the first call imported |")
    print("|---|---:|---:|---:|---:|")
    for name in impls:
        rows = runs[name]
        first = statistics.median(x["first"] for x in rows)
        second = statistics.median(x["second"] for x in rows)
        one_time = statistics.median(x["first"] - x["second"] for x in rows)
        print(f"| {name} | {first:.3f} | {second:.3f} | {one_time:.3f} | {len(rows[-1]['modules'])} |")
    if len(impls) > 1:
        own = {m for m in runs[impls[0]][-1]["modules"]} - {m for n in impls[1:] for m in runs[n][-1]["modules"]}
        print(f"\nModules only {impls[0]}'s first call imported: {sorted(own) or 'none'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
