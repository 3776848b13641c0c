"""Reading tabular files (CSV, Parquet, NPZ) through pandas/pyarrow/numpy."""

from __future__ import annotations

from pathlib import Path

from ..errors import ConfigError, DataError

SUPPORTED = (".csv", ".parquet", ".pq", ".npz")


def read_table(path):
    """A file as a pandas DataFrame. NPZ files become columns ``x0..xN`` (+ ``y``)."""
    import numpy as np
    import pandas as pd

    p = Path(path)
    if not p.exists():
        raise DataError(f"Data file {str(p)!r} does not exist. Check the path (relative paths start at {Path.cwd()}).")
    suffix = p.suffix.lower()
    if suffix == ".csv":
        return pd.read_csv(p)
    if suffix in (".parquet", ".pq"):
        return pd.read_parquet(p)
    if suffix == ".npz":
        with np.load(p, allow_pickle=False) as npz:
            X = npz["X"]
            df = pd.DataFrame(X.reshape(len(X), -1), columns=[f"x{i}" for i in range(X[0].size)])
            if "y" in npz:
                df["y"] = npz["y"]
        return df
    raise ConfigError(f"Unsupported data file extension {suffix!r} for {str(p)!r}; supported: {', '.join(SUPPORTED)}.")


def load_xy(path, target: str | None = None):
    """``(X DataFrame, y Series or None)`` from a file; ``target`` names the label column."""
    df = read_table(path)
    if target is None:
        return df, None
    if target not in df.columns:
        from ..errors import did_you_mean

        raise DataError(f"Target column {target!r} is not in {str(path)!r}.{did_you_mean(target, df.columns)} "
                        f"Columns: {', '.join(map(str, df.columns))}.")
    return df.drop(columns=[target]), df[target]
