"""``OptunaPruning``: report a metric to an Optuna trial each epoch, and stop when it says prune.

>>> trainer = ft.Trainer(model, callbacks=[ft.OptunaPruning(trial, monitor="val_accuracy")])
>>> trainer.fit(train, val=val, epochs=30)
>>> if trainer.state.stop_reason.startswith("pruned"): raise optuna.TrialPruned()

It never raises: a pruned fit stops at the epoch boundary like any callback stop
(``trainer.state.status == "stopped"``), keeps its history, and ``pruned`` is set. The trial is
duck-typed (``report(value, step)``, ``should_prune()``), so this module does not import optuna.
"""

from __future__ import annotations

import math

from ..callbacks.base import Callback

PRUNED = "pruned by optuna"


class OptunaPruning(Callback):
    """Report ``monitor`` as the trial's intermediate value at each epoch end (step = epoch)."""

    order = 10  # after the callbacks that add values to the row, before the loggers

    def __init__(self, trial, monitor: str = "val_loss"):
        self.trial = trial
        self.monitor = monitor
        self.pruned = False

    def on_epoch_end(self, trainer, row: dict) -> None:
        value = row.get(self.monitor)
        if value is None:
            from ..errors import ConfigError

            raise ConfigError(f"OptunaPruning: the epoch's row has no {self.monitor!r} (it has: "
                              f"{', '.join(row)}). Pass monitor= one of those.")
        value = float(value)
        epoch = int(row["epoch"])
        if math.isfinite(value):
            self.trial.report(value, epoch)
        if not math.isfinite(value) or self.trial.should_prune():
            self.pruned = True
            trainer.state.should_stop = True
            trainer.state.stop_reason = f"{PRUNED} at epoch {epoch} ({self.monitor} {value:.6g})"
