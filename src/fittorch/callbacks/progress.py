"""Progress: a bar over epochs on a terminal or in Jupyter, plain log lines elsewhere (CI, files).

In a notebook the bar is tqdm's widget (a text bar when ipywidgets is missing, with no
warning), and a :class:`~fittorch.callbacks.live.LiveView` redraws the table and curves.

It only reads the epoch rows the loop has already synced, so it adds no host sync. The
optional inner bar over steps counts batches (it never reads the loss per step).
"""

from __future__ import annotations

import sys
import time

from .base import Callback
from .live import LiveView, in_notebook

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
        live: in a notebook, also show the live table and curves (``"auto"``: in a notebook only;
            ``False``: never). See :class:`~fittorch.callbacks.live.LiveView`.
    """

    order = 100  # last: it shows what the other callbacks added to the row

    def __init__(self, log_every: int = 10, stream=None, bar: bool | None = None, *, monitor: str | None = None,
                 steps: bool | str = "auto", long_epoch: float = 5.0, summary: bool = True,
                 live: bool | str = "auto"):
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
        self._notebook = False
        self._live = LiveView() if live else None

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
        notebook = in_notebook()
        use_bar = self.bar if self.bar is not None else (notebook or getattr(stream, "isatty", lambda: False)())
        self._started = time.perf_counter()
        self._use_bar = use_bar
        self._step_bar_on = use_bar and self.steps is True
        self._notebook = notebook
        state = trainer.state
        if self.summary and state.epoch == 0 and state.global_step == 0:
            from ..summary import model_summary

            summary = model_summary(trainer.model)
            if notebook and self.stream is None:
                from IPython.display import display

                display(summary)  # its HTML table
            else:
                print(str(summary), file=stream if use_bar else (self.stream or sys.stdout), flush=True)
        if self._live is not None:
            self._live.on_fit_start(trainer)
        if use_bar:
            self._pbar = _bar(notebook, total=state.max_epochs, initial=state.epoch, desc="Training", unit="epoch",
                              file=stream, dynamic_ncols=True, leave=True)

    def on_epoch_start(self, trainer) -> None:
        if self._step_bar_on and self._pbar is not None:
            n = (getattr(trainer, "fit_params", None) or {}).get("n_batches")
            self._inner = _bar(self._notebook, total=n, desc=f"Epoch {trainer.state.epoch + 1}", unit="batch",
                               leave=False, file=self.stream or sys.stderr, dynamic_ncols=True, mininterval=0.5)

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
        if self._live is not None:
            self._live.on_epoch_end(trainer, row)
        if self.log_every and (row["epoch"] % self.log_every == 0 or row["epoch"] == state.max_epochs
                               or state.should_stop):
            line = _fmt_row(row, state.max_epochs)
            if state.should_stop and state.stop_reason:
                line += f"  [stopping: {state.stop_reason}]"
            if self._pbar is not None:
                self._pbar.write(line, file=self.stream or (sys.stdout if self._notebook else sys.stderr))
            else:
                print(line, file=self.stream or sys.stdout, flush=True)

    def on_fit_end(self, trainer) -> None:
        if self._live is not None:
            self._live.on_fit_end(trainer)
        if self._inner is not None:
            self._inner.close()
            self._inner = None
        if self._pbar is not None:
            self._pbar.close()
            self._pbar = None


def _bar(notebook: bool, **kwargs):
    """tqdm's notebook widget in Jupyter when ipywidgets is there, else the text bar; never a TqdmWarning.

    In a notebook the text bar goes to stdout (stderr is for warnings and errors there).
    """
    if notebook:
        try:
            import ipywidgets  # noqa: F401 - only to know that the widget can be drawn
            from tqdm.notebook import tqdm as notebook_tqdm

            return notebook_tqdm(**kwargs)
        except ImportError:  # no ipywidgets, or one too old for IProgress: the text bar below
            kwargs["file"] = sys.stdout
    from tqdm.std import tqdm

    return tqdm(**kwargs)
