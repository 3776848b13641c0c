"""Process-group context. Single-process by default; torchrun support builds on this."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class DistContext:
    rank: int = 0
    local_rank: int = 0
    world_size: int = 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def reduce_sum(self, total, count: int):
        """Sum a device tensor and a count over ranks (identity in one process)."""
        return total, count

    def barrier(self) -> None:
        pass


def current() -> DistContext:
    return DistContext()
