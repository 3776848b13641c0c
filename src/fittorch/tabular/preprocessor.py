"""``TabularPreprocessor``: a raw table in, the model's tensors out, with its state as JSON.

>>> tab = TabularPreprocessor().fit(train_df)          # roles, vocabularies, fills, scales
>>> inputs = tab.transform(new_df)                     # {'numeric': float32, 'categorical': int64}
>>> tab.save("prep.json"); TabularPreprocessor.load("prep.json")

Only the columns it is told to use are ever looked at: ``columns=`` picks them (default: all
but ``ignore``), so an unselected text or empty column never causes an error.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from ..errors import ConfigError, DataError, DataTypeError
from . import columns as C
from .schema import TabularState, parse_state

MAX_STATE_BYTES = 64 * 1024 * 1024  # a saved state larger than this is refused unread


class TabularPreprocessor:
    """Column roles, missing values and categories of a DataFrame, fitted on training rows.

    Args:
        columns: use only these columns (default: every column but ``ignore`` and ``target``).
        numeric: columns to read as numbers even if auto-detection would not.
        categorical: columns to read as categories (e.g. low-cardinality integer codes); text,
            bool and pandas ``category`` columns are categorical without being listed.
        ignore: columns never used and never looked at.
        target: a label column to leave out when it is in the table.
        min_frequency: levels seen fewer times than this in the training rows fold into "unknown".
        missing_indicator: add a 0/1 input per numeric column that had gaps in training.
        standardize: scale numeric columns with the training mean and standard deviation.

    ``transform`` returns one float32 array when no column is categorical, else a dict
    ``{"numeric": float32 (n, k), "categorical": int64 (n, c)}`` that a model receives as
    keyword arguments (see :class:`fittorch.TabularMLP`). ``last_unknown`` counts the values
    of the last ``transform`` that were not in the vocabulary.
    """

    def __init__(self, *, columns=None, numeric=None, categorical=None, ignore=(), target=None,
                 min_frequency: int = 1, missing_indicator: bool = False, standardize: bool = True):
        self.columns = None if columns is None else [str(c) for c in columns]
        self.numeric = [str(c) for c in (numeric or ())]
        self.categorical = [str(c) for c in (categorical or ())]
        self.ignore = [str(c) for c in (ignore or ())]
        self.target = None if target is None else str(target)
        self.min_frequency = int(min_frequency)
        self.missing_indicator = bool(missing_indicator)
        self.standardize = bool(standardize)
        self.state: TabularState | None = None
        self.last_unknown: dict[str, dict] = {}
        both = sorted(set(self.numeric) & set(self.categorical))
        if both:
            raise ConfigError(f"column(s) {both} are listed as both numeric and categorical; list each in one.")
        if self.min_frequency < 1:
            raise ConfigError(f"min_frequency={min_frequency}; expected a count of at least 1 (1 keeps every level).")

    # -- fitting ------------------------------------------------------------------------
    def fit(self, df, *, what: str = "X") -> TabularPreprocessor:
        """Decide each used column's role and fit its state on these (training) rows."""
        frame = self._check_frame(df, what)
        used = self._used_columns(frame, what)
        if not len(frame):
            raise DataError(f"{what} has no rows; the preprocessing needs training rows to fit on.")
        numeric, categorical = [], []
        for name in used:
            col = frame[name]
            role = "numeric" if name in self.numeric else "categorical" if name in self.categorical \
                else C.auto_role(col)
            if role == "numeric":
                numeric.append(C.fit_numeric(col, name, what, indicator=self.missing_indicator,
                                             standardize=self.standardize))
            else:
                categorical.append(C.fit_categorical(col, name, what, min_frequency=self.min_frequency))
        ignored = [c for c in frame.columns if c not in used and c != self.target]
        self.state = TabularState(columns=used, numeric=numeric, categorical=categorical, n_rows=len(frame),
                                  ignored=ignored,
                                  min_frequency=self.min_frequency, missing_indicator=self.missing_indicator,
                                  standardize=self.standardize)
        return self

    def fit_transform(self, df, *, what: str = "X"):
        return self.fit(df, what=what).transform(df, what=what)

    # -- applying -----------------------------------------------------------------------
    def transform(self, df, *, what: str = "X"):
        """The model's inputs for ``df``: raw rows like the training table (extra columns are skipped)."""
        state = self._fitted()
        frame = self._check_frame(df, what)
        absent = [c for c in state.columns if c not in frame.columns]
        if absent:
            raise DataError(f"{what} is missing column(s) {', '.join(map(repr, absent[:8]))}, which the model uses. "
                            f"It needs every one of: {', '.join(state.columns)} (other columns are ignored).")
        numeric = {s.name: C.numeric_values(frame[s.name], s.name, what, fitted_dtype=s.dtype) for s in state.numeric}
        keys = {s.name: C.category_keys(frame[s.name], s, what) for s in state.categorical}
        return self.encode_columns(numeric, keys, len(frame))

    def encode_columns(self, numeric: dict, keys: dict, n_rows: int):
        """The model's inputs from columns already read: each numeric column as float64 with NaN
        gaps, each categorical one as (text keys, missing mask). ``transform`` reads them from a
        DataFrame; :mod:`fittorch.tabular.smallcsv` from a small CSV file without pandas."""
        state = self._fitted()
        parts = [p for spec in state.numeric for p in C.encode_numeric(numeric[spec.name], spec)]
        inputs = (np.stack(parts, axis=1) if parts else np.zeros((n_rows, 0))).astype(np.float32)
        self.last_unknown = {}
        if not state.categorical:
            return inputs
        codes = []
        for spec in state.categorical:
            idx, report = C.encode_categorical(*keys[spec.name], spec)
            codes.append(idx)
            if report:
                self.last_unknown[spec.name] = report
        return {"numeric": inputs, "categorical": np.stack(codes, axis=1).astype(np.int64)}

    def unknown_message(self) -> str | None:
        """One line on the values of the last ``transform`` outside the vocabulary, or None."""
        return C.describe_unknown(self.last_unknown)

    # -- what the model needs -----------------------------------------------------------
    @property
    def n_numeric_inputs(self) -> int:
        return self._fitted().n_numeric_inputs

    @property
    def cardinalities(self) -> list[int]:
        """Indices per categorical column: its levels + unknown (0) + missing (1)."""
        return self._fitted().cardinalities

    @property
    def categorical_columns(self) -> list[str]:
        return [c.name for c in self._fitted().categorical]

    def make_model(self, out_features: int, hidden=(64,), **kwargs):
        """The built-in MLP for these inputs: a :class:`fittorch.TabularMLP` (or a plain MLP)."""
        from ..models import MLP, TabularMLP

        state = self._fitted()
        if not state.categorical:
            kwargs.pop("embedding_dims", None)
            kwargs.pop("one_hot_max_levels", None)
            return MLP(state.n_numeric_inputs, list(hidden), out_features, **kwargs)
        return TabularMLP(state.n_numeric_inputs, state.cardinalities, list(hidden), out_features,
                          column_names=self.categorical_columns, **kwargs)

    # -- state as JSON ------------------------------------------------------------------
    def to_dict(self) -> dict:
        return self._fitted().model_dump(mode="json")

    @classmethod
    def from_dict(cls, data, source: str = "the tabular preprocessing") -> TabularPreprocessor:
        state = parse_state(data, source)
        tab = cls(columns=state.columns, numeric=[c.name for c in state.numeric],
                  categorical=[c.name for c in state.categorical], min_frequency=state.min_frequency,
                  missing_indicator=state.missing_indicator, standardize=state.standardize)
        tab.state = state
        return tab

    def save(self, path: str | os.PathLike) -> Path:
        """Write the fitted state as JSON (atomically: a temp file, fsync, rename)."""
        p = Path(path)
        tmp = p.with_name(f".{p.name}.tmp-{os.getpid()}")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, p)
        return p

    @classmethod
    def load(cls, path: str | os.PathLike) -> TabularPreprocessor:
        from ..errors import CheckpointError

        p = Path(path)
        if not p.is_file():
            raise CheckpointError(f"{p} is not a file; expected the JSON written by TabularPreprocessor.save.")
        if p.stat().st_size > MAX_STATE_BYTES:
            raise CheckpointError(f"{p} is {p.stat().st_size} bytes, more than the {MAX_STATE_BYTES} a tabular "
                                  "state may have; it is not a file written by TabularPreprocessor.save.")
        try:
            data = json.loads(p.read_text(encoding="utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise CheckpointError(f"{p} is not valid JSON ({exc}); re-save the preprocessing.") from None
        return cls.from_dict(data, str(p))

    # -- internals ----------------------------------------------------------------------
    def _fitted(self) -> TabularState:
        if self.state is None:
            from ..errors import NotFittedError

            raise NotFittedError("This TabularPreprocessor is not fitted yet; call fit(train_df) first.")
        return self.state

    def _check_frame(self, df, what: str):
        from ..data.convert import is_frame

        if not is_frame(df):
            raise DataTypeError(f"{what} is a {type(df).__name__}; the tabular preprocessing takes a pandas "
                                "DataFrame with named columns (e.g. pd.read_csv(...)).")
        names = [str(c) for c in df.columns]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise DataError(f"{what} has duplicate column name(s) {dupes}; each column needs its own name. "
                            "Rename or drop the copies.")
        if names != list(df.columns):
            df = df.set_axis(names, axis=1)
        return df

    def _used_columns(self, frame, what: str) -> list[str]:
        names = list(frame.columns)
        wanted = self.columns if self.columns is not None else names
        listed = [*(self.columns or ()), *self.numeric, *self.categorical, *self.ignore]
        absent = [c for c in dict.fromkeys(listed) if c not in names]
        if absent:
            from ..errors import did_you_mean

            raise DataError(f"{what} has no column {absent[0]!r}.{did_you_mean(absent[0], names)} "
                            f"Its columns: {', '.join(names[:20])}{' ...' if len(names) > 20 else ''}.")
        skip = {*self.ignore, *([self.target] if self.target else [])}
        used = [c for c in wanted if c not in skip]
        if not used:
            raise DataError(f"{what}: no columns are left to learn from (ignored: {sorted(skip)}).")
        return used


def n_rows(inputs) -> int:
    """Rows of the model's inputs: one array, or a dict of arrays (as ``transform`` returns)."""
    return len(next(iter(inputs.values()))) if isinstance(inputs, dict) else len(inputs)


def as_preprocessor(preprocess) -> TabularPreprocessor:
    """``preprocess=`` of ``Trainer.fit``: a TabularPreprocessor, or True for a default one."""
    if preprocess is True:
        return TabularPreprocessor()
    if not isinstance(preprocess, TabularPreprocessor):
        raise ConfigError(f"preprocess={preprocess!r}; expected a fittorch.tabular.TabularPreprocessor (fitted, or "
                          "fitted on train's X here) or True for one with default settings.")
    return preprocess


def encode_pair(tab: TabularPreprocessor, data, *, fit: bool = False):
    """An ``(X DataFrame, y)`` pair as ``(model inputs, y)``, fitting ``tab`` on X first when asked
    and not yet fitted. A validation fraction (``0.2``) or None passes through; so does X that is
    not a DataFrame (already encoded)."""
    from ..data.convert import is_frame

    if data is None or isinstance(data, (float, int)):
        return data
    if not (isinstance(data, tuple) and len(data) == 2):
        raise DataTypeError(f"preprocess= encodes (X DataFrame, y) pairs; got a {type(data).__name__}. Pass "
                            "(df, y), or encode yourself with tab.transform(df) for Datasets and loaders.")
    X, y = data
    if not is_frame(X):
        return data
    if fit and tab.state is None:
        tab.fit(X)
    return tab.transform(X), y
