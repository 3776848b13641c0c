"""Turning what users pass (numpy, lists, tensors, pandas) into tensors."""

from __future__ import annotations

import numpy as np
import torch

from ..errors import DataTypeError


def to_tensor(value, dtype: torch.dtype | None = None, *, name: str = "X") -> torch.Tensor:
    """One array-like to a tensor; floats become float32 unless ``dtype`` says otherwise."""
    if isinstance(value, torch.Tensor):
        t = value
    else:
        if hasattr(value, "to_numpy"):  # pandas DataFrame / Series
            value = value.to_numpy()
        arr = np.asarray(value)
        if arr.dtype == object:
            raise DataTypeError(
                f"{name} is an array of Python objects (dtype=object, shape {arr.shape}); expected numbers. "
                "Convert it with np.asarray(..., dtype=float) or encode the non-numeric values first."
            )
        if arr.dtype.kind in "US":
            raise DataTypeError(
                f"{name} holds strings (dtype {arr.dtype}, shape {arr.shape}); expected numbers. "
                "Encode the text columns first."
            )
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    elif dtype is None and t.is_floating_point() and t.dtype == torch.float64:
        t = t.float()  # torch layers default to float32; float64 input would fail in the first Linear
    return t


def map_structure(fn, inputs):
    """Apply ``fn`` to a tensor, or to each tensor of a tuple/list/dict of tensors."""
    if isinstance(inputs, dict):
        return {k: fn(v) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return tuple(fn(v) for v in inputs)
    return fn(inputs)


def first_tensor(inputs) -> torch.Tensor:
    if isinstance(inputs, dict):
        return next(iter(inputs.values()))
    if isinstance(inputs, (tuple, list)):
        return inputs[0]
    return inputs
