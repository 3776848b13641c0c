"""W2 under DDP: 1 process vs 2 processes (torchrun, gloo, CPU).

W2: an MLP 20 -> 64 -> ReLU -> 2 on 200k x 20 rows, batch 256, 3 epochs, Adam 1e-3,
the in-memory fast path. Each configuration also runs as a hand-written (DDP) loop, the
baseline. Three runs, median reported:

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


def hand_worker(batch_size: int, out: str) -> None:
    """The same job as a hand-written DDP loop: the baseline fittorch is compared with."""
    import numpy as np
    import torch
    import torch.distributed as dist
    from torch import nn

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    if distributed:
        dist.init_process_group("gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    torch.set_num_threads(1)
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200_000, 20)).astype(np.float32)
    w = rng.normal(size=20).astype(np.float32)
    y = (X @ w + 0.5 * rng.normal(size=200_000) > 0).astype(np.int64)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    ddp = nn.parallel.DistributedDataParallel(model) if distributed else model
    loss_fn = nn.CrossEntropyLoss()
    if distributed:
        dist.barrier()
    started = time.perf_counter()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    g = torch.Generator().manual_seed(0)
    steps = 0
    for _ in range(3):
        order = torch.randperm(len(Xt), generator=g)[rank::world]
        xs, ys = Xt[order], yt[order]
        losses = []
        for i in range(0, len(xs), batch_size):
            loss = loss_fn(ddp(xs[i:i + batch_size]), ys[i:i + batch_size])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            losses.append(loss.detach())
            steps += 1
        mean = torch.stack(losses).mean()
        if distributed:
            dist.all_reduce(mean)
            mean /= world
    if distributed:
        dist.barrier()
    seconds = time.perf_counter() - started
    if rank == 0:
        Path(out).write_text(json.dumps({"fit_s": seconds, "world_size": world, "steps": steps,
                                         "train_loss": float(mean)}))
    if distributed:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(nproc: int, batch_size: int, hand: bool = False) -> dict:
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"), OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory() as tmp:
        out = str(Path(tmp) / "result.json")
        script = [str(Path(__file__).resolve()), "--hand-worker" if hand else "--worker", str(batch_size), out]
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
    parser.add_argument("--hand-worker", nargs=2, metavar=("BATCH", "OUT"))
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    if args.worker:
        worker(int(args.worker[0]), args.worker[1])
        return
    if args.hand_worker:
        hand_worker(int(args.hand_worker[0]), args.hand_worker[1])
        return
    configs = [("fittorch 1 proc, batch 256", 1, 256, False), ("hand loop 1 proc, batch 256", 1, 256, True),
               ("fittorch 2 proc, 128/rank (global 256)", 2, 128, False),
               ("hand DDP 2 proc, 128/rank (global 256)", 2, 128, True),
               ("fittorch 2 proc, 256/rank (global 512)", 2, 256, False),
               ("hand DDP 2 proc, 256/rank (global 512)", 2, 256, True)]
    print(f"cores {os.cpu_count()}, load average {os.getloadavg()[0]:.1f}")
    print(f"{'config':40} {'steps':>6} {'fit s':>8} {'process s':>10} {'train_loss':>11}")
    base = None
    for name, nproc, bs, hand in configs:
        runs = [run(nproc, bs, hand) for _ in range(args.repeats)]
        fit = statistics.median(r["fit_s"] for r in runs)
        proc = statistics.median(r["process_s"] for r in runs)
        base = base or fit
        print(f"{name:40} {runs[0]['steps']:>6} {fit:>8.2f} {proc:>10.2f} {runs[0]['train_loss']:>11.4f}"
              f"   ({base / fit:.2f}x)", flush=True)


if __name__ == "__main__":
    main()
