"""Two fittorch checkouts side by side, warm, with the hand-optimized loop as the yardstick.

    python benchmarks/ab_warm.py OTHER_SRC -w W1 -r 7
    # OTHER_SRC from e.g.: git archive 9fa5f5c src | tar -x -C /tmp/old   -> /tmp/old/src

Did a change slow the hot path? On this shared VM two runs of ``bench.py`` minutes apart
differ by more than the change. Here every round runs this checkout's fittorch, the other
checkout's fittorch and the hand-optimized loop, each in its own process (rotating the order),
and each process trains the workload 4 times and keeps its fastest of the last 3 (CPU seconds).
The table gives each fittorch's speed against the hand loop of the same round, as the median
of the per-round ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

from one_time import CHILD_PRELUDE  # this folder is on sys.path when a script here runs

HERE = Path(__file__).resolve().parent

CHILD = CHILD_PRELUDE + r"""
times = [mod.run(w)[0][1] for _ in range(4)]
print(json.dumps(min(times[1:])))
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("other_src", help="the other checkout's src folder")
    p.add_argument("-w", "--workload", default="W1")
    p.add_argument("-r", "--repeats", type=int, default=7)
    args = p.parse_args()
    this_src = str(HERE.parent / "src")
    cases = [("this", this_src, "fittorch"), ("other", str(Path(args.other_src).resolve()), "fittorch"),
             ("hand", this_src, "hand_optimized")]
    cpu: dict[str, list[float]] = {name: [] for name, _, _ in cases}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for r in range(args.repeats):
        for name, src, impl in cases[r % 3:] + cases[: r % 3]:
            out = subprocess.run([sys.executable, "-c", CHILD, str(HERE), src, impl, args.workload],
                                 capture_output=True, text=True, check=True, env=env).stdout
            cpu[name].append(json.loads(out.strip().splitlines()[-1]))
        print(f"  round {r + 1}: " + "  ".join(f"{n} {v[-1]:.3f}s" for n, v in cpu.items()), flush=True)
    print(f"\n{args.workload}, warm, {args.repeats} rounds (CPU seconds, fastest of 3 per process)\n")
    print("| fittorch | median s | speed vs the hand-optimized loop (median of per-round ratios) |")
    print("|---|---:|---:|")
    for name in ("this", "other"):
        ratio = statistics.median(h / x for x, h in zip(cpu[name], cpu["hand"]))
        print(f"| {name} | {statistics.median(cpu[name]):.3f} | {ratio:.3f} |")
    print(f"| (hand-optimized loop) | {statistics.median(cpu['hand']):.3f} | 1.000 |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
