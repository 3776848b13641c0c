"""Helpers shared by the built-in callbacks.

The loop appends a copy of the row to the history before ``on_epoch_end``; a callback
that adds a value (the gradient norm, the skip count) writes it to both, so loggers
that run after it (they have a higher ``order``) and the history agree.
"""

from __future__ import annotations


def add_to_row(trainer, row: dict, **values) -> None:
    row.update(values)
    history = trainer.state.history
    if len(history) and history.rows[-1].get("epoch") == row.get("epoch"):
        history.rows[-1].update(values)


def steps_per_epoch(trainer) -> int | None:
    """Optimizer steps in one epoch of the current fit, or None when the data has no length."""
    params = getattr(trainer, "fit_params", None) or {}
    n_batches = params.get("n_batches")
    if not n_batches:
        return None
    world = getattr(trainer.dist, "world_size", 1) or 1
    n_batches = -(-n_batches // world)
    return max(1, -(-n_batches // max(1, trainer.accumulate_steps)))
