"""Running an exported ``.onnx`` file on onnxruntime: no torch on this path.

``fittorch export`` writes the run's preprocessing (standardization) into the graph and its
contract (task, feature names, class names, input and output names) into the file's
``metadata_props`` under the key ``fittorch``. :class:`OnnxModel` reads both back, so
``fittorch predict model.onnx new.csv`` needs only numpy, pandas and onnxruntime.
See docs/export.md.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from .errors import ConfigError, DataError
from .preprocess import Preprocessing
from .task import has_class_labels, is_classification

METADATA_KEY = "fittorch"  # the contract, as JSON, in the ONNX file's metadata_props
MAX_MODEL_BYTES = 2 * 1024**3  # protobuf's own limit for one ONNX file
TABLE_SUFFIXES = (".csv", ".parquet", ".pq")


def import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("Running an .onnx file needs onnxruntime, which is not installed. "
                          'Install it with: pip install "fittorch[export]"') from None
    return onnxruntime


class OnnxModel:
    """An exported model on onnxruntime: ``run(X)`` -> {output name: array}, plus its contract."""

    def __init__(self, path: str | os.PathLike):
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"ONNX file {str(p)!r} does not exist (or is not a file). Write one with: "
                              "fittorch export RUN_DIR --format onnx")
        size = p.stat().st_size
        if size > MAX_MODEL_BYTES:
            raise DataError(f"{p} is {size / 1024**3:.1f} GiB; an ONNX file is at most 2 GiB.")
        ort = import_onnxruntime()
        options = ort.SessionOptions()
        options.log_severity_level = 3  # errors only
        try:
            self.session = ort.InferenceSession(str(p), options, providers=["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - onnxruntime raises its own unexported exception types
            raise DataError(f"{p} could not be loaded by onnxruntime ({type(exc).__name__}: "
                            f"{str(exc).splitlines()[0][:300]}). Is it an ONNX file? Re-export it.") from None
        self.path = p
        raw = self.session.get_modelmeta().custom_metadata_map.get(METADATA_KEY)
        if raw is None:
            raise DataError(f"{p} has no '{METADATA_KEY}' metadata: it was not written by fittorch export, so its "
                            "inputs and labels are unknown. Run it with onnxruntime directly.")
        try:
            self.contract = json.loads(raw)
        except json.JSONDecodeError as exc:
            raise DataError(f"{p}: its '{METADATA_KEY}' metadata is not valid JSON ({exc}). Re-export it.") from None
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.output_names = [o.name for o in self.session.get_outputs()]

    @property
    def task(self) -> str:
        """binary, multiclass, multilabel or regression (a file exported by fittorch 0.2 says "classification")."""
        return self.contract.get("task", "regression")

    @property
    def is_classifier(self) -> bool:
        return is_classification(self.task)

    @property
    def classes(self) -> list | None:
        return self.contract.get("classes")

    @property
    def feature_names(self) -> list[str] | None:
        return self.contract.get("feature_names")

    def run(self, X) -> dict[str, np.ndarray]:
        """Outputs for ``X``: raw features (N, ...) float32, or {input name: array} for named inputs."""
        feed = X if isinstance(X, dict) else {self.input_names[0]: X}
        feed = {k: np.ascontiguousarray(v, dtype=np.int64 if np.asarray(v).dtype.kind in "iu" else np.float32)
                for k, v in feed.items()}
        outputs = self.session.run(None, feed)
        return dict(zip(self.output_names, outputs))

    def features_of(self, df, what: str) -> np.ndarray:
        """Check ``df``'s columns against the exported feature names (the target column is ignored)."""
        if self.contract.get("vocabulary"):
            return encode_table(df, list(self.feature_names or []), self.contract["vocabulary"], what)
        if self.contract.get("fill"):  # the graph fills gaps itself: an empty cell is sent as NaN
            return numeric_table(df, list(self.feature_names or []), what)
        if not self.feature_names:
            raise DataError(f"{self.path} records no feature names; feed it arrays with onnxruntime directly.")
        columns = Preprocessing(task=self.task, feature_names=list(self.feature_names))
        target = self.contract.get("target") or "y"  # a multilabel model's are a list
        return columns.frame_to_X(df, what, allow=(target,) if isinstance(target, str) else tuple(target))

    def predict_frame(self, df, what: str, *, proba: bool = False):
        """A DataFrame with ``prediction`` (original labels or target units) and ``proba_<class>`` columns."""
        import pandas as pd

        out = self.run(self.features_of(df, what))
        if self.task == "multilabel":  # one 0/1 column per label (probabilities from a logits or a bce model)
            p = out["probabilities"] if "probabilities" in out else out["prediction"]
            names = self.classes or [str(i) for i in range(p.shape[1])]
            frame = pd.DataFrame({f"prediction_{n}": (p[:, i] >= 0.5).astype(np.int64) for i, n in enumerate(names)})
            for i, name in enumerate(names if proba else ()):
                frame[f"proba_{name}"] = p[:, i].astype(np.float64)
            return frame
        if not has_class_labels(self.task):
            return pd.DataFrame({"prediction": out["prediction"].reshape(len(df), -1)[:, 0].astype(np.float64)})
        probabilities = out["probabilities"]
        classes = self.classes or list(range(probabilities.shape[1]))
        frame = pd.DataFrame({"prediction": [classes[i] for i in probabilities.argmax(axis=1)]})
        if proba:
            for i, name in enumerate(classes):
                frame[f"proba_{name}"] = probabilities[:, i].astype(np.float64)
        return frame


