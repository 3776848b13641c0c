"""Reading tabular files (CSV, Parquet, NPZ) through pandas/pyarrow/numpy.

``read_table(path)`` gives a DataFrame; ``load_xy(path, target)`` splits off the label
column. For files larger than memory, use :func:`fittorch.data.stream_file` instead.
"""

from __future__ import annotations

from .checks import FILE_TYPES as SUPPORTED


def read_table(path):
    """A file as a pandas DataFrame. NPZ files become columns ``x0..xN`` (+ ``y``)."""
    import numpy as np
    import pandas as pd

    from . import checks as validation

    p = validation.check_file(path, SUPPORTED)
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            return pd.read_csv(p)
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
        with np.load(p, allow_pickle=False) as npz:
            keys = list(npz.keys())
            if "X" not in npz:
                raise validation.missing_column("X", keys, str(p), what="Array")
            X = npz["X"]
            validation.check_array_dtype(X, f"{p.name}['X']")
            df = pd.DataFrame(X.reshape(len(X), -1), columns=[f"x{i}" for i in range(int(np.prod(X.shape[1:])))])
            if "y" in npz:
                y = npz["y"]
                if len(y) != len(X):
                    from ..errors import DataError

                    raise DataError(f"{str(p)!r}: X has {len(X)} rows but y has {len(y)}; they must match.")
                df["y"] = y
        return df
    except (OSError, ValueError, EOFError) as exc:
        from ..errors import FittorchError

        if isinstance(exc, FittorchError):
            raise
        raise validation.unreadable_file(p, exc) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError) as exc:  # pragma: no cover - subclasses ValueError
        raise validation.unreadable_file(p, exc) from None


def load_xy(path, target: str | None = None):
    """``(X DataFrame, y Series or None)`` from a file; ``target`` names the label column.

    Feature columns holding text or mixed types are refused here, naming the column.
    """
    from . import checks as validation

    df = read_table(path)
    if target is None:
        X, y = df, None
    else:
        if target not in df.columns:
            raise validation.missing_column(target, df.columns, str(path))
        X, y = df.drop(columns=[target]), df[target]
    for col in X.columns:
        validation.check_column(X[col], col, f"File {str(path)!r}")
    return X, y
