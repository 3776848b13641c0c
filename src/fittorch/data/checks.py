"""Checks of the data as users pass it: input forms, dtypes, targets and labels, val fractions,
files, and batching (collate). Each returns or raises a fittorch exception that names the values
seen, what was expected and the fix. Used by :mod:`fittorch.data` (no dependency on the trainer).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from ..errors import ConfigError, DataError, DataTypeError, did_you_mean


def _shapes(item):
    if isinstance(item, torch.Tensor):
        return tuple(item.shape)
    if isinstance(item, np.ndarray):
        return item.shape
    if isinstance(item, dict):
        return {k: _shapes(v) for k, v in item.items()}
    if isinstance(item, (tuple, list)):
        return type(item)(_shapes(v) for v in item)
    return type(item).__name__


def collate_failed(items, exc: Exception, *, custom: bool) -> DataError:
    """A batch could not be made from a Dataset's items: name their shapes and the fix."""
    shown = "; ".join(f"item {i}: {_shapes(it)}" for i, it in enumerate(items[:4]))
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    fix = ("Fix the collate_fn for these items." if custom else
           "Items of different sizes (e.g. variable-length sequences) need a collate_fn that pads them: "
           "fit(dataset, collate_fn=pad_batch), e.g. with torch.nn.utils.rnn.pad_sequence.")
    return DataError(f"Could not collate {len(items)} Dataset items into a batch ({shown}): {first}. {fix}")


def collate_needs_dataset(data, role: str) -> ConfigError:
    what = "a DataLoader" if getattr(data, "collate_fn", None) is not None else f"a {type(data).__name__}"
    return ConfigError(
        f"collate_fn= applies to a Dataset, which fittorch batches, but the {role} data is {what}. "
        "Pass the Dataset itself with collate_fn=..., or give your DataLoader its own collate_fn."
    )


# -- input forms (cases 1, 14) ----------------------------------------------------------------
def not_a_pair(data, role: str) -> DataTypeError:
    what = f"a tuple of {len(data)} items" if isinstance(data, tuple) else f"a {type(data).__name__}"
    hint = (" A model with several inputs takes them as a dict, or as a tuple inside the pair: "
            "fit(((X1, X2), y))." if isinstance(data, tuple) and len(data) > 2 else "")
    return DataTypeError(
        f"The {role} data is {what}; expected an (X, y) pair, a torch Dataset or a DataLoader. "
        f"For example: trainer.fit((X_train, y_train), val=(X_val, y_val)).{hint}"
    )


def check_input_structure(X, name: str) -> None:
    if X is None:
        raise DataTypeError(f"{name} is None; expected an array, tensor, DataFrame, or a dict/tuple of them.")
    if isinstance(X, (dict, tuple)) and len(X) == 0:
        raise DataError(f"{name} is an empty {type(X).__name__}; a model needs at least one input array.")
    if isinstance(X, dict):
        bad = [k for k in X if not isinstance(k, str)]
        if bad:
            raise DataTypeError(
                f"{name} is a dict with non-string key {bad[0]!r}; the keys become keyword arguments of "
                "model.forward, so they must be the argument names (strings)."
            )


def check_lengths(inputs, target, role: str) -> None:
    """Case 1: every input and the target have one row per sample."""
    named = (inputs.items() if isinstance(inputs, dict) else enumerate(inputs) if isinstance(inputs, tuple) else [])
    lengths = {k: len(v) for k, v in named}
    if lengths and len(set(lengths.values())) > 1:
        raise DataError(
            f"The inputs of the {role} data have different lengths: {lengths}. "
            "Every input needs one row per sample; check the split or filter that made them."
        )
    n_x = len(next(iter(inputs.values())) if isinstance(inputs, dict) else
              inputs[0] if isinstance(inputs, tuple) else inputs)
    if target is not None and len(target) != n_x:
        raise DataError(
            f"X and y of the {role} data have different lengths: X has {n_x} rows, y has {len(target)}. "
            "They must have one row per sample; check the split that produced them."
        )


