"""What may change when a run is resumed: ``fittorch resume RUN --set optimizer.lr=0.01``.

A resume restores the optimizer state, which includes the learning rate, so an edit of
``config.yaml`` alone would be silently ignored. Here the config a run is resumed with is
compared with the config saved in its checkpoint (and with ``config.yaml`` before ``--set``):

- a change in :data:`SAFE` (the learning rate, weight decay, the number of epochs, logging
  and checkpoint cadence) is applied *after* the optimizer state is restored, recorded in
  ``run.json`` and visible in the history's ``lr`` column;
- any other change (model shapes, batch size, data, seed, ...) would break exactness or
  shapes, and is refused, naming the key.
"""

from __future__ import annotations

from .callbacks.base import Callback
from .compare import flatten
from .errors import ConfigError

SAFE = ("optimizer.lr", "optimizer.weight_decay", "train.epochs", "train.log_every", "train.keep_last",
        "train.checkpoint_every_steps")
IGNORED = ("name",)  # renaming does not touch the run
_OPTIMIZER_KEYS = {"optimizer.lr": "lr", "optimizer.weight_decay": "weight_decay"}


def diff(old: dict, new: dict) -> dict[str, tuple]:
    """``{key: (old value, new value)}`` for every key that differs."""
    a, b = flatten(old or {}), flatten(new or {})
    return {k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and k not in IGNORED}


def check_safe(changes: dict[str, tuple], *, what: str, run_dir) -> None:
    """Refuse every change outside :data:`SAFE`, naming each key with both values."""
    unsafe = {k: v for k, v in changes.items() if k not in SAFE}
    if unsafe:
        shown = "; ".join(f"{k}: {old!r} -> {new!r}" for k, (old, new) in list(unsafe.items())[:6])
        raise ConfigError(f"{what} would change {shown}, which a resume cannot change without breaking the run's "
                          f"exactness or shapes. Only {', '.join(SAFE)} may change on resume (--set KEY=VALUE). "
                          f"Undo that change, or start a new run: fittorch fit {run_dir}/config.yaml --set ...")


class ApplyChanges(Callback):
    """Set the changed optimizer values once the checkpoint (and its optimizer state) is restored."""

    order = -1000

    def __init__(self, values: dict[str, float]):
        self.values = {_OPTIMIZER_KEYS[k]: v for k, v in values.items() if k in _OPTIMIZER_KEYS}

    def on_fit_start(self, trainer) -> None:
        for group in trainer.optimizer.param_groups:
            for key, value in self.values.items():
                if key == "lr" and "initial_lr" in group:  # keep a scheduler's starting point consistent
                    group["initial_lr"] = value
                group[key] = value
        self.values = {}  # once: a later fit in this process keeps what it trains with
