"""Seeds and RNG state: everything needed for bit-identical runs and resumes."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's ``random``, numpy and torch (CPU and every CUDA device)."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """The data-order generator of one epoch.

    It depends only on ``(seed, epoch)``, so the order of any epoch can be rebuilt
    exactly on resume without saving a generator state.
    """
    # SeedSequence mixes the two numbers well; a plain seed + epoch would make
    # (seed=1, epoch=0) and (seed=0, epoch=1) shuffle identically.
    mixed = np.random.SeedSequence([int(seed) % (2**63), int(epoch)]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(mixed))


def get_rng_state() -> dict:
    """All global RNG states, as plain data (tensors + JSON-able values)."""
    state = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
