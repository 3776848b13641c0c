"""Progress: a bar over epochs on a terminal, plain log lines elsewhere (CI, files).

It only reads the epoch rows the loop has already synced, so it adds no host sync. The
optional inner bar over steps counts batches (it never reads the loss per step).
"""

from __future__ import annotations

import sys
import time

from .base import Callback

_HIDDEN = ("epoch", "seconds", "lr", "grad_norm_max", "skipped_steps")


def _fmt_row(row: dict, max_epochs: int) -> str:
    parts = [f"Epoch {row['epoch']:>{len(str(max_epochs))}}/{max_epochs}"]
    for key, value in row.items():
        if key in _HIDDEN:
            continue
        parts.append(f"{key} {value:.4f}" if isinstance(value, float) else f"{key} {value}")
    parts.append(f"{row.get('seconds', 0.0):.2f}s")
    return " | ".join(parts)


class ProgressBar(Callback):
    """A tqdm bar over epochs with ETA, the live train loss and the monitored value.

    Args:
        log_every: also print a full log line every this many epochs (and the last one).
        stream: where to write (default ``sys.stderr`` for the bar, ``sys.stdout`` for lines).
        bar: ``None`` decides by whether the stream is a terminal.
        monitor: the value shown beside the train loss (default: the EarlyStopping monitor
            if there is one, else ``val_loss``, else every value of the row).
        steps: an inner bar over the batches of each epoch: ``True``, ``False``, or ``"auto"``
            (only on a terminal, once an epoch has taken longer than ``long_epoch`` seconds).
        summary: print the model summary (layers, parameter counts) when the fit starts.
    """

    order = 100  # last: it shows what the other callbacks added to the row

    def __init__(self, log_every: int = 10, stream=None, bar: bool | None = None, *, monitor: str | None = None,
                 steps: bool | str = "auto", long_epoch: float = 5.0, summary: bool = True):
        self.log_every = log_every
        self.stream = stream
        self.bar = bar
        self.monitor = monitor
        self.steps = steps
        self.long_epoch = long_epoch
        self.summary = summary
        self._pbar = None
        self._inner = None
        self._step_bar_on = False

    def _monitor(self, trainer) -> str | None:
        if self.monitor:
            return self.monitor
        for cb in trainer.callbacks:
            if type(cb).__name__ == "EarlyStopping":
                return cb.monitor
        return None

    def on_fit_start(self, trainer) -> None:
        if not trainer.dist.is_main:
            return
        stream = self.stream or sys.stderr
        use_bar = self.bar if self.bar is not None else getattr(stream, "isatty", lambda: False)()
        self._started = time.perf_counter()
        self._use_bar = use_bar
        self._step_bar_on = use_bar and self.steps is True
        state = trainer.state
        if self.summary and state.epoch == 0 and state.global_step == 0:
            from ..summary import model_summary

            text = str(model_summary(trainer.model))
            print(text, file=stream if use_bar else (self.stream or sys.stdout), flush=True)
        if use_bar:
            from tqdm.auto import tqdm

            self._pbar = tqdm(total=state.max_epochs, initial=state.epoch, desc="Training", unit="epoch",
                              file=stream, dynamic_ncols=True, leave=True)

    def on_epoch_start(self, trainer) -> None:
        if self._step_bar_on and self._pbar is not None:
            from tqdm.auto import tqdm

            n = (getattr(trainer, "fit_params", None) or {}).get("n_batches")
            self._inner = tqdm(total=n, desc=f"Epoch {trainer.state.epoch + 1}", unit="batch", leave=False,
                               file=self.stream or sys.stderr, dynamic_ncols=True, mininterval=0.5)

    def wants_batch_hooks(self) -> bool:
        return self._inner is not None  # the inner bar is the only per-batch work

    def on_train_batch_end(self, trainer, loss) -> None:
        if self._inner is not None:
            self._inner.update(1)  # a counter: the loss stays on the device

    def on_epoch_end(self, trainer, row: dict) -> None:
        if not trainer.dist.is_main:
            return
        if self._inner is not None:
            self._inner.close()
            self._inner = None
        state = trainer.state
        if self._pbar is not None:
            monitor = self._monitor(trainer) or ("val_loss" if "val_loss" in row else None)
            keys = ["train_loss"] + ([monitor] if monitor and monitor != "train_loss" else [])
            shown = {k: f"{row[k]:.4f}" for k in keys if isinstance(row.get(k), float)}
            self._pbar.set_postfix(shown, refresh=False)
            self._pbar.update(1)
            if self.steps == "auto" and row.get("seconds", 0.0) > self.long_epoch:
                self._step_bar_on = True
        if self.log_every and (row["epoch"] % self.log_every == 0 or row["epoch"] == state.max_epochs
                               or state.should_stop):
            line = _fmt_row(row, state.max_epochs)
            if state.should_stop and state.stop_reason:
                line += f"  [stopping: {state.stop_reason}]"
            if self._pbar is not None:
                self._pbar.write(line, file=self.stream or sys.stderr)
            else:
                print(line, file=self.stream or sys.stdout, flush=True)

    def on_fit_end(self, trainer) -> None:
        if self._inner is not None:
            self._inner.close()
            self._inner = None
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None
