"""Reading tabular files (CSV, Parquet, NPZ) through pandas/pyarrow/numpy.

``read_table(path)`` gives a DataFrame; ``load_xy(path, target)`` splits off the label
column. For files larger than memory, use :func:`fittorch.data.stream_file` instead.

CSV files are read as they come: a UTF-8 byte-order mark is dropped, a ``;`` (or tab)
delimited file is recognised from its header line (with decimal commas when its numbers use
them), and duplicate column names are refused instead of being renamed ``a.1``.
"""

from __future__ import annotations

import re

from .checks import FILE_TYPES as SUPPORTED

SNIFF_BYTES = 64 * 1024  # the start of a CSV read to find its delimiter and header
_DECIMAL_COMMA = re.compile(r"(^|;)\s*-?\d+,\d+\s*(;|$)", re.M)


def csv_dialect(p) -> dict:
    """``read_csv`` arguments for this file (sep, decimal, encoding), from its first bytes."""
    with open(p, "rb") as f:
        return csv_dialect_of(f.read(SNIFF_BYTES).decode("utf-8-sig", errors="replace"))


def csv_dialect_of(head: str) -> dict:
    """``read_csv`` arguments (sep, decimal, encoding) for a CSV file that starts with ``head``."""
    lines = head.splitlines()
    header = lines[0] if lines else ""
    counts = {sep: header.count(sep) for sep in (",", ";", "\t")}
    sep = max(counts, key=lambda k: (counts[k], k == ","))
    if not counts[sep]:
        sep = ","
    decimal = "," if sep == ";" and _DECIMAL_COMMA.search("\n".join(lines[1:50])) else "."
    return {"sep": sep, "decimal": decimal, "encoding": "utf-8-sig"}


def read_table(path):
    """A file as a pandas DataFrame. NPZ files become columns ``x0..xN`` (+ ``y``)."""
    import numpy as np
    import pandas as pd

    from . import checks as validation

    p = validation.check_file(path, SUPPORTED)
    suffix = p.suffix.lower()
    try:
        if suffix == ".csv":
            try:
                dialect = csv_dialect(p)
                return _checked_csv(p, pd.read_csv(p, **dialect), sep=dialect["sep"])
            except UnicodeDecodeError as exc:
                from ..errors import DataError

                raise DataError(
                    f"{str(p)!r} is not UTF-8 text (it holds the byte {exc.object[exc.start:exc.start + 1]!r}, "
                    "which UTF-8 does not allow there); fittorch reads CSV files as UTF-8. Save it as UTF-8 "
                    f"(Excel: 'CSV UTF-8'), or convert it, e.g. iconv -f latin1 -t utf-8 {p.name} > {p.stem}-utf8.csv"
                ) from None
        if suffix in (".parquet", ".pq"):
            return pd.read_parquet(p)
        with np.load(p, allow_pickle=False) as npz:
            keys = list(npz.keys())
            if "X" not in npz:
                raise validation.missing_column("X", keys, str(p), what="Array")
            X = npz["X"]
            if X.ndim == 0:
                from ..errors import DataError

                raise DataError(f"{str(p)!r}: X is a single value (0-d array, shape ()); expected rows x features, "
                                "e.g. shape (n, d).")
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


def load_xy(path, target: str | None = None, *, features=None, check: bool = True):
    """``(X DataFrame, y Series or None)`` from a file; ``target`` names the label column.

    ``features`` keeps only those columns; the others are never looked at. With ``check``,
    the kept columns holding text or mixed types are refused, naming the column (for raw
    tables with text, use :class:`fittorch.tabular.TabularPreprocessor` and ``check=False``).
    """
    import pandas as pd

    from . import checks as validation

    df = read_table(path)
    if target is None:
        X, y = df, None
    else:
        if target not in df.columns:
            raise validation.missing_column(target, df.columns, str(path))
        X, y = df.drop(columns=[target]), df[target]
    if features is not None:
        absent = [c for c in features if c not in X.columns]
        if absent:
            raise validation.missing_column(absent[0], X.columns, str(path))
        X = X[list(features)]
    if check:
        for col in X.columns:
            if not (pd.api.types.is_numeric_dtype(X[col]) or pd.api.types.is_bool_dtype(X[col])) and \
                    (pd.api.types.is_datetime64_any_dtype(X[col]) or pd.api.types.is_timedelta64_dtype(X[col])):
                from ..errors import DataTypeError

                raise DataTypeError(f"File {str(path)!r} column {col!r} holds dates/times ({X[col].dtype}); expected "
                                    f"numbers. Turn it into numbers first (e.g. df[{col!r}].dt.dayofyear) or drop it.")
            validation.check_column(X[col], col, f"File {str(path)!r}")
    if y is not None:
        check_target_present(y, target, path)
    return X, y


def check_target_present(y, target, path) -> None:
    """Missing labels are refused, naming their rows: a NaN must never become a class 'nan'."""
    import pandas as pd

    from ..errors import DataError

    missing = pd.isna(pd.Series(y)).to_numpy()
    if missing.any():
        csv_file = str(path).lower().endswith(".csv")  # a CSV's line numbers (line 1 is the header)
        rows = [int(i) + (2 if csv_file else 0) for i in missing.nonzero()[0][:10]]
        raise DataError(f"File {str(path)!r}: the target column {target!r} has {int(missing.sum())} missing value(s), "
                        f"at {'line' if csv_file else 'row (from 0)'} {', '.join(map(str, rows))}"
                        f"{' ...' if missing.sum() > 10 else ''}. Drop those rows or fill in their labels.")


def _checked_csv(p, df, sep: str = ","):
    """A CSV with a header and at least one row, and no column name twice (pandas renames it ``x.1``)."""
    import csv

    from ..errors import DataError

    with open(p, newline="", encoding="utf-8-sig", errors="replace") as f:
        header = next(csv.reader(f, delimiter=sep), [])
    seen = [c for i, c in enumerate(header) if c in header[:i]]
    if seen:
        raise DataError(f"File {str(p)!r} names column(s) {', '.join(map(repr, dict.fromkeys(seen)))} more than once; "
                        "each column needs its own name.")
    if len(df) == 0:
        raise DataError(f"File {str(p)!r} has a header ({', '.join(map(str, header[:6]))}) but no data rows.")
    return df
