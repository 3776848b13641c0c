"""How long ``fittorch doctor`` takes on the reference experiment (MLP 20->64->2, 800 train rows).

    python benchmarks/doctor_speed.py [--threads 1] [--repeat 3]

The first call includes one-time imports (torch.optim pulls in torch._dynamo on first use,
matplotlib for lr_range.png); later calls show the checks' own cost. Prints per-check seconds.
"""

from __future__ import annotations

import argparse
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--gradcheck", action="store_true")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from fittorch.cli.doctor import demo_setup
    from fittorch.doctor import doctor

    out = tempfile.mkdtemp()
    for i in range(args.repeat):
        started = time.perf_counter()
        report = doctor(**demo_setup(), out=out, gradcheck=args.gradcheck)
        wall = time.perf_counter() - started
        label = "cold (with first-use imports)" if i == 0 else f"warm #{i}"
        per = ", ".join(f"{c.id} {c.seconds:.2f}" for c in report if c.seconds >= 0.05)
        print(f"{label}: {wall:.2f} s, {report.counts()} | slowest: {per}")


if __name__ == "__main__":
    main()
