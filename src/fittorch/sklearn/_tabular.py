"""DataFrames as they come, for the scikit-learn estimators (no ColumnTransformer needed).

With ``preprocess="auto"`` (the default) a DataFrame that holds text, bool or ``category``
columns, or empty cells, is fitted with a :class:`fittorch.tabular.TabularPreprocessor`
(kept as ``tabular_``); everything else takes sklearn's usual array path, so the estimators
still work inside a ``Pipeline`` / ``ColumnTransformer``. Sparse matrices (e.g. from a
``OneHotEncoder``) are made dense up to :data:`MAX_DENSE_CELLS`, refused beyond with the fix.
"""

from __future__ import annotations

import copy

import numpy as np

from fittorch import errors
from fittorch.data.convert import is_frame
from fittorch.tabular import TabularPreprocessor

MAX_DENSE_CELLS = 50_000_000  # a sparse X up to this many cells (200 MB as float32) is made dense


def wants_tabular(X, preprocess) -> bool:
    """Whether this fit takes the tabular path (see the module docstring)."""
    if preprocess is False or preprocess is None:
        return False
    if preprocess is True or isinstance(preprocess, TabularPreprocessor):
        if not is_frame(X):
            raise errors.DataTypeError(
                f"preprocess={preprocess!r} needs X as a pandas DataFrame with named columns; got "
                f"{type(X).__name__}. Pass the DataFrame itself, or preprocess='auto' for arrays.")
        return True
    if preprocess != "auto":
        raise errors.ConfigError(f"preprocess={preprocess!r}; expected 'auto', True, False or a "
                                 "fittorch.tabular.TabularPreprocessor (its settings are used; it is fitted "
                                 "anew on every fit).")
    if not is_frame(X):
        return False
    import pandas as pd

    for _, col in X.items():
        if not pd.api.types.is_numeric_dtype(col.dtype) or pd.api.types.is_bool_dtype(col.dtype):
            return True
    return bool(X.isna().to_numpy().any())


def fit_inputs(est, X, reset: bool):
    """The model's inputs of ``X`` when the estimator is (or becomes) tabular, else None."""
    if reset:
        est.tabular_ = None
        if not wants_tabular(X, est.preprocess):
            return None
        tab = copy.deepcopy(est.preprocess) if isinstance(est.preprocess, TabularPreprocessor) \
            else TabularPreprocessor()
        tab.fit(X, what="X")
        est.tabular_ = tab
        est.n_features_in_ = int(X.shape[1])
        est.feature_names_in_ = np.asarray([str(c) for c in X.columns], dtype=object)
    return predict_inputs(est, X)


def predict_inputs(est, X):
    tab = getattr(est, "tabular_", None)
    if tab is None:
        return None
    return tab.transform(X, what="X")


def dense(X):
    """``X`` itself, or a dense copy of a scipy sparse matrix (refused when too large).

    A DataFrame on this (array) path must hold numbers only; a text column is refused by name.
    """
    if is_frame(X):
        import pandas as pd

        text = [str(c) for c, col in X.items() if not pd.api.types.is_numeric_dtype(col.dtype)
                and not pd.api.types.is_bool_dtype(col.dtype)]
        if text:
            example = X[text[0]].dropna().iloc[:1].tolist()
            raise errors.DataTypeError(
                f"X column(s) {', '.join(map(repr, text[:5]))} hold text (e.g. {example}) "
                "and preprocess=False keeps sklearn's numbers-only path. Use preprocess='auto' (the default) to "
                "let fittorch encode categories, or encode them before (OneHotEncoder in a ColumnTransformer).")
    if not hasattr(X, "tocsr") or not hasattr(X, "nnz"):
        return X
    cells = int(X.shape[0]) * int(X.shape[1])
    if cells > MAX_DENSE_CELLS:
        raise errors.DataTypeError(
            f"X is a sparse {X.shape[0]}x{X.shape[1]} matrix ({cells:,} cells as dense); fittorch trains on "
            f"dense tensors and makes sparse input dense only up to {MAX_DENSE_CELLS:,} cells. Get dense output "
            "from the step before: OneHotEncoder(sparse_output=False), or ColumnTransformer(..., "
            "sparse_threshold=0); or pass the raw DataFrame and let fittorch encode the categories itself.")
    return X.toarray()


def width(X) -> int | None:
    """Columns of one input matrix; None for several inputs (a dict)."""
    return None if isinstance(X, dict) else int(X.shape[1])


def check_y(y, n: int, *, numeric: bool):
    """``y`` checked as sklearn's validate_data would (finite, same length as X)."""
    from sklearn.utils.validation import check_array

    import pandas as pd

    from fittorch.tabular.columns import rows_text

    gaps = pd.isna(pd.Series(np.asarray(y).reshape(len(y), -1)[:, 0])).to_numpy()
    if gaps.any():
        raise errors.DataError(f"y is empty (NaN/None) in {int(gaps.sum())} of {len(gaps)} rows ({rows_text(gaps)}, "
                               "counted from 1). Drop those rows (df.dropna(subset=[...])) or fill in their labels.")
    y = check_array(y, ensure_2d=False, dtype="numeric" if numeric else None, input_name="y")
    if len(y) != n:  # as sklearn words it, through fittorch's error type
        raise errors.DataError(f"X has {n} rows but y has {len(y)}; they must match.")
    return y
