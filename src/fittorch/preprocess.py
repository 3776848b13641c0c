"""``Preprocessing``: everything between a table and the model's tensors, as plain data.

Fitted on the training rows by :func:`fittorch.experiment.prepare_data`, saved in
``model.json`` and applied unchanged by ``fittorch evaluate`` / ``predict``: the columns
(``tabular``: roles, fills, scales, category vocabularies, as the JSON of
:class:`fittorch.tabular.TabularPreprocessor`), the label mapping (original labels <-> class
indices) and the scaling of a regression target. Runs saved before ``tabular`` existed carry
``mean``/``scale`` instead and are applied as before.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np

from .errors import DataError
from .task import upgrade_task


@dataclass
class Preprocessing:
    """Everything between a table and the model's tensors, as plain data (saved in model.json)."""

    task: str  # binary | multiclass | multilabel | regression (fittorch.task); the old "classification" is upgraded
    feature_names: list[str]
    target: str | list[str] | None = None  # multilabel: the 0/1 label columns (also ``classes``)
    mean: list[float] | None = None
    scale: list[float] | None = None
    classes: list | None = None
    target_mean: float | None = None
    target_scale: float | None = None
    binary_output: bool = False  # one logit (bce_with_logits) instead of one output per class
    tabular: dict | None = None  # TabularPreprocessor state (docs/data.md, "The saved JSON")
    last_unknown: dict = field(default_factory=dict, repr=False, compare=False)  # of the last frame_to_X

    def __post_init__(self):
        self.task = upgrade_task(self.task, binary=self.binary_output)  # a model.json of fittorch 0.1/0.2
        self.binary_output = self.binary_output or self.task == "binary"

    def to_dict(self) -> dict:
        d = asdict(self)
        d.pop("last_unknown")
        return d

    @classmethod
    def from_dict(cls, d: dict) -> Preprocessing:
        prep = cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__ and k != "last_unknown"})
        if prep.tabular is not None:
            prep.tabular = prep.columns().to_dict()  # validated now: a damaged state fails at load
        return prep

    def columns(self):
        """The :class:`~fittorch.tabular.TabularPreprocessor` of this run (None for older runs)."""
        from .tabular import TabularPreprocessor

        if self.tabular is None:
            return None
        return TabularPreprocessor.from_dict(self.tabular, "model.json 'preprocessing.tabular'")

    @property
    def target_columns(self) -> list[str]:
        """The column(s) a labelled table holds the target in (``y`` when none was named)."""
        target = self.target or "y"
        return [target] if isinstance(target, str) else list(target)

    @property
    def n_inputs(self) -> int:
        """Width of the numeric input (with missing indicators), the model's ``in_features``."""
        return len(self.feature_names) if self.tabular is None else self.columns().n_numeric_inputs

    @property
    def n_outputs(self) -> int:
        if self.task == "regression" or self.binary_output:
            return 1
        return len(self.classes or [])

    # -- features ----------------------------------------------------------------------
    def frame_to_X(self, df, what: str, *, allow: tuple = ()):
        """Check the columns of ``df`` against training, reorder, encode -> the model's inputs.

        With ``tabular``: raw rows (text, gaps, unseen categories); other columns are skipped
        unread, and ``last_unknown`` counts the values outside the vocabularies.
        """
        if self.tabular is not None:
            tab = self.columns()
            _refuse_extra(df, tab.state.columns, (*tab.state.ignored, *allow), what)
            X = tab.transform(df, what=what)
            self.last_unknown = tab.last_unknown
            return X
        cols = [str(c) for c in df.columns]
        missing = [c for c in self.feature_names if c not in cols]
        if missing:
            raise DataError(f"{what} is missing column(s) {', '.join(map(repr, missing[:5]))}"
                            f"{' ...' if len(missing) > 5 else ''}; the model was trained on "
                            f"{len(self.feature_names)} columns: {_short(self.feature_names)}.")
        _refuse_extra(df, self.feature_names, allow, what)
        df = df.copy()
        df.columns = cols
        return self.transform(numeric_matrix(df[self.feature_names], what))

    def transform(self, X: np.ndarray) -> np.ndarray:
        X = np.asarray(X, dtype=np.float64)
        if self.mean is not None:
            X = (X - np.asarray(self.mean)) / np.asarray(self.scale)
        return X.astype(np.float32)

    # -- target ------------------------------------------------------------------------
    def encode(self, y, what: str) -> np.ndarray:
        """Original labels/values -> what the loss expects."""
        if self.task == "regression":
            y = np.asarray(y, dtype=np.float64).reshape(-1, 1)
            if self.target_mean is not None:
                y = (y - self.target_mean) / self.target_scale
            return y.astype(np.float32)
        if self.task == "multilabel":
            return _indicators(y, self.classes, what)
        import pandas as pd

        try:  # vectorised; -1 marks a label outside the known classes
            codes = np.asarray(pd.Index(self.classes).get_indexer(np.asarray(y).ravel()), dtype=np.int64)
        except (TypeError, ValueError):  # labels of mixed types: match one by one
            index = {_plain(c): i for i, c in enumerate(self.classes)}
            codes = pd.Series(list(y)).map(lambda v: index.get(_plain(v), -1)).to_numpy()
        if (codes < 0).any():
            unknown = sorted({str(v) for v, c in zip(y, codes) if c < 0})
            raise DataError(f"{what} has label(s) the model never saw: {', '.join(unknown[:5])}. "
                            f"Known classes: {_short([str(c) for c in self.classes])}.")
        if self.binary_output:
            return codes.astype(np.float32).reshape(-1, 1)
        return codes.astype(np.int64)

    def decode(self, outputs) -> tuple[list, np.ndarray | None]:
        """Model outputs -> (predictions in original labels/units, class probabilities or None)."""
        import torch

        out = torch.as_tensor(outputs).float()
        if self.task == "regression":
            values = out.reshape(len(out), -1)[:, 0].double().numpy()
            if self.target_mean is not None:
                values = values * self.target_scale + self.target_mean
            return values.tolist(), None
        if self.task == "multilabel":  # rows of 0/1 per label, and each label's probability
            proba = torch.sigmoid(out.reshape(len(out), -1)).double().numpy()
            return (proba >= 0.5).astype(np.int64).tolist(), proba
        if self.binary_output:
            p1 = torch.sigmoid(out.reshape(-1)).double().numpy()
            proba = np.stack([1 - p1, p1], axis=1)
        else:
            proba = torch.softmax(out, dim=1).double().numpy()
        idx = proba.argmax(axis=1)
        return [self.classes[i] for i in idx], proba