def encode_table(df, numeric: list[str], vocabulary: dict, what: str) -> dict[str, np.ndarray]:
    """A table -> the graph's ``numeric`` (raw values, gaps as NaN) and ``categorical`` (codes) inputs.

    The codes follow the vocabulary JSON written beside the model: level i -> ``first_level + i``,
    an empty cell -> ``missing``, a value never seen in training -> ``unknown``.
    """
    try:
        from .tabular.columns import level_keys  # the same text keys as training used
    except ImportError:  # pragma: no cover - a build without the tabular module has no categorical runs
        raise ConfigError("This model has categorical inputs, but this fittorch build has no tabular module to "
                          "encode them. Use the fittorch version the model was exported with.") from None
    names = [c["name"] for c in vocabulary["columns"]]
    check_columns(df, numeric + names, what)
    codes = []
    for spec in vocabulary["columns"]:
        keys, missing = level_keys(df[spec["name"]])
        index = {level: vocabulary["first_level"] + i for i, level in enumerate(spec["levels"])}
        codes.append([vocabulary["missing"] if m else index.get(k, vocabulary["unknown"])
                      for k, m in zip(keys, missing)])
    return {"numeric": numeric_table(df, numeric, what),
            "categorical": np.asarray(codes, dtype=np.int64).T.reshape(len(df), len(names))}


def check_columns(df, needed: list[str], what: str) -> None:
    absent = [c for c in needed if c not in df.columns]
    if absent:
        raise DataError(f"{what} is missing column(s) {', '.join(map(repr, absent[:8]))}; the model needs: "
                        f"{', '.join(needed)} (other columns are ignored).")


def numeric_table(df, names: list[str], what: str) -> np.ndarray:
    """The named columns as float32, an empty cell as NaN (the graph fills it); text is an error."""
    import pandas as pd

    check_columns(df, names, what)
    values = []
    for name in names:
        col = pd.to_numeric(df[name], errors="coerce")
        text = col.isna() & df[name].notna()
        if text.any():
            raise DataError(f"{what}: column {name!r} should hold numbers but holds {df[name][text].iloc[0]!r}. "
                            "Fix the value, or leave the cell empty to mark it missing.")
        values.append(col.to_numpy(dtype=np.float64, na_value=np.nan))
    return (np.stack(values, axis=1) if values else np.zeros((len(df), 0))).astype(np.float32)


def read_table(path: str) -> object:
    """A CSV or Parquet file as a DataFrame (pandas only: this path must not import torch)."""
    import pandas as pd

    p = Path(path)
    if not p.is_file():
        raise DataError(f"Data file {str(p)!r} does not exist (or is not a file). Check the path "
                        f"(relative paths start at {Path.cwd()}).")
    if p.suffix.lower() not in TABLE_SUFFIXES:
        raise ConfigError(f"Predicting with an .onnx file reads {', '.join(TABLE_SUFFIXES)} files; got "
                          f"{p.suffix or '(no extension)'!r} for {str(p)!r}. Convert it to CSV or Parquet.")
    try:
        return pd.read_csv(p) if p.suffix.lower() == ".csv" else pd.read_parquet(p)
    except (ValueError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{p} could not be read as a table ({type(exc).__name__}: {exc}).") from None
