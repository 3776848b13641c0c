"""One module per implementation; each exposes ``run(workload) -> (seconds, val_accuracy)``.

Every implementation does the same job: train with Adam(lr) and cross-entropy for the
workload's epochs and batch size, and measure validation accuracy after every epoch.
The timed region starts from the user's numpy arrays and ends after the last validation.
"""

from __future__ import annotations

import importlib

IMPLS = {
    "fittorch": "fittorch_default",
    "fittorch_cuda_graphs": "fittorch_cuda_graphs",
    "hand_optimized": "hand_optimized",
    "plain_loop": "plain_loop",
    "lightning": "lightning_impl",
    "skorch": "skorch_impl",
    "accelerate": "accelerate_impl",
    "ignite": "ignite_impl",
}


def load(name: str):
    return importlib.import_module(f"impls.{IMPLS[name]}")


def available(name: str) -> str | None:
    """None when the implementation can run here, else why not."""
    need = {"lightning": "lightning", "skorch": "skorch", "accelerate": "accelerate", "ignite": "ignite"}.get(name)
    if need is None:
        return None
    try:
        importlib.import_module(need)
    except ImportError:
        return f"{need} is not installed (pip install 'fittorch[bench]')"
    return None