def _indicators(y, labels: list, what: str) -> np.ndarray:
    """Multilabel targets -> float32 [N, C] 0/1; anything but 0/1 (or true/false) is refused by column."""
    import pandas as pd

    frame = pd.DataFrame(np.asarray(y, dtype=object).reshape(len(y), -1))
    if frame.shape[1] != len(labels):
        raise DataError(f"{what} has {frame.shape[1]} label column(s); the model was trained on {len(labels)}: "
                        f"{_short(labels)}.")
    out = np.empty(frame.shape, dtype=np.float32)
    for j, label in enumerate(labels):
        values = pd.to_numeric(frame[j].map(lambda v: int(v) if isinstance(v, (bool, np.bool_)) else v),
                               errors="coerce")
        bad = ~values.isin([0, 1])
        if bad.any():
            shown = sorted({str(v) for v in frame[j][bad]})[:5]
            raise DataError(f"{what}: label column {label!r} holds {', '.join(shown)}; a multilabel target is one 0/1 "
                            "(or true/false) column per label. Recode that column, or train it as its own "
                            "multiclass or regression target.")
        out[:, j] = values.to_numpy(dtype=np.float32)
    return out


def numeric_matrix(df, what: str) -> np.ndarray:
    """A DataFrame of features as float64, with clear errors for text columns and NaNs."""
    import pandas as pd

    bad = [str(c) for c in df.columns if not (pd.api.types.is_numeric_dtype(df[c]) or pd.api.types.is_bool_dtype(df[c]))]
    if bad:
        raise DataError(f"{what}: column(s) {', '.join(map(repr, bad[:5]))} hold text, but features must be numbers. "
                        "Encode them as numbers, or leave them out with data.features: [...].")
    X = df.to_numpy(dtype=np.float64)
    if not np.isfinite(X).all():
        cols = [str(c) for c, n in zip(df.columns, (~np.isfinite(X)).sum(axis=0)) if n]
        raise DataError(f"{what}: column(s) {', '.join(map(repr, cols[:5]))} have missing or infinite values. "
                        "Fill or drop those rows before training.")
    return X


def _refuse_extra(df, used: list, allow, what: str) -> None:
    """Columns never seen in the training table are refused by name (their values are not read)."""
    known = {*used, *map(str, allow)}
    extra = [str(c) for c in df.columns if str(c) not in known]
    if extra:
        raise DataError(f"{what} has column(s) the model was not trained on: {', '.join(map(repr, extra[:5]))}"
                        f"{' ...' if len(extra) > 5 else ''}. Drop them, or keep only: {_short(used)}.")


def _plain(v):
    """numpy scalars -> Python values (JSON-able, hashable alike)."""
    return v.item() if hasattr(v, "item") else v


def _short(names: list, n: int = 8) -> str:
    return ", ".join(map(str, names[:n])) + (f" ... ({len(names)} in all)" if len(names) > n else "")
