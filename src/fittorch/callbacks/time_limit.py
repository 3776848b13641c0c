"""TimeLimit: stop cleanly once a wall-clock budget is spent."""

from __future__ import annotations

import time

from ..errors import ConfigError
from .base import Callback


class TimeLimit(Callback):
    """Stop training after ``seconds`` (plus ``minutes``/``hours``) of wall-clock time.

    The budget is checked after every batch (a clock read, no device sync) and at each epoch
    end. A stop inside an epoch leaves ``trainer.state`` mid-epoch (``batch_in_epoch`` > 0),
    so a checkpoint written at the fit's end (``ModelCheckpoint``) resumes exactly there.
    ``trainer.state.stop_reason`` says that the time limit stopped the run.

    Args:
        check: ``"step"`` (default) or ``"epoch"`` (stop only between epochs).
    """

    def __init__(self, seconds: float = 0.0, *, minutes: float = 0.0, hours: float = 0.0, check: str = "step"):
        self.budget = float(seconds) + 60.0 * minutes + 3600.0 * hours
        if not self.budget > 0:
            raise ConfigError(f"TimeLimit budget is {self.budget} s; expected a positive duration, "
                              "e.g. TimeLimit(minutes=30).")
        if check not in ("step", "epoch"):
            raise ConfigError(f"TimeLimit(check={check!r}); expected 'step' or 'epoch'.")
        self.check = check
        self.elapsed_before = 0.0  # time spent in earlier (resumed) sessions
        self._started: float | None = None

    def elapsed(self) -> float:
        return self.elapsed_before + (time.perf_counter() - self._started if self._started is not None else 0.0)

    def _maybe_stop(self, trainer) -> None:
        if not trainer.state.should_stop and self.elapsed() >= self.budget:
            trainer.state.should_stop = True
            trainer.state.stop_reason = (f"time limit: {self.budget:g} s reached after {self.elapsed():.1f} s "
                                         f"(epoch {trainer.state.epoch + 1}, batch {trainer.state.batch_in_epoch})")

    def on_fit_start(self, trainer) -> None:
        self._started = time.perf_counter()

    def on_train_batch_end(self, trainer, loss) -> None:
        if self.check == "step":
            self._maybe_stop(trainer)

    def on_epoch_end(self, trainer, row: dict) -> None:
        self._maybe_stop(trainer)

    def on_fit_end(self, trainer) -> None:
        self.elapsed_before = self.elapsed()
        self._started = None

    def state_dict(self) -> dict:
        return {"elapsed": self.elapsed()}

    def load_state_dict(self, state: dict) -> None:
        self.elapsed_before = float(state.get("elapsed", 0.0))
