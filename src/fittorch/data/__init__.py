"""Data in: every form a user passes becomes an :class:`InMemoryData` or a :class:`LoaderData`.

Both expose the same small interface the loop uses: ``num_batches``, ``epoch_order`` and
``batches``.
"""

from __future__ import annotations

import torch

from ..errors import DataError, DataTypeError
from .convert import first_tensor, map_structure, to_tensor
from .loader import LoaderData, is_loader_like
from .memory import InMemoryData

__all__ = ["InMemoryData", "LoaderData", "make_source", "to_tensor", "first_tensor", "map_structure"]


def _inputs_to_tensors(X, name: str):
    if isinstance(X, dict):
        return {k: to_tensor(v, name=f"{name}[{k!r}]") for k, v in X.items()}
    if isinstance(X, tuple):
        return tuple(to_tensor(v, name=f"{name}[{i}]") for i, v in enumerate(X))
    return to_tensor(X, name=name)


def make_source(data, *, target_dtype: torch.dtype | None = None, role: str = "train", require_target: bool = True):
    """Build the data source of one role ("train", "val", "test", "predict")."""
    if isinstance(data, (InMemoryData, LoaderData)):
        return data
    if is_loader_like(data):
        return LoaderData(data)
    if isinstance(data, tuple) and len(data) == 2:
        X, y = data
    elif require_target:
        raise DataTypeError(
            f"{role} data is a {type(data).__name__}; expected an (X, y) pair, a torch Dataset or a "
            f"DataLoader. For example: trainer.fit((X_train, y_train), val=(X_val, y_val))."
        )
    else:
        X, y = data, None
    inputs = _inputs_to_tensors(X, "X" if role == "train" else f"X ({role})")
    target = None
    if y is not None:
        y_name = "y" if role == "train" else f"y ({role})"
        target = to_tensor(y, name=y_name)
        if target_dtype is not None and target.dtype != target_dtype:
            target = _cast_target(target, target_dtype, y_name)
    source = InMemoryData(inputs, target)
    n_x = len(first_tensor(inputs))
    lengths = {k: len(v) for k, v in (inputs.items() if isinstance(inputs, dict) else
                                     enumerate(inputs) if isinstance(inputs, tuple) else [])}
    if lengths and len(set(lengths.values())) > 1:
        raise DataError(f"The inputs of the {role} data have different lengths: {lengths}. Every input needs one row per sample.")
    if target is not None and len(target) != n_x:
        raise DataError(
            f"X and y of the {role} data have different lengths: X has {n_x} rows, y has {len(target)}. "
            "They must have one row per sample; check the split that produced them."
        )
    return source


def _cast_target(target: torch.Tensor, dtype: torch.dtype, name: str) -> torch.Tensor:
    """Cast targets to what the loss needs, refusing casts that would change values."""
    if dtype == torch.long and target.is_floating_point():
        if not torch.isfinite(target).all() or not torch.equal(target, target.round()):
            raise DataTypeError(
                f"{name} holds non-integer floats (e.g. {target.flatten()[:3].tolist()}), but the loss expects "
                "class indices. Use a regression loss such as 'mse' for continuous targets, or pass integer labels."
            )
        return target.long()
    if dtype == torch.long and target.dtype == torch.bool:
        return target.long()
    return target.to(dtype)
