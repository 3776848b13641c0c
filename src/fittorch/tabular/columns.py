"""One column at a time: its role, its fitted state, and its encoding.

Rules (documented in ``docs/data.md``):

- a column is **categorical** when it holds text, booleans or a pandas ``category`` dtype, or
  when it is listed as categorical; it is **numeric** when it holds numbers (or is listed so);
- numeric gaps are filled with the training median (optionally flagged by a 0/1 column), then
  standardized with the training mean and standard deviation;
- a category value is compared as text (``1``, ``1.0`` and ``"1"`` are one level); a missing
  value is its own level (index 1); a value not in the vocabulary (unseen in training, or rarer
  than ``min_frequency`` there) is the unknown level (index 0): counted, never an error.
"""

from __future__ import annotations

import warnings

import numpy as np

from ..errors import DataError
from .schema import FIRST_LEVEL, MISSING, UNKNOWN, CategoricalColumn, NumericColumn

ID_LIKE_MIN_LEVELS = 50  # a categorical column with more levels than this ...
ID_LIKE_SHARE = 0.5      # ... and at least this share of distinct values per row looks like an ID


class TabularWarning(UserWarning):
    """A table fittorch can use, but probably not as the user meant (e.g. an ID column as a category)."""


def rows_text(mask: np.ndarray, limit: int = 8) -> str:
    """'rows 3, 17 (2 in all)': 1-based data rows (after the header) where ``mask`` is true."""
    rows = (np.flatnonzero(mask) + 1).tolist()
    shown = ", ".join(map(str, rows[:limit]))
    return f"row{'s' if len(rows) > 1 else ''} {shown}{' ...' if len(rows) > limit else ''} ({len(rows)} in all)"


def value_kind(col) -> str:
    """'bool', 'number' or 'text': what a column holds (pandas category: what its categories hold)."""
    import pandas as pd

    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype):
        dtype = dtype.categories.dtype
    if pd.api.types.is_bool_dtype(dtype):
        return "bool"
    if pd.api.types.is_numeric_dtype(dtype):
        return "number"
    inferred = pd.api.types.infer_dtype(col, skipna=True)
    if inferred == "boolean":
        return "bool"
    if inferred in ("integer", "floating", "decimal", "mixed-integer-float"):
        return "number"
    return "text"


def auto_role(col) -> str:
    """'categorical' for text, bool and pandas category columns, else 'numeric'."""
    import pandas as pd

    if isinstance(col.dtype, pd.CategoricalDtype) or value_kind(col) in ("bool", "text"):
        return "categorical"
    return "numeric"


def level_keys(col) -> tuple[np.ndarray, np.ndarray]:
    """(text key of every value, missing mask). Integral numbers lose their '.0'."""
    import pandas as pd

    missing = col.isna().to_numpy()
    values = col.astype(object).to_numpy() if isinstance(col.dtype, pd.CategoricalDtype) else col.to_numpy()
    keys = np.empty(len(values), dtype=object)
    present = values[~missing]
    if present.dtype != object:
        keys[~missing] = _number_keys(present)
    elif pd.api.types.infer_dtype(present, skipna=False) == "string":
        keys[~missing] = present  # plain text: the values are the keys
    else:
        keys[~missing] = [_key(v) for v in present]
    keys[missing] = None
    return keys, missing


def _number_keys(values: np.ndarray) -> list[str]:
    if values.dtype.kind == "b":
        return [str(bool(v)) for v in values]
    if values.dtype.kind in "iu" or (values.dtype.kind == "f" and np.all(np.mod(values, 1) == 0)):
        return values.astype(np.int64).astype(str).tolist()
    return [_key(v) for v in values]


def _key(v) -> str:
    if isinstance(v, (bool, np.bool_)):
        return str(bool(v))
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)) and float(v).is_integer():
        return str(int(v))
    return str(v)


