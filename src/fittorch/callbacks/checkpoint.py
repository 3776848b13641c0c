"""``ModelCheckpoint``: write the full run state at epoch ends, every N steps, and on a stop.

``Trainer(checkpoint_dir=...)`` adds one (last in the callback list, so every other
callback's state is already updated when it saves). See :mod:`fittorch.checkpoint`.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError
from .base import Callback


class ModelCheckpoint(Callback):
    """Save checkpoints into ``directory``; keep the newest ``keep_last`` plus the best by ``monitor``.

    Args:
        directory: where the ``ckpt-e*-b*`` checkpoint directories go.
        every_steps: also save every this many optimizer steps (0: only at epoch ends).
        keep_last: how many of the newest checkpoints to keep (the best one is kept as well).
        monitor: the history column that picks the best checkpoint; default ``val_loss`` when
            there is validation data, else ``train_loss``. ``mode`` (min/max) is inferred
            from the name unless given.

    Put it last in ``callbacks`` (``Trainer(checkpoint_dir=...)`` does), so that it saves
    after every other callback has updated its state.

    A checkpoint is also written whenever training stops mid-epoch (a signal, a time
    limit), so that no finished step is lost. Checkpoints with non-finite weights are
    never written: a warning says so and the previous checkpoint stays the newest.
    """

    order = 90  # after EarlyStopping, schedulers and loggers; before the progress bar

    def __init__(self, directory, *, every_steps: int = 0, keep_last: int = 2, monitor: str | None = None,
                 mode: str | None = None):
        if not isinstance(every_steps, int) or every_steps < 0:
            raise ConfigError(f"checkpoint_every_steps={every_steps!r}; expected an int >= 0 "
                              "(0 saves at epoch ends only).")
        if not isinstance(keep_last, int) or keep_last < 1:
            raise ConfigError(f"keep_last={keep_last!r}; expected an int >= 1 (the newest checkpoints to keep).")
        if mode not in (None, "min", "max"):
            raise ConfigError(f"mode={mode!r}; expected 'min', 'max' or None (inferred from the monitor's name).")
        self.directory = Path(directory)
        self.every_steps = every_steps
        self.keep_last = keep_last
        self.monitor = monitor
        self.mode = mode
        self._saved_at = None  # (epoch, batch_in_epoch) of the last save in this fit
        self._step_saved = -1
        self._monitor_name = monitor

    def on_fit_start(self, trainer) -> None:
        from ..checkpoint import clean_partial

        if trainer.dist.is_main:
            clean_partial(self.directory)
        self._saved_at = (trainer.state.epoch, trainer.state.batch_in_epoch)
        self._step_saved = trainer.state.global_step
        if self.monitor and trainer.state.history.monitor is None:
            trainer.state.history.monitor = self.monitor  # "best" means the same column everywhere

    def on_train_batch_end(self, trainer, loss) -> None:
        state = trainer.state
        periodic = (self.every_steps and state.global_step != self._step_saved
                    and state.global_step % self.every_steps == 0)
        if periodic or trainer.dist.check_stop(state, state.batch_in_epoch):  # the loop leaves right after a mid-epoch stop: save it first
            self._step_saved = state.global_step
            self.save(trainer)

    def on_epoch_end(self, trainer, row: dict) -> None:
        from ..history import infer_mode

        name = self.monitor or ("val_loss" if "val_loss" in row else "train_loss")
        value = row.get(name)
        monitor = None
        if isinstance(value, (int, float)):
            monitor = {"name": name, "value": float(value), "mode": self.mode or infer_mode(name)}
        elif self.monitor is not None and trainer.state.epoch == 1:
            from ..checkpoint.store import warn

            warn(f"ModelCheckpoint monitor '{self.monitor}' is not in the epoch's row "
                 f"(columns: {', '.join(row)}); no best checkpoint is tracked.")
        if monitor is not None:
            self._monitor_name = monitor["name"]
        self.save(trainer, monitor)

    def save(self, trainer, monitor: dict | None = None):
        from ..checkpoint import NonFiniteWeights, save_checkpoint
        from ..checkpoint.store import warn

        state = trainer.state
        position = (state.epoch, state.batch_in_epoch)
        if position == self._saved_at:
            return None
        self._saved_at = position
        try:
            path = save_checkpoint(trainer, self.directory, monitor=monitor)
        except NonFiniteWeights as exc:
            warn(str(exc))
            return None
        if path is not None:  # the main process: the new checkpoint is complete, so old ones may go
            trainer.checkpoint_path = path
            self.prune()
        return path

    def prune(self) -> None:
        """Delete all but the newest ``keep_last`` checkpoints and the best one."""
        from ..checkpoint import best_by, prune

        prune(self.directory, self.keep_last, keep=(best_by(self.directory, self._monitor_name),))


def checkpoint_dir_of(callbacks: list, checkpoint_dir, *, every_steps: int, keep_last: int,
                      monitor: str | None) -> str | None:
    """``Trainer(checkpoint_dir=...)``: append a :class:`ModelCheckpoint` to ``callbacks`` (last:
    it saves after every other callback), or read the directory of one the user passed."""
    given = [cb for cb in callbacks if isinstance(cb, ModelCheckpoint)]
    if checkpoint_dir is not None:
        if given:
            raise ConfigError("Pass either checkpoint_dir=... or a ModelCheckpoint callback, not both.")
        callbacks.append(ModelCheckpoint(checkpoint_dir, every_steps=every_steps, keep_last=keep_last,
                                         monitor=monitor))
    elif given:
        checkpoint_dir = given[-1].directory
    return None if checkpoint_dir is None else str(checkpoint_dir)


def check_unused(checkpoint_dir: str | None) -> None:
    """A fresh run must not write into a directory holding another run's checkpoints."""
    if checkpoint_dir is None:
        return
    from ..checkpoint import latest
    from ..errors import CheckpointError

    newest = latest(checkpoint_dir)
    if newest is not None:
        raise CheckpointError(
            f"checkpoint_dir {checkpoint_dir} already holds checkpoints of another run "
            f"(newest: {newest.name}), and a new run would mix with them. "
            "Continue that run with fit(..., resume='last'), pass resume='auto' to continue it when it "
            "exists, or use an empty checkpoint_dir."
        )


def last_good_hint(checkpoint_dir: str | None) -> str:
    """The sentence that tells a user where to resume after a failure ('' without checkpoints)."""
    if not checkpoint_dir:
        return ""
    from ..checkpoint import latest

    newest = latest(checkpoint_dir)
    if newest is not None:
        return f"The last good checkpoint is {newest}; resume from it with fit(..., resume='last')."
    return f"Resume from the last good checkpoint in {checkpoint_dir}."