def ragged_error(value, name: str, exc: Exception) -> DataTypeError:
    lengths = []
    if isinstance(value, (list, tuple)):
        for i, row in enumerate(value):
            try:
                lengths.append((i, len(row)))
            except TypeError:
                lengths.append((i, 1))
    first = lengths[0][1] if lengths else None
    odd = next(((i, n) for i, n in lengths if n != first), None)
    seen = f" (row 0 has {first} values, row {odd[0]} has {odd[1]})" if odd else ""
    return DataTypeError(
        f"{name} is a list of rows with different lengths{seen}, so it is not a table; expected every row "
        "to have the same number of values. Pad or drop the short rows first."
    )


def check_array_dtype(arr: np.ndarray, name: str) -> None:
    """Case 14: object and text arrays are refused, naming what they hold."""
    if arr.dtype == object:
        flat = arr.reshape(-1)
        kinds = sorted({type(v).__name__ for v in flat[:1000]})
        bad = next((i for i, v in enumerate(flat) if not isinstance(v, (int, float, np.number, bool))), None)
        where = ""
        if bad is not None:
            pos = np.unravel_index(bad, arr.shape)
            where = f"; the first non-number is {flat[bad]!r} at " + (
                f"row {pos[0]}, column {pos[1]}" if len(pos) > 1 else f"row {pos[0]}")
        raise DataTypeError(
            f"{name} is an array of Python objects (dtype=object, shape {arr.shape}, holding "
            f"{', '.join(kinds)}){where}; expected numbers. Convert it with np.asarray(..., dtype=float) "
            "or encode the non-numeric values first."
        )
    if arr.dtype.kind in "USMmcV":
        raise DataTypeError(
            f"{name} has dtype {arr.dtype} (shape {arr.shape}); expected numbers (float or int). "
            "Encode text or dates as numbers first (e.g. pandas.get_dummies for categories)."
        )


_PREPROCESS_HINT = (" Or let fittorch encode text, category and bool columns and fill gaps: "
                    "Trainer.fit(..., preprocess=True), or preprocess='auto' in the sklearn estimators "
                    "(see docs/data.md).")


def check_column(col, label, name: str) -> None:
    """Case 14: a DataFrame column that holds text or a mix of types, named."""
    import pandas as pd

    dtype = col.dtype
    if pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
        return
    if isinstance(dtype, pd.CategoricalDtype):
        raise DataTypeError(
            f"{name} column {label!r} is categorical ({len(dtype.categories)} categories, e.g. "
            f"{list(dtype.categories[:3])}); expected numbers. Encode it first, e.g. pd.get_dummies(df, columns=[{label!r}]) "
            f"or df[{label!r}].cat.codes." + _PREPROCESS_HINT
        )
    inferred = pd.api.types.infer_dtype(col, skipna=True)
    values = col.dropna()
    types = sorted({type(v).__name__ for v in values.iloc[:1000]})
    if inferred in ("mixed", "mixed-integer", "mixed-integer-float") or len(types) > 1:
        numeric = pd.to_numeric(values, errors="coerce")
        bad_pos = int(np.argmax(numeric.isna().to_numpy())) if numeric.isna().any() else 0
        example = values.iloc[bad_pos]
        raise DataTypeError(
            f"{name} column {label!r} has mixed types ({', '.join(types)}; e.g. {example!r} at row "
            f"{values.index[bad_pos]!r}); expected one numeric type. Clean that column, e.g. "
            f"pd.to_numeric(df[{label!r}], errors='coerce'), then handle the NaNs."
        )
    if inferred in ("integer", "floating", "decimal", "boolean"):
        return  # numbers stored as objects: converted with the rest
    numeric = pd.to_numeric(values, errors="coerce")
    if len(values) and numeric.notna().any():  # numbers read as text because of a few non-numbers
        bad = np.flatnonzero(numeric.isna().to_numpy())
        raise DataTypeError(
            f"{name} column {label!r} has mixed types (numbers and {len(bad)} text value(s); e.g. "
            f"{values.iloc[bad[0]]!r} at row {values.index[bad[0]]!r}); expected numbers. Clean that column, "
            f"e.g. pd.to_numeric(df[{label!r}], errors='coerce'), then handle the NaNs."
        )
    example = values.iloc[0] if len(values) else None
    raise DataTypeError(
        f"{name} column {label!r} holds {inferred} values (dtype {dtype}, e.g. {example!r}); expected numbers. "
        f"Encode it first (e.g. pd.get_dummies(df, columns=[{label!r}])) or drop it." + _PREPROCESS_HINT
    )


