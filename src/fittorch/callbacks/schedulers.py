"""LRScheduler: learning-rate schedules by name, or any torch scheduler, stepped as each needs.

=====================  ==========  ===============================================
name                   stepped     arguments (defaults)
=====================  ==========  ===============================================
``step``               per epoch   ``step_size`` (10), ``gamma`` (0.1)
``multistep``          per epoch   ``milestones`` (required), ``gamma`` (0.1)
``cosine``             per step    ``warmup_epochs`` (0) or ``warmup_steps``, ``min_lr`` (0)
``onecycle``           per step    ``max_lr`` (the optimizer's lr), ``pct_start`` (0.3), ...
``reduce_on_plateau``  per epoch   ``monitor`` ("val_loss"), ``factor`` (0.1), ``patience`` (10), ...
=====================  ==========  ===============================================

The per-step schedules need the number of steps per epoch, which fittorch knows for
arrays, Datasets and DataLoaders with a length; for others pass ``steps_per_epoch``.
The learning rate is in every epoch's row (``lr``) and the scheduler's state is in
:meth:`LRScheduler.state_dict`, so a resumed run continues the schedule exactly.
"""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError, did_you_mean, unknown_name
from ..history import infer_mode
from ._row import steps_per_epoch
from .base import Callback

NAMES = ("step", "multistep", "cosine", "onecycle", "reduce_on_plateau")
PER_STEP = ("cosine", "onecycle")
_ARGS = {
    "step": {"step_size", "gamma"},
    "multistep": {"milestones", "gamma"},
    "cosine": {"warmup_epochs", "warmup_steps", "min_lr"},
    "onecycle": {"max_lr", "pct_start", "anneal_strategy", "div_factor", "final_div_factor", "three_phase"},
    "reduce_on_plateau": {"factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps"},
}


class _WarmupCosine:
    """Linear warmup from ``1/warmup`` to 1, then cosine from 1 down to ``min_ratio`` (a picklable lambda)."""

    def __init__(self, total: int, warmup: int, min_ratio: float):
        self.total, self.warmup, self.min_ratio = total, warmup, min_ratio

    def __call__(self, step: int) -> float:
        if step < self.warmup:
            return (step + 1) / self.warmup
        span = max(1, self.total - self.warmup)
        t = min(1.0, (step - self.warmup) / span)
        return self.min_ratio + (1 - self.min_ratio) * 0.5 * (1 + math.cos(math.pi * t))


