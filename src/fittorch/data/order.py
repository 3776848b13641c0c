"""The order of one epoch's rows under data parallelism."""

from __future__ import annotations

import torch


def shard_order(order: torch.Tensor, rank: int, world_size: int) -> torch.Tensor:
    """Rank ``rank``'s rows of one epoch's permutation: every ``world_size``-th row.

    When ``len(order)`` is not a multiple of ``world_size``, the permutation is padded by
    wrapping around to its start (as torch's DistributedSampler does), so every rank gets
    the same number of rows and runs the same number of steps; at most ``world_size - 1``
    samples are then seen twice in that epoch. Without padding, every sample is used
    exactly once per epoch across ranks.
    """
    if world_size == 1:
        return order
    pad = (-len(order)) % world_size
    if pad:
        reps = -(-pad // max(len(order), 1))
        order = torch.cat([order, order.repeat(reps)[:pad]])
    return order[rank::world_size]
