"""Overhead of the progress bar and the metrics on the reference experiment.

Runs the lesson's experiment (make_classification 1000x20, MLP 20->64->2, Adam 1e-3,
batch 32, validation every epoch) with fittorch twice per repeat, interleaved:

- ``none``: no progress bar, no metrics, no non-finite guard;
- ``all``: the progress bar (a live tqdm bar, written to a buffer as if on a terminal,
  with the inner step bar), the default guard, and five metrics (accuracy, f1, auroc,
  log_loss, confusion_matrix).

Usage: python benchmarks/bench_callbacks_overhead.py [--epochs 100] [--repeats 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import io
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402

import fittorch as ft  # noqa: E402
from fittorch.demo import make_reference_data  # noqa: E402


def one_run(config: str, data, *, epochs: int, device: str) -> tuple[float, float]:
    (X_train, y_train), (X_test, y_test) = data
    ft.seed_everything(42)
    model = ft.MLP(20, [64], 2)
    if config == "none":
        kwargs = dict(progress=False, metrics=[], nonfinite="ignore", callbacks=[])
    else:
        bar = ft.ProgressBar(log_every=10, stream=io.StringIO(), bar=True, steps=True, summary=True)
        kwargs = dict(progress=False, metrics=["accuracy", "f1", "auroc", "log_loss", "confusion_matrix"],
                      callbacks=[bar])
    trainer = ft.Trainer(model, loss="cross_entropy", optimizer="adam", lr=1e-3, seed=42, device=device, **kwargs)
    started, cpu = time.perf_counter(), time.process_time()
    trainer.fit((X_train, y_train), val=(X_test, y_test), epochs=epochs, batch_size=32)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - started, time.process_time() - cpu


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=100)
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    data = make_reference_data()[:2]
    one_run("all", data, epochs=2, device=args.device)  # warm-up: imports, allocator, kernels
    one_run("none", data, epochs=2, device=args.device)
    wall: dict[str, list[float]] = {"none": [], "all": []}
    cpu: dict[str, list[float]] = {"none": [], "all": []}
    for _ in range(args.repeats):
        for config in ("none", "all"):
            w, c = one_run(config, data, epochs=args.epochs, device=args.device)
            wall[config].append(w)
            cpu[config].append(c)
    print(f"device {args.device}, torch {torch.__version__}, {args.epochs} epochs x 25 steps + validation, "
          f"{args.repeats} interleaved repeats (fit uses 1 CPU thread for this model)")
    for label, times in (("wall", wall), ("process CPU", cpu)):
        med = {k: statistics.median(v) for k, v in times.items()}
        best = {k: min(v) for k, v in times.items()}
        print(f"{label} time:")
        for k, v in times.items():
            print(f"  {k:>4}: median {med[k]:.3f} s, min {best[k]:.3f} s  (runs: {', '.join(f'{t:.3f}' for t in v)})")
        print(f"  overhead (median): {med['all'] - med['none']:+.3f} s ({100 * (med['all'] / med['none'] - 1):+.1f} %); "
              f"(min): {best['all'] - best['none']:+.3f} s ({100 * (best['all'] / best['none'] - 1):+.1f} %), "
              f"{1000 * (best['all'] - best['none']) / args.epochs:.2f} ms/epoch")


if __name__ == "__main__":
    main()
