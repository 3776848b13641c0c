"""The callback protocol.

A callback is a plain object with no-op ``on_*`` methods; override the ones you need.
The loop calls them in this order (see ``fittorch/loop.py``, where every call is visible)::

    on_fit_start
    for each epoch:
        on_epoch_start
        for each batch:
            on_train_batch_start       # may return a new batch (mixup), or SKIP_BATCH
            [train step: forward, loss, zero_grad, backward]
            on_after_backward          # gradients exist; clip or inspect them here
            [optimizer step]
            on_train_batch_end         # loss is a device tensor: don't .item() it here
            [validation, every val_every_steps optimizer steps, when set]
        on_validation_end              # only when there is validation data
        on_epoch_end                   # the epoch's row is in trainer.state.history
        (stop if trainer.state.should_stop)
    on_fit_end                         # always, also after an error or an interrupt

Per-batch hooks are only called on callbacks that override them (and whose
``wants_batch_hooks()`` is true at the epoch's start), so a callback that doesn't need
them costs nothing per step. To stop training, set
``trainer.state.should_stop = True`` (and ``stop_reason``); never raise.

Callbacks run sorted by their ``order`` attribute (see :class:`Callback`).
A callback with state implements ``state_dict``/``load_state_dict``; that state is
saved in checkpoints and restored on resume.
"""

from __future__ import annotations


class Callback:
    """Base class: every hook is a no-op.

    ``order`` places a callback among the others: the trainer calls them sorted by it
    (stable, so equal orders keep the user's order). The non-finite guard runs first
    (-100), callbacks that add values to the epoch's row next (-50), then the user's (0),
    loggers (50) and the progress bar (100), so loggers see every value of the row.
    """

    order: int = 0

    def on_fit_start(self, trainer) -> None:
        pass

    def on_epoch_start(self, trainer) -> None:
        pass

    def on_train_batch_start(self, trainer, batch):
        """Return a replacement batch ``(inputs, target)``, ``SKIP_BATCH`` to skip it, or None."""
        return None

    def on_after_backward(self, trainer) -> None:
        pass

    def on_train_batch_end(self, trainer, loss, batch=None, output=None) -> None:
        """``loss``: the step's detached loss; ``batch``: what was trained on; ``output``: the model's."""
        pass

    def on_validation_end(self, trainer, metrics: dict) -> None:
        pass

    def on_epoch_end(self, trainer, row: dict) -> None:
        pass

    def on_fit_end(self, trainer) -> None:
        pass

    def wants_batch_hooks(self) -> bool:
        """Asked at each epoch start: False skips this callback's per-batch hooks for that epoch.

        For a callback that needs them only some of the time (a progress bar over steps
        that is shown only for long epochs), so the other epochs cost nothing per step.
        """
        return True

    def state_dict(self) -> dict:
        return {}

    def load_state_dict(self, state: dict) -> None:
        pass


class _Skip:
    def __repr__(self) -> str:
        return "SKIP_BATCH"


#: Returned by ``on_train_batch_start``: this batch is not trained on (it still counts as
#: read, so a resume continues after it).
SKIP_BATCH = _Skip()


def batch_end_hooks(callbacks) -> list:
    """The ``on_train_batch_end`` hooks of this epoch, each callable as ``hook(trainer, loss, batch, output)``.

    A callback written for the older two-argument form ``on_train_batch_end(trainer, loss)``
    is called with those two only.
    """
    import inspect

    hooks = []
    for cb in callbacks:
        if not overrides(cb, "on_train_batch_end") or not cb.wants_batch_hooks():
            continue
        params = inspect.signature(cb.on_train_batch_end).parameters.values()
        wide = len(params) >= 4 or any(p.kind is p.VAR_POSITIONAL for p in params)
        hooks.append(cb.on_train_batch_end if wide else _two_args(cb.on_train_batch_end))
    return hooks


def _two_args(hook):
    return lambda trainer, loss, batch, output: hook(trainer, loss)


def overrides(callback, hook: str) -> bool:
    """True when ``callback`` defines ``hook`` itself rather than inheriting the no-op."""
    method = getattr(type(callback), hook, None)
    return method is not None and method is not getattr(Callback, hook)