# -- targets and labels (cases 4, 5) ----------------------------------------------------------
def check_target(y: np.ndarray, loss_info, name: str) -> None:
    """Case 4: targets whose type does not fit the loss, caught on the host before casting."""
    if loss_info is None:
        return
    if y.dtype.kind in "OUS":
        raise DataTypeError(
            f"{name} holds text labels (e.g. {y.reshape(-1)[0]!r}), but the loss '{loss_info.name}' is a "
            "regression loss that needs numbers. For classification use loss='cross_entropy'."
        )
    if loss_info.target == "class_index" and y.dtype.kind == "f" and y.ndim == 1:
        finite = np.isfinite(y)
        if finite.all() and not np.equal(np.mod(y, 1), 0).all():
            example = y.reshape(-1)[np.flatnonzero(np.mod(y.reshape(-1), 1) != 0)[0]]
            raise DataTypeError(
                f"The loss '{loss_info.name}' expects integer class labels, but {name} holds non-integer floats "
                f"(dtype {y.dtype}, e.g. {float(example)!r}). Pass class labels (y.astype('int64')), or use "
                "loss='mse' for a continuous target."
            )
    if loss_info.task == "regression" and y.dtype.kind in "iub":
        n_distinct = len(np.unique(y))
        raise DataTypeError(
            f"The loss '{loss_info.name}' is a regression loss, but {name} holds integers (dtype {y.dtype}, "
            f"{n_distinct} distinct values), which look like class labels. For classification use "
            "loss='cross_entropy'; for an integer-valued regression target pass y.astype('float32')."
        )
    if loss_info.task == "binary" and y.dtype.kind == "f" and y.size:
        finite = y[np.isfinite(y)]
        if finite.size and (finite.min() < 0 or finite.max() > 1):
            raise DataError(
                f"The loss '{loss_info.name}' needs targets in [0, 1], but {name} ranges from {finite.min()} "
                f"to {finite.max()}. Pass 0/1 labels, or use loss='mse' for a continuous target."
            )


def check_integral_targets(target: torch.Tensor, name: str) -> None:
    if not torch.isfinite(target).all() or not torch.equal(target, target.round()):
        raise DataTypeError(
            f"{name} holds non-integer floats (e.g. {target.flatten()[:3].tolist()}), but the loss expects "
            "class indices. Use a regression loss such as 'mse' for continuous targets, or pass integer labels."
        )


def check_object_labels(y: np.ndarray, role: str) -> None:
    missing = [i for i, v in enumerate(y) if v is None or (isinstance(v, float) and v != v)]
    if missing:
        raise DataError(
            f"The {role} labels have {len(missing)} missing value(s) (None/NaN); the first is at row {missing[0]}. "
            "Drop those rows or fill the labels first."
        )
    types = sorted({type(v).__name__ for v in y})
    if len(types) > 1 and not set(types) <= {"int", "float", "bool"}:
        raise DataTypeError(
            f"The {role} labels mix types ({', '.join(types)}), e.g. {y[0]!r}; expected one type of label. "
            "Convert them to one type first, e.g. y.astype(str)."
        )


def too_many_binary_classes(classes: list, role: str):
    shown = ", ".join(map(repr, classes[:10])) + (", ..." if len(classes) > 10 else "")
    raise DataError(
        f"The {role} labels have {len(classes)} classes ({shown}), but a binary loss (bce) needs 2. "
        f"Use loss='cross_entropy' with a model that outputs {len(classes)} values."
    )