def numeric_values(col, name: str, what: str, fitted_dtype: str | None = None) -> np.ndarray:
    """A column as float64 with NaN for missing (and for ±inf); text in it is an error."""
    import pandas as pd

    if pd.api.types.is_bool_dtype(col.dtype):
        out = col.astype(float).to_numpy()
    else:
        out = pd.to_numeric(col, errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        bad = np.isnan(out) & ~col.isna().to_numpy()
        if bad.any():
            example = col.to_numpy()[np.flatnonzero(bad)[0]]
            was = f"It was numeric ({fitted_dtype}) in the training table, so the file types differ. " \
                if fitted_dtype else ""
            raise DataError(
                f"{what}: column {name!r} should hold numbers but holds text, e.g. {example!r} at "
                f"{rows_text(bad)}. {was}Fix those values (or leave them empty to mark them missing), "
                f"or list the column as categorical (data.categorical: [{name}]).")
    out = np.array(out, dtype=np.float64)  # a writable copy (pandas may hand out read-only views)
    out[~np.isfinite(out)] = np.nan
    return out


def fit_numeric(col, name: str, what: str, *, indicator: bool, standardize: bool) -> NumericColumn:
    values = numeric_values(col, name, what)
    present = values[~np.isnan(values)]
    if not len(present):
        raise all_missing(name, len(values), what)
    fill = float(np.median(present))
    filled = np.where(np.isnan(values), fill, values)
    mean, scale = (float(filled.mean()), float(filled.std())) if standardize else (0.0, 1.0)
    return NumericColumn(name=name, dtype=str(col.dtype), fill=fill, mean=mean, scale=scale if scale > 0 else 1.0,
                         indicator=bool(indicator and len(present) < len(values)))


def encode_numeric(values: np.ndarray, spec: NumericColumn) -> list[np.ndarray]:
    """Float64 values with NaN gaps (:func:`numeric_values`) -> the model's input column(s)."""
    gaps = np.isnan(values)
    out = [(np.where(gaps, spec.fill, values) - spec.mean) / spec.scale]
    if spec.indicator:
        out.append(gaps.astype(np.float64))
    return out


def fit_categorical(col, name: str, what: str, *, min_frequency: int, warn_id: bool = True) -> CategoricalColumn:
    import pandas as pd

    keys, missing = level_keys(col)
    if missing.all():
        raise all_missing(name, len(keys), what)
    counts = pd.Series(keys[~missing]).value_counts(sort=False)
    kept = counts[counts >= min_frequency]
    levels = sorted(kept.index.tolist(), key=_sort_key)
    n_present = int((~missing).sum())
    if warn_id and len(counts) > ID_LIKE_MIN_LEVELS and len(counts) >= ID_LIKE_SHARE * n_present:
        warnings.warn(
            f"{what}: column {name!r} is used as categorical but has {len(counts)} distinct values in "
            f"{n_present} rows: it looks like an ID, which a model can only memorize. Leave it out "
            f"(data.ignore: [{name}]), or, if it is a number, list it as numeric.", TabularWarning, stacklevel=4)
    return CategoricalColumn(name=name, dtype=str(col.dtype), kind=value_kind(col), levels=[str(v) for v in levels],
                             n_rare=int(len(counts) - len(kept)))


def category_keys(col, spec: CategoricalColumn, what: str) -> tuple[np.ndarray, np.ndarray]:
    """(text keys, missing mask) of a column to encode with ``spec``; text where numbers were is an error."""
    keys, missing = level_keys(col)
    if (~missing).any():
        kind = value_kind(col[~missing])
        if {kind, spec.kind} == {"text", "number"}:
            example = col.to_numpy()[np.flatnonzero(~missing)[0]]
            raise DataError(
                f"{what}: column {spec.name!r} holds {kind} values (e.g. {example!r}) but held {spec.kind} "
                f"values ({spec.dtype}) in the training table, e.g. {spec.levels[:3]}. The files differ in this "
                "column's type; check that it is the same column and fix its values.")
    return keys, missing


def encode_categorical(keys: np.ndarray, missing: np.ndarray, spec: CategoricalColumn) -> tuple[np.ndarray, dict | None]:
    """(indices, None or {'count': n, 'examples': [...]} for values outside the vocabulary)."""
    position = {level: FIRST_LEVEL + i for i, level in enumerate(spec.levels)}  # levels are unique (schema)
    codes = np.full(len(keys), UNKNOWN, dtype=np.int64)
    codes[missing] = MISSING
    present = np.flatnonzero(~missing)
    codes[present] = np.fromiter((position.get(str(k), UNKNOWN) for k in keys[present]), np.int64, len(present))
    unknown = codes == UNKNOWN
    report = None
    if unknown.any():
        examples = list(dict.fromkeys(keys[unknown].tolist()))[:5]
        report = {"count": int(unknown.sum()), "examples": examples}
    return codes, report


def describe_unknown(report: dict) -> str | None:
    """One line on the values read as the unknown level, per column, or None when there were none."""
    if not report:
        return None
    parts = [f"{name}: {r['count']} row(s), e.g. {', '.join(map(repr, r['examples'][:3]))}"
             for name, r in report.items()]
    return ("values never seen in training (or rarer than min_frequency there) were read as the unknown "
            "level: " + "; ".join(parts))


def all_missing(name: str, n: int, what: str) -> DataError:
    return DataError(f"{what}: column {name!r} is entirely missing ({n} of {n} training rows are empty), so "
                     f"nothing can be learned from it. Leave it out with data.ignore: [{name}] (or "
                     "TabularPreprocessor(ignore=[...])), or fill it.")


def _sort_key(v):
    return (0, float(v), str(v)) if _is_number(v) else (1, 0.0, str(v))


def _is_number(v) -> bool:
    try:
        float(v)
    except (TypeError, ValueError):
        return False
    return True
