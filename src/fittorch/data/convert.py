"""Turning what users pass (numpy, lists, tensors, pandas) into tensors.

Every refusal is raised through :mod:`fittorch.validation`, so the messages follow one
rule: what was seen, what was expected, and the fix.
"""

from __future__ import annotations

import numpy as np
import torch


def is_frame(value) -> bool:
    """A pandas DataFrame (checked without importing pandas)."""
    return type(value).__name__ == "DataFrame" and hasattr(value, "columns") and hasattr(value, "dtypes")


def is_series(value) -> bool:
    return type(value).__name__ == "Series" and hasattr(value, "dtype") and hasattr(value, "to_numpy")


def feature_names_of(X) -> list[str] | None:
    """The column names of a DataFrame (as strings), else None."""
    if is_frame(X):
        return [str(c) for c in X.columns]
    return None


def to_numpy(value, *, name: str = "X") -> np.ndarray:
    """An array-like as a numpy array, with pandas/ragged/object problems reported by name."""
    from . import checks as validation

    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    if is_frame(value):
        return frame_to_numpy(value, name=name)
    if is_series(value):
        return series_to_numpy(value, name=name)
    try:
        arr = np.asarray(value)
    except ValueError as exc:  # a ragged list: rows of different lengths
        raise validation.ragged_error(value, name, exc) from None
    return arr


def frame_to_numpy(df, *, name: str = "X") -> np.ndarray:
    """A DataFrame's values: int64 if every column is a plain integer column, else float32.

    Columns that hold text or a mix of types are refused, naming the column.
    """
    import pandas as pd

    from . import checks as validation

    for col in df.columns:
        validation.check_column(df[col], col, name)
    if len(df.columns) and all(pd.api.types.is_integer_dtype(t) and not pd.api.types.is_extension_array_dtype(t)
                               for t in df.dtypes):
        return df.to_numpy(dtype=np.int64)
    return df.to_numpy(dtype=np.float32, na_value=np.nan)


def series_to_numpy(s, *, name: str = "y") -> np.ndarray:
    import pandas as pd

    if isinstance(s.dtype, pd.CategoricalDtype):
        return np.asarray(s.astype(object))
    if pd.api.types.is_extension_array_dtype(s.dtype) and pd.api.types.is_numeric_dtype(s.dtype):
        return s.to_numpy(dtype=np.float64 if s.hasnans else None, na_value=np.nan)
    return s.to_numpy()


def to_tensor(value, dtype: torch.dtype | None = None, *, name: str = "X") -> torch.Tensor:
    """One array-like to a tensor; floats become float32 unless ``dtype`` says otherwise."""
    from . import checks as validation

    if isinstance(value, torch.Tensor):
        t = value
    else:
        arr = to_numpy(value, name=name)
        validation.check_array_dtype(arr, name)
        if arr.dtype == np.bool_:
            arr = arr.astype(np.float32)
        elif not arr.flags.writeable:  # e.g. pandas' copy-on-write views: torch wants writable memory
            arr = arr.copy()
        t = torch.from_numpy(np.ascontiguousarray(arr))
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    elif dtype is None and t.is_floating_point() and t.dtype == torch.float64:
        t = t.float()  # torch layers default to float32; float64 input would fail in the first Linear
    return t


def map_structure(fn, inputs):
    """Apply ``fn`` to a tensor, or to each tensor of a (nested) tuple/list/dict of tensors."""
    if isinstance(inputs, dict):
        return {k: map_structure(fn, v) for k, v in inputs.items()}
    if isinstance(inputs, (tuple, list)):
        return tuple(map_structure(fn, v) for v in inputs)
    return fn(inputs)


def first_tensor(inputs) -> torch.Tensor:
    if isinstance(inputs, dict):
        return next(iter(inputs.values()))
    if isinstance(inputs, (tuple, list)):
        return inputs[0]
    return inputs
