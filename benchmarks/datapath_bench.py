"""The in-memory fast path against a hand-written loop and a DataLoader(TensorDataset).

    python benchmarks/datapath_bench.py            # reference experiment: 800 train rows x 20, batch 32, 100 epochs
    python benchmarks/datapath_bench.py --reps 9 --epochs 100

All three train the same MLP(20, [64], 2) with the same fused Adam (the implementation
fittorch picks) on the same tensors, shuffling every epoch, one host sync per epoch:

- ``fittorch``: ``Trainer.fit((X, y), epochs=100, batch_size=32)`` (the whole call: validation
  of the data, dry forward, loop);
- ``hand``: the loop a careful user writes: ``randperm`` + one gather per epoch, then slices;
- ``dataloader``: the same loop over ``DataLoader(TensorDataset(X, y), batch_size=32, shuffle=True)``.

Runs alternate in a rotating order (so drift on a shared machine hits all three alike);
threads are pinned to 1; the median of the repetitions is reported.
Speed ratio = hand seconds / other seconds (1.0 = as fast as the hand-written loop).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

import torch  # noqa: E402
from torch import nn  # noqa: E402
from torch.utils.data import DataLoader, TensorDataset  # noqa: E402


def make_model():
    torch.manual_seed(42)
    return nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))


def run_fittorch(X, y, epochs, bs):
    import fittorch as ft

    trainer = ft.Trainer(make_model(), loss="cross_entropy", optimizer="adam", lr=1e-3, metrics=[],
                         seed=42, progress=False, device="cpu")
    t0 = time.perf_counter()
    trainer.fit((X, y), epochs=epochs, batch_size=bs)
    return time.perf_counter() - t0, trainer.history.last["train_loss"]


def _epoch(model, loss_fn, opt, batches):
    losses = []
    for xb, yb in batches:
        loss = loss_fn(model(xb), yb)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.detach())
    return float(torch.stack(losses).mean())  # the epoch's one host sync


def run_hand(X, y, epochs, bs):
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    model, loss_fn = make_model(), nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    gen = torch.Generator().manual_seed(42)
    t0 = time.perf_counter()
    n = len(X)
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(n, generator=gen)
        Xs, ys = X[perm], y[perm]
        mean = _epoch(model, loss_fn, opt, ((Xs[i : i + bs], ys[i : i + bs]) for i in range(0, n, bs)))
    return time.perf_counter() - t0, mean


def run_dataloader(X, y, epochs, bs):
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    model, loss_fn = make_model(), nn.CrossEntropyLoss()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, fused=True)
    loader = DataLoader(TensorDataset(X, y), batch_size=bs, shuffle=True, generator=torch.Generator().manual_seed(42))
    t0 = time.perf_counter()
    for _ in range(epochs):
        model.train()
        mean = _epoch(model, loss_fn, opt, loader)
    return time.perf_counter() - t0, mean


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--reps", type=int, default=7)
    ap.add_argument("--epochs", type=int, default=100)
    ap.add_argument("--batch-size", type=int, default=32)
    args = ap.parse_args(argv)

    from fittorch.demo import make_reference_data

    torch.set_num_threads(1)
    (X, y), _, _ = make_reference_data()
    runs = {"fittorch": run_fittorch, "hand": run_hand, "dataloader": run_dataloader}
    times: dict[str, list[float]] = {k: [] for k in runs}
    names = list(runs)
    run_fittorch(X, y, 2, args.batch_size)  # warm-up: imports, first-call costs
    for rep in range(args.reps):
        order = names[rep % 3 :] + names[: rep % 3]
        for name in order:
            seconds, loss = runs[name](X, y, args.epochs, args.batch_size)
            times[name].append(seconds)
        print(f"rep {rep + 1}: " + ", ".join(f"{k} {times[k][-1]:.3f} s" for k in names), flush=True)
    med = {k: statistics.median(v) for k, v in times.items()}
    steps = args.epochs * -(-len(X) // args.batch_size)
    print(f"\n{len(X)} x {X.shape[1]}, batch {args.batch_size}, {args.epochs} epochs ({steps} steps), "
          f"threads 1, median of {args.reps}, torch {torch.__version__}")
    for k in names:
        print(f"  {k:<10} {med[k]:.3f} s  {med[k] / steps * 1e6:6.1f} us/step  speed ratio vs hand "
              f"{med['hand'] / med[k]:.3f}")


if __name__ == "__main__":
    main()
