"""Progress: a bar over epochs on a terminal, plain log lines elsewhere (CI, files).

It only reads the epoch rows the loop has already synced, so it adds no host sync.
"""

from __future__ import annotations

import sys
import time

from .base import Callback


def _fmt_row(row: dict, max_epochs: int) -> str:
    parts = [f"Epoch {row['epoch']:>{len(str(max_epochs))}}/{max_epochs}"]
    for key, value in row.items():
        if key in ("epoch", "seconds", "lr"):
            continue
        parts.append(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}")
    return " | ".join(parts)


class ProgressBar(Callback):
    """A tqdm bar over epochs showing the live train loss and validation metrics.

    Args:
        log_every: also print a full log line every this many epochs (and the last one).
        stream: where to write (default ``sys.stderr`` for the bar, ``sys.stdout`` for lines).
        bar: ``None`` decides by whether the stream is a terminal.
    """

    def __init__(self, log_every: int = 10, stream=None, bar: bool | None = None):
        self.log_every = log_every
        self.stream = stream
        self.bar = bar
        self._pbar = None

    def on_fit_start(self, trainer) -> None:
        if not trainer.dist.is_main:
            return
        stream = self.stream or sys.stderr
        use_bar = self.bar if self.bar is not None else getattr(stream, "isatty", lambda: False)()
        self._started = time.perf_counter()
        if use_bar:
            from tqdm.auto import tqdm

            state = trainer.state
            self._pbar = tqdm(total=state.max_epochs, initial=state.epoch, desc="Training", unit="epoch",
                              file=stream, dynamic_ncols=True, leave=True)

    def on_epoch_end(self, trainer, row: dict) -> None:
        if not trainer.dist.is_main:
            return
        state = trainer.state
        if self._pbar is not None:
            shown = {k: f"{v:.4f}" for k, v in row.items() if k not in ("epoch", "seconds", "lr") and isinstance(v, float)}
            self._pbar.set_postfix(shown, refresh=False)
            self._pbar.update(1)
        if self.log_every and (row["epoch"] % self.log_every == 0 or row["epoch"] == state.max_epochs):
            line = _fmt_row(row, state.max_epochs)
            if self._pbar is not None:
                self._pbar.write(line)
            else:
                print(line, file=self.stream or sys.stdout, flush=True)

    def on_fit_end(self, trainer) -> None:
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