def unknown_labels(values: np.ndarray, classes: list, role: str):
    seen = list(dict.fromkeys(v.item() if hasattr(v, "item") else v for v in values))
    shown = ", ".join(map(repr, classes[:10])) + (", ..." if len(classes) > 10 else "")
    raise DataError(
        f"The {role} labels include {len(values)} value(s) the model was not trained on: "
        f"{', '.join(map(repr, seen[:5]))}{', ...' if len(seen) > 5 else ''}. Known classes: {shown}. "
        "Drop those rows, or train on data that has them."
    )


# -- val fraction (case 13) -------------------------------------------------------------------
def is_fraction_arg(val) -> bool:
    return isinstance(val, (int, float, np.floating, np.integer)) and not isinstance(val, bool)


def check_val_fraction(val) -> None:
    if not 0.0 < float(val) < 1.0:
        raise ConfigError(
            f"val={val!r}; a validation fraction must be between 0 and 1 (exclusive), e.g. val=0.2 for 20%. "
            "Or pass the validation data itself: val=(X_val, y_val)."
        )


def cannot_split(source, fraction) -> ConfigError:
    what = "a streamed file" if _is_stream(source) else (
        "a DataLoader" if getattr(source, "loader", None) is not None else "an IterableDataset")
    return ConfigError(
        f"val={fraction} needs data that can be indexed, but the training data is {what}. "
        "Pass the validation data explicitly: val=(X_val, y_val), a Dataset or a DataLoader."
    )


SPLIT_WORDS = {"name": "val={fraction}", "key": "val fraction", "part": "validation",
               "explicit": "val=(X_val, y_val)"}
"""How split refusals name the split and the explicit alternative; the CLI passes its config keys."""


def check_stratifiable(y: np.ndarray, fraction: float, classes: list | None, words: dict = SPLIT_WORDS) -> None:
    values, counts = np.unique(y, return_counts=True)
    names = [classes[v] if classes is not None and 0 <= v < len(classes) else v.item() for v in values]
    rare = [(n, int(c)) for n, c in zip(names, counts) if c < 2]
    if rare:
        shown = ", ".join(f"{n!r} ({c} sample)" for n, c in rare[:5])
        raise DataError(
            f"{words['name'].format(fraction=fraction)}: {len(rare)} class(es) have fewer than 2 samples ({shown}), "
            f"so a split would leave them with no training sample (or no {words['part']} sample). Add samples of "
            f"those classes, drop them, or pass {words['explicit']} explicitly."
        )


def split_failed(n: int, fraction: float, y, exc: Exception, words: dict = SPLIT_WORDS) -> DataError:
    classes = "" if y is None else f" and {len(np.unique(y))} classes"
    return DataError(
        f"{words['name'].format(fraction=fraction)} cannot split {n} samples{classes}: {str(exc).splitlines()[0]} "
        f"Use a larger fraction or more data, or pass {words['explicit']} explicitly."
    )


def check_split_classes(y_train: np.ndarray, y: np.ndarray, classes: list | None, words: dict = SPLIT_WORDS) -> None:
    missing = sorted(set(np.unique(y).tolist()) - set(np.unique(y_train).tolist()))
    if missing:
        names = [classes[m] if classes is not None else m for m in missing]
        raise DataError(
            f"The {words['part']} split left {len(missing)} class(es) with no training sample: {names[:5]}. "
            f"Use a smaller {words['key']}, add samples of those classes, "
            f"or pass {words['explicit']}."
        )


# -- files (cases 11, 12) ---------------------------------------------------------------------
FILE_TYPES = (".csv", ".parquet", ".pq", ".npz")


