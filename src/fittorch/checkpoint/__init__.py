"""Checkpoints: the full run state in safetensors + JSON, written atomically, never pickled.

>>> trainer = Trainer(model, checkpoint_dir="runs/a/checkpoints", checkpoint_every_steps=500)
>>> trainer.fit(train, epochs=20)                     # killed at any moment...
>>> trainer.fit(train, epochs=20, resume="last")      # ...continues bit-exactly

Helpers for tools (CLI, evaluation, DDP)::

    latest(dir) / best_by(dir) / list_checkpoints(dir)   -> paths
    load_checkpoint(path)                                -> a verified Checkpoint
    save_checkpoint(trainer, dir)                        -> path (rank 0 writes, all wait)

See docs/checkpoints.md for the format and the guarantees.
"""

from .run import (Checkpoint, NonFiniteWeights, check_compatible, find, load_checkpoint, load_run_state, resume,
                  run_state, save_checkpoint, weights_finite)
from .store import (CheckpointWarning, best_by, checkpoint_name, clean_partial, latest, list_checkpoints, position,
                    prune, read_manifest, verify)

__all__ = [
    "Checkpoint", "NonFiniteWeights", "CheckpointWarning", "best_by", "check_compatible", "checkpoint_name",
    "clean_partial", "find", "latest", "list_checkpoints", "load_checkpoint", "load_run_state", "position",
    "prune", "read_manifest", "resume", "run_state", "save_checkpoint", "verify", "weights_finite",
]
