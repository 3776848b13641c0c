"""One implementation, one workload, in this (fresh) process; prints one JSON line.

    python benchmarks/fresh_one.py fittorch W1 [--threads 1] [--epochs N]

This is what a user's ``python train.py`` does: start Python, import torch and the
library, make the data, train once, exit. The training call (``impl.run(workload)``,
from the user's numpy arrays to the last validation) is timed inside; ``fresh.py`` times
the whole process from outside. Nothing is warmed up: every one-time cost the
implementation has (lazy imports, first-call initialisation) lands where it lands.
"""

from __future__ import annotations

import time

T_START = time.perf_counter()

import argparse  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE), str(HERE.parent / "src")]  # this checkout's fittorch


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("impl")
    p.add_argument("workload")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--epochs", type=int, default=None)
    args = p.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    import workloads
    from impls import load

    w = workloads.get(args.workload, epochs=args.epochs)
    t0 = time.perf_counter()
    mod = load(args.impl)  # the implementation's own imports (fittorch: `from fittorch import Trainer`)
    t_import = time.perf_counter() - t0
    (wall, cpu), acc = mod.run(w)
    print(json.dumps({"impl": args.impl, "workload": args.workload, "fit_wall_s": wall, "fit_cpu_s": cpu,
                      "impl_import_s": t_import, "val_acc": acc, "steps": w.steps,
                      "in_process_s": time.perf_counter() - T_START, "threads": torch.get_num_threads(),
                      "modules": sorted(m for m in sys.modules if not m.startswith(("fittorch", "impls")))}))


if __name__ == "__main__":
    main()