def check_file(path, allowed=FILE_TYPES) -> Path:
    """Case 12: the file exists, is a readable file, and has a supported extension."""
    import os

    if not isinstance(path, (str, os.PathLike)):
        raise DataTypeError(f"A data file path must be a str or Path; got a {type(path).__name__}.")
    p = Path(path)
    if not p.exists():
        near = ""
        if p.parent.is_dir():
            near = did_you_mean(p.name, [c.name for c in p.parent.iterdir()])
        raise DataError(
            f"Data file {str(p)!r} does not exist.{near} Check the path (relative paths start at {Path.cwd()})."
        )
    if p.is_dir():
        raise DataError(f"{str(p)!r} is a directory; expected a data file ({', '.join(allowed)}). Name the file inside it.")
    suffix = p.suffix.lower()
    if suffix not in allowed:
        raise ConfigError(
            f"Unsupported data file extension {suffix or '(none)'!r} for {str(p)!r}; supported: "
            f"{', '.join(allowed)}. Convert it (e.g. pandas: df.to_parquet(...)), or rename it if it is one of these."
        )
    if not os.access(p, os.R_OK):
        raise DataError(f"Data file {str(p)!r} exists but is not readable (permission denied). Fix its permissions "
                        "(chmod u+r) or copy it somewhere readable.")
    return p


def unreadable_file(path, exc: Exception, at_row: int | None = None) -> DataError:
    where = f" near row {at_row}" if at_row else ""
    kind = Path(path).suffix.lower().lstrip(".").upper() or "data"
    return DataError(
        f"Data file {str(path)!r} could not be read as {kind}{where}: {str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__}. "
        "Check that the file is complete and really is in that format."
    )


def missing_column(name, columns, path: str, what: str = "Target column") -> DataError:
    """Case 11: a missing column, with the nearest column names."""
    import difflib

    cols = [str(c) for c in columns]
    near = difflib.get_close_matches(str(name), cols, n=3, cutoff=0.6)
    if not near:
        lower = {c.lower(): c for c in cols}
        near = [lower[m] for m in difflib.get_close_matches(str(name).lower(), list(lower), n=3, cutoff=0.6)]
    hint = f" Nearest column names: {', '.join(map(repr, near))}." if near else ""
    shown = ", ".join(cols[:20]) + (f", ... ({len(cols)} in all)" if len(cols) > 20 else "")
    return DataError(f"{what} {name!r} is not in {path!r}.{hint} Columns: {shown}.")


def check_arrow_type(column: str, arrow_type, path: str) -> None:
    import pyarrow as pa

    if pa.types.is_integer(arrow_type) or pa.types.is_floating(arrow_type) or pa.types.is_boolean(arrow_type):
        return
    raise DataTypeError(
        f"Feature column {column!r} of {path!r} has type {arrow_type}; expected numbers. "
        "Encode it as numbers first, or leave it out with features=[...]."
    )


def check_chunk_finite(X: np.ndarray, y, names: list[str], offset: int, path: str) -> None:
    bad = ~np.isfinite(X)
    if bad.any():
        r, c = np.argwhere(bad)[0]
        raise DataError(
            f"{path!r} has {int(bad.sum())} NaN/inf value(s) in rows {offset}..{offset + len(X) - 1}; the first is "
            f"at row {offset + int(r)}, column {names[c]!r}. Drop or impute them first, or pass check_finite=False."
        )
    if y is not None and y.dtype.kind == "f" and not np.isfinite(y).all():
        r = int(np.flatnonzero(~np.isfinite(y))[0])
        raise DataError(f"{path!r} has a NaN/inf target at row {offset + r}. Drop or fill those rows first.")


def check_chunk_labels(y: np.ndarray, num_classes: int, offset: int, path: str) -> None:
    lo, hi = int(y.min()), int(y.max())
    if lo < 0 or hi >= num_classes:
        r = int(np.flatnonzero((y < 0) | (y >= num_classes))[0])
        raise DataError(
            f"{path!r} has label {int(y[r])} at row {offset + r}, but the model outputs {num_classes} classes "
            f"(valid labels 0..{num_classes - 1}). Make the last layer output more classes, or fix the labels."
        )


def check_positive_int(value, name: str) -> None:
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value <= 0:
        raise ConfigError(f"{name}={value!r}; expected a positive integer.")


def check_num_workers(num_workers) -> None:
    if not isinstance(num_workers, (int, np.integer)) or isinstance(num_workers, bool) or num_workers < 0:
        raise ConfigError(f"num_workers={num_workers!r}; expected an integer >= 0 (0 loads data in the main process).")


def _is_stream(source) -> bool:
    return getattr(source, "kind", None) == "stream"
