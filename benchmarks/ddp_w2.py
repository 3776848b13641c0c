"""W2 under DDP: 1 process vs 2 processes (torchrun, gloo, CPU).

W2: an MLP 20 -> 64 -> ReLU -> 2 on 200k x 20 rows, batch 256, 3 epochs, Adam 1e-3,
the in-memory fast path. Three runs, median reported:

- ``1 proc``: one process, batch 256;
- ``2 proc, global 256``: two processes, batch_size=128 per rank (the same global batch,
  the same result as one process within float tolerance);
- ``2 proc, 256/rank``: two processes, batch_size=256 per rank (global 512, half the steps).

``fit s`` is the time of ``trainer.fit`` on rank 0 (after a barrier, so every rank has
started); ``process s`` is the whole command, torchrun and interpreter start-up included.

    python benchmarks/ddp_w2.py            # prints a table
    python benchmarks/ddp_w2.py --repeats 1
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(batch_size: int, out: str) -> None:
    import numpy as np
    import torch

    import fittorch as ft

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200_000, 20)).astype(np.float32)
    w = rng.normal(size=20).astype(np.float32)
    y = (X @ w + 0.5 * rng.normal(size=200_000) > 0).astype(np.int64)
    torch.manual_seed(0)
    trainer = ft.Trainer(ft.MLP(20, [64], 2), loss="cross_entropy", optimizer="adam", lr=1e-3, progress=False,
                         metrics=[])
    trainer.dist.barrier()
    started = time.perf_counter()
    trainer.fit((X, y), epochs=3, batch_size=batch_size)
    trainer.dist.barrier()
    seconds = time.perf_counter() - started
    if trainer.dist.is_main:
        Path(out).write_text(json.dumps({"fit_s": seconds, "world_size": trainer.dist.world_size,
                                         "steps": trainer.state.global_step,
                                         "train_loss": trainer.history[-1]["train_loss"]}))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(nproc: int, batch_size: int) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "result.json")
        script = [str(Path(__file__).resolve()), "--worker", str(batch_size), out]
        if nproc == 1:
            cmd = [sys.executable, *script]
        else:
            cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(nproc),
                   "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), *script]
        started = time.perf_counter()
        subprocess.run(cmd, env=env, check=True, timeout=600)
        result = json.loads(Path(out).read_text())
        result["process_s"] = time.perf_counter() - started
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker", nargs=2, metavar=("BATCH", "OUT"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.worker:
        worker(int(args.worker[0]), args.worker[1])
        return
    configs = [("1 proc, batch 256", 1, 256), ("2 proc, global 256 (128/rank)", 2, 128),
               ("2 proc, 256/rank (global 512)", 2, 256)]
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'config':34} {'steps':>6} {'fit s':>8} {'process s':>10} {'train_loss':>11}")
    base = None
    for name, nproc, bs in configs:
        runs = [run(nproc, bs) for _ in range(args.repeats)]
        fit = statistics.median(r["fit_s"] for r in runs)
        proc = statistics.median(r["process_s"] for r in runs)
        base = base or fit
        print(f"{name:34} {runs[0]['steps']:>6} {fit:>8.2f} {proc:>10.2f} {runs[0]['train_loss']:>11.4f}"
              f"   ({base / fit:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
