"""Helpers shared by the built-in callbacks.

(Adding a column to the epoch's row is public: ``trainer.add_to_history(row, **values)``.)
"""

from __future__ import annotations


def steps_per_epoch(trainer) -> int | None:
    """Optimizer steps in one epoch of the current fit, or None when the data has no length."""
    params = getattr(trainer, "fit_params", None) or {}
    n_batches = params.get("n_batches")
    if not n_batches:
        return None
    world = getattr(trainer.dist, "world_size", 1) or 1
    n_batches = -(-n_batches // world)
    return max(1, -(-n_batches // max(1, trainer.accumulate_steps)))
