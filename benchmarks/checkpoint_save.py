"""How long a full checkpoint takes to write (atomic, fsynced, hashed) and to load (verified).

    python benchmarks/checkpoint_save.py [--sizes 0.01 1 10] [--repeat 3] [--dir /tmp/x]

Sizes are millions of parameters of an MLP trained one step with Adam (so the optimizer
state is full: 3x the weights are written). Prints one line per size.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path

import torch

import fittorch as ft
from fittorch.checkpoint import load_checkpoint, save_checkpoint


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", type=float, nargs="+", default=[0.0015, 1.0, 10.0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", default=None, help="where to write (default: a temporary directory)")
    args = parser.parse_args()
    base = Path(args.dir or tempfile.mkdtemp(prefix="ckpt-bench-"))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, writing under {base}")
    for millions in args.sizes:
        width = max(8, int((millions * 1e6 / 2) ** 0.5))
        model = ft.MLP(width, [width], width)
        X = torch.randn(64, width)
        trainer = ft.Trainer(model, loss="mse", lr=1e-3, progress=False, metrics=[])
        trainer.fit((X, X), epochs=1, batch_size=64)
        n_params = sum(p.numel() for p in model.parameters())
        saves, loads = [], []
        for i in range(args.repeat):
            d = base / f"{millions}-{i}"
            t = time.perf_counter()
            path = save_checkpoint(trainer, d)
            saves.append(time.perf_counter() - t)
            t = time.perf_counter()
            load_checkpoint(path)
            loads.append(time.perf_counter() - t)
            size = sum(f.stat().st_size for f in path.iterdir())
            shutil.rmtree(d)
        print(f"{n_params / 1e6:8.3f} M params  {size / 2**20:8.2f} MiB  save {min(saves) * 1e3:8.1f} ms  "
              f"load+verify {min(loads) * 1e3:8.1f} ms  (best of {args.repeat})")
    if args.dir is None:
        shutil.rmtree(base, ignore_errors=True)


if __name__ == "__main__":
    main()
