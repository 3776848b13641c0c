"""Train one epoch from a file larger than we want in memory, and report peak RSS and rows/s.

    python benchmarks/make_big_file.py --rows 10000000 --out /tmp/fittorch_big.parquet
    python benchmarks/stream_bench.py /tmp/fittorch_big.parquet --batch-size 4096

Peak RSS is the process's high-water mark (``resource.getrusage``), measured after
the imports (torch, pandas, pyarrow: the baseline) and after the epoch. Compare it with the file's size in
memory (rows x columns x 4 bytes as float32; pandas would hold float64, twice that).
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def current_rss_mb() -> float:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * resource.getpagesize() / 2**20
    except OSError:
        return float("nan")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("path")
    ap.add_argument("--target", default="label")
    ap.add_argument("--batch-size", type=int, default=4096)
    ap.add_argument("--shuffle-buffer", type=int, default=262_144)
    ap.add_argument("--chunk-rows", type=int, default=65_536)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--data-only", action="store_true", help="only read and batch the stream (no model)")
    ap.add_argument("--prealloc-losses", action="store_true",
                    help="experiment: write each batch loss into one preallocated tensor instead of keeping "
                         "one small tensor per step (which fragments the heap over a long epoch)")
    args = ap.parse_args(argv)

    import torch

    import fittorch as ft
    from fittorch.callbacks import Callback
    from fittorch.data import stream_file

    import pandas  # noqa: F401 - imported by the fit anyway; part of the baseline, not of the data
    import pyarrow.parquet  # noqa: F401
    import torchmetrics  # noqa: F401

    torch.set_num_threads(args.threads)
    baseline = peak_rss_mb()
    src = stream_file(args.path, args.target, chunk_rows=args.chunk_rows, shuffle_buffer=args.shuffle_buffer)
    n_rows = len(src) if src.n_rows is not None else None
    n_feat = len(src.feature_names)

    class Progress(Callback):
        """Prints progress against the row count from the file's metadata (no host sync)."""

        def on_fit_start(self, trainer):
            self.batches, self.next_pct, self.t0 = 0, 10, time.perf_counter()

        def on_train_batch_end(self, trainer, loss):
            self.batches += 1
            if n_rows:
                pct = 100 * min(self.batches * args.batch_size, n_rows) / n_rows
                if pct >= self.next_pct:
                    el = time.perf_counter() - self.t0
                    print(f"  {pct:5.1f}%  {el:6.1f} s  ETA {el / pct * (100 - pct):6.1f} s  "
                          f"RSS now {current_rss_mb():.0f} MiB, peak {peak_rss_mb():.0f} MiB", flush=True)
                    self.next_pct += 10

    if args.data_only:
        started = time.perf_counter()
        src.epoch_order(0, 0, True)
        rows = 0
        for i, ((X,), _y) in enumerate(src.batches(args.batch_size, None)):
            rows += len(X)
            if i % 500 == 0:
                print(f"  {rows:>12,} rows  RSS now {current_rss_mb():.0f} MiB, peak {peak_rss_mb():.0f} MiB", flush=True)
        seconds = time.perf_counter() - started
        print(f"data only (read + shuffle + batch): {rows:,} rows in {seconds:.1f} s, {rows / seconds:,.0f} rows/s; "
              f"peak RSS {peak_rss_mb():.0f} MiB (after the imports: {baseline:.0f} MiB)")
        return

    class LossBuffer(list):
        """A list whose items are views into one preallocated tensor: no allocation per step."""

        def __init__(self, n):
            super().__init__()
            self.buf = torch.empty(n)

        def append(self, loss):
            view = self.buf[len(self)]
            view.copy_(loss)
            super().append(view)

    class PreallocLosses(Callback):
        def on_epoch_start(self, trainer):
            trainer.epoch_losses = LossBuffer(src.num_batches(args.batch_size) or 1_000_000)

    torch.manual_seed(0)
    model = ft.MLP(n_feat, [64], 2)
    callbacks = [Progress()] + ([PreallocLosses()] if args.prealloc_losses else [])
    trainer = ft.Trainer(model, metrics=[], device=args.device, num_threads=args.threads, progress=False,
                         callbacks=callbacks)
    started = time.perf_counter()
    trainer.fit(src, epochs=1, batch_size=args.batch_size)
    seconds = time.perf_counter() - started
    peak = peak_rss_mb()
    size = Path(args.path).stat().st_size
    rows = n_rows or src.rows_read
    in_mem = rows * (n_feat + 1) * 4 / 2**20
    print(f"file: {args.path} ({size / 2**20:.0f} MiB on disk, {rows:,} rows x {n_feat} features, "
          f"batch {args.batch_size}, shuffle buffer {args.shuffle_buffer:,} rows)")
    print(f"one epoch: {seconds:.1f} s, {rows / seconds:,.0f} rows/s, train_loss {trainer.history.last['train_loss']:.4f}")
    print(f"peak RSS: {peak:.0f} MiB (after the imports: {baseline:.0f} MiB; growth {peak - baseline:.0f} MiB) "
          f"vs {in_mem:.0f} MiB for the data as float32 in memory ({2 * in_mem:.0f} MiB as pandas float64)")


if __name__ == "__main__":
    main()