class LRScheduler(Callback):
    """Change the learning rate during training.

    >>> LRScheduler("cosine", warmup_epochs=2)
    >>> LRScheduler("multistep", milestones=[30, 60], gamma=0.1)
    >>> LRScheduler("reduce_on_plateau", monitor="val_loss", patience=5)
    >>> LRScheduler(torch.optim.lr_scheduler.ExponentialLR(optimizer, 0.95))  # a torch instance

    Args:
        scheduler: a name (table above) or a ``torch.optim.lr_scheduler`` instance.
        interval: ``"epoch"`` or ``"step"``; defaults to what the schedule needs
            (``"epoch"`` for a torch instance).
        monitor: the history column ``reduce_on_plateau`` watches.
        steps_per_epoch: for per-step schedules when the data has no length.
        optimizer: with several optimizers (``Trainer(optimizer={...})``), the name of the one this
            schedule drives (default: the first). Use one LRScheduler per optimizer to schedule each.
        **kwargs: the schedule's arguments.
    """

    order = -50  # steps after the guard, before the loggers (the row's lr is the epoch's lr)

    def __init__(self, scheduler="cosine", *, interval: str | None = None, monitor: str = "val_loss",
                 steps_per_epoch: int | None = None, optimizer: str | None = None, **kwargs):
        self.optimizer_name = optimizer
        if isinstance(scheduler, str):
            name = scheduler.lower()
            if name not in NAMES:
                raise unknown_name("LR scheduler", scheduler, NAMES, "Or pass a torch.optim.lr_scheduler instance.")
            bad = sorted(set(kwargs) - _ARGS[name])
            if bad:
                raise ConfigError(f"LRScheduler('{name}') got an unknown argument '{bad[0]}'."
                                  f"{did_you_mean(bad[0], _ARGS[name])} Arguments: {', '.join(sorted(_ARGS[name]))}.")
            if name == "multistep" and "milestones" not in kwargs:
                raise ConfigError("LRScheduler('multistep') needs milestones, e.g. milestones=[30, 60].")
            self.name, self.scheduler = name, None
        elif hasattr(scheduler, "step") and hasattr(scheduler, "state_dict"):
            self.name, self.scheduler = type(scheduler).__name__, scheduler
            if kwargs:
                raise ConfigError("Pass schedule arguments only with a scheduler name, not with an instance.")
        else:
            raise ConfigError(f"LRScheduler({scheduler!r}): expected a name ({', '.join(NAMES)}) "
                              "or a torch.optim.lr_scheduler instance.")
        if interval not in (None, "epoch", "step"):
            raise ConfigError(f"LRScheduler(interval={interval!r}); expected 'epoch' or 'step'.")
        self.interval = interval or ("step" if self.name in PER_STEP else "epoch")
        if self.interval == "step" and (self.name == "reduce_on_plateau"
                                        or isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)):
            raise ConfigError("reduce_on_plateau reads a value from each epoch's row, so it steps per epoch; "
                              "drop interval='step'.")
        self.monitor = monitor
        self.kwargs = kwargs
        self.steps_per_epoch = steps_per_epoch
        self._seen_step = 0
        self._pending: dict | None = None

    # -- building ----------------------------------------------------------------------
    def _plateau(self):
        return isinstance(self.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau)

    def _build(self, trainer):
        opt, kw, name = self._optimizer(trainer), dict(self.kwargs), self.name
        S = torch.optim.lr_scheduler  # noqa: N806
        if name == "step":
            return S.StepLR(opt, step_size=kw.get("step_size", 10), gamma=kw.get("gamma", 0.1))
        if name == "multistep":
            return S.MultiStepLR(opt, milestones=list(kw["milestones"]), gamma=kw.get("gamma", 0.1))
        if name == "reduce_on_plateau":
            return S.ReduceLROnPlateau(opt, mode=infer_mode(self.monitor), **kw)
        per_epoch = self.steps_per_epoch or steps_per_epoch(trainer)
        if per_epoch is None:
            raise ConfigError(f"LRScheduler('{name}') steps every batch and needs the number of steps per "
                              "epoch, which this data does not tell. Pass steps_per_epoch=N.")
        total = per_epoch * max(1, trainer.state.max_epochs)
        if name == "onecycle":
            kw.setdefault("max_lr", [g["lr"] for g in opt.param_groups])
            return S.OneCycleLR(opt, total_steps=total, **kw)
        warmup = int(kw.get("warmup_steps", round(kw.get("warmup_epochs", 0) * per_epoch)))
        base = opt.param_groups[0]["lr"]
        min_ratio = kw.get("min_lr", 0.0) / base if base else 0.0
        return S.LambdaLR(opt, _WarmupCosine(total, warmup, min_ratio))

    def _optimizer(self, trainer):
        if self.optimizer_name is None:
            return trainer.optimizer
        if self.optimizer_name not in trainer.optimizers:
            raise ConfigError(f"LRScheduler(optimizer={self.optimizer_name!r}): the trainer has no optimizer of "
                              f"that name.{did_you_mean(self.optimizer_name, trainer.optimizers)} Optimizers: "
                              f"{', '.join(trainer.optimizers)}.")
        return trainer.optimizers[self.optimizer_name]

    def on_fit_start(self, trainer) -> None:
        if self.scheduler is None:
            self.scheduler = self._build(trainer)
        if self._pending is not None:
            self.scheduler.load_state_dict(self._pending)
            self._pending = None
            # Building a scheduler resets the lr to the schedule's start; loading its state
            # does not touch the optimizer, so put the resumed lr back.
            for group, lr in zip(self._optimizer(trainer).param_groups, getattr(self.scheduler, "_last_lr", None) or ()):
                group["lr"] = lr
        self._seen_step = trainer.state.global_step

    # -- stepping ----------------------------------------------------------------------
    def on_train_batch_end(self, trainer, loss) -> None:
        if self.interval != "step":
            return
        step = trainer.state.global_step
        if step != self._seen_step:  # an optimizer step happened (not an accumulation micro-batch)
            self._seen_step = step
            total = getattr(self.scheduler, "total_steps", None)
            if total is None or self.scheduler.last_epoch + 1 < total:  # OneCycle refuses to step past its end
                self.scheduler.step()

    def on_epoch_end(self, trainer, row: dict) -> None:
        if self.interval != "epoch":
            return
        if self._plateau():
            if self.monitor not in row:
                raise ConfigError(f"LRScheduler('reduce_on_plateau') monitors '{self.monitor}', which the row lacks."
                                  f"{did_you_mean(self.monitor, row)} The row has: {', '.join(row)}.")
            self.scheduler.step(row[self.monitor])
        else:
            self.scheduler.step()

    # -- state -------------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"scheduler": self.scheduler.state_dict() if self.scheduler is not None else self._pending}

    def load_state_dict(self, state: dict) -> None:
        inner = state.get("scheduler")
        if inner is None:
            return
        if self.scheduler is not None:
            self.scheduler.load_state_dict(inner)
        else:
            self._pending = inner
