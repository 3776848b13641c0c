"""EarlyStopping: stop when a monitored value stops improving; optionally restore the best weights."""

from __future__ import annotations

import math

from ..errors import ConfigError, did_you_mean
from ..history import infer_mode
from .base import Callback


class EarlyStopping(Callback):
    """Stop training when ``monitor`` has not improved for ``patience`` epochs.

    Args:
        monitor: a history column, e.g. ``"val_loss"`` or ``"val_accuracy"``.
        mode: ``"min"`` or ``"max"``; inferred from the name when omitted (losses and errors
            are minimised, everything else maximised).
        patience: epochs without improvement before stopping.
        min_delta: the smallest change that counts as an improvement.
        restore_best: at the end of the fit, load the weights of the best epoch back into the
            model. The best weights are kept as a copy on the model's device (no host transfer).

    It stops with ``trainer.state.should_stop`` and says why in ``trainer.state.stop_reason``.
    """

    def __init__(self, monitor: str = "val_loss", mode: str | None = None, patience: int = 10,
                 min_delta: float = 0.0, restore_best: bool = False):
        if mode not in (None, "min", "max"):
            raise ConfigError(f"EarlyStopping(mode={mode!r}); expected 'min', 'max' or None (inferred from the name).")
        if not isinstance(patience, int) or patience < 1:
            raise ConfigError(f"EarlyStopping(patience={patience!r}); expected an integer >= 1.")
        if min_delta < 0:
            raise ConfigError(f"EarlyStopping(min_delta={min_delta}); expected a value >= 0 (the sign follows mode).")
        self.monitor = monitor
        self.mode = mode or infer_mode(monitor)
        self.patience = patience
        self.min_delta = float(min_delta)
        self.restore_best = restore_best
        self.best: float | None = None
        self.best_epoch: int | None = None
        self.wait = 0
        self.stopped_epoch: int | None = None
        self._best_state: dict | None = None

    def on_fit_start(self, trainer) -> None:
        known = {"train_loss", "val_loss", "lr"} | {f"val_{m}" for m in trainer.metric_set.metrics}
        known |= set(trainer.state.history.columns)
        if self.monitor not in known and not self.monitor.startswith(("train_", "val_")):
            raise ConfigError(f"EarlyStopping(monitor='{self.monitor}') is not a value this run records."
                              f"{did_you_mean(self.monitor, known)} Known: {', '.join(sorted(known))}.")
        trainer.state.history.monitor = self.monitor  # the curves and the report mark this column's best

    def _improved(self, value: float) -> bool:
        if self.best is None:
            return True
        if self.mode == "min":
            return value < self.best - self.min_delta
        return value > self.best + self.min_delta

    def on_epoch_end(self, trainer, row: dict) -> None:
        if self.monitor not in row:
            raise ConfigError(
                f"EarlyStopping monitors '{self.monitor}', but the epoch's row has no such value"
                f"{_why_missing(self.monitor, row)}."
                f"{did_you_mean(self.monitor, row)} The row has: {', '.join(row)}."
            )
        value = row[self.monitor]
        state = trainer.state
        if isinstance(value, (int, float)) and not math.isnan(value) and self._improved(value):
            self.best, self.best_epoch, self.wait = float(value), int(row["epoch"]), 0
            state.best_value, state.best_epoch = self.best, self.best_epoch
            if self.restore_best:
                self._best_state = {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}
            return
        self.wait += 1
        if self.wait >= self.patience and not state.should_stop:
            self.stopped_epoch = int(row["epoch"])
            state.should_stop = True
            state.stop_reason = (f"early stopping: {self.monitor} did not improve for {self.patience} epochs "
                                 f"(best {self.best:.4g} at epoch {self.best_epoch})" if self.best is not None else
                                 f"early stopping: {self.monitor} was never a number in {self.patience} epochs")

    def on_fit_end(self, trainer) -> None:
        if self.restore_best and self._best_state is not None and trainer.state.status in ("finished", "stopped"):
            trainer.model.load_state_dict(self._best_state)
            trainer.state.restored_best_epoch = self.best_epoch  # informational, read by the report

    def state_dict(self) -> dict:
        return {"best": self.best, "best_epoch": self.best_epoch, "wait": self.wait, "stopped_epoch": self.stopped_epoch}

    def load_state_dict(self, state: dict) -> None:
        self.best = state.get("best")
        self.best_epoch = state.get("best_epoch")
        self.wait = int(state.get("wait", 0))
        self.stopped_epoch = state.get("stopped_epoch")


def _why_missing(monitor: str, row: dict) -> str:
    """Blame missing validation data only when the row really has no validation values."""
    if monitor.startswith("val_") and not any(k.startswith("val_") for k in row):
        return " (no validation data was given to fit)"
    return ""
