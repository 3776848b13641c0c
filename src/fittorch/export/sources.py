"""What an export starts from: a run directory (or a Trainer), as a model + preprocessing + rows.

A ``fittorch fit`` run has ``config.yaml``: its held-out rows are rebuilt from the config and
seed (test split, else val, else train). A folder with only ``model.safetensors`` and
``model.json`` (``fittorch demo`` writes one) has no config: its rows come from ``--rows``, or
are drawn from the fitted mean and scale. Rows are raw features: the exported graph
standardizes them itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import CheckpointError, ConfigError
from ..preprocess import Preprocessing
from ..task import has_class_labels
from .wrap import Fold

# "tabular": the column-wise preprocessing (fills, scales, vocabularies) of runs with fittorch.tabular
KNOWN_PREPROCESSING = set(Preprocessing.__dataclass_fields__) | {"standardize", "tabular"}


@dataclass
class RunSource:
    trainer: object  # a fittorch Trainer holding the weights to export
    prep: Preprocessing
    rows: np.ndarray  # raw features, float32
    rows_from: str
    fold: Fold | None = None
    feature_names: list[str] | None = None  # the graph's input columns, in order
    codes: np.ndarray | None = None  # categorical runs: the category codes of the rows
    model_inputs: dict | None = None  # categorical runs: the rows as the model was fed them


def load_run_source(run_dir: str, *, checkpoint: str | None, rows: str | None, max_rows: int,
                    trust_code: bool = False) -> RunSource:
    p = Path(run_dir)
    if not p.is_dir():
        raise ConfigError(f"Run directory {str(p)!r} does not exist. List runs with: fittorch runs")
    if not (p / "model.safetensors").is_file():
        hint = (f"It has checkpoints: finish it with fittorch resume {p}, then export"
                if (p / "checkpoints").is_dir() else "Train it first with: fittorch fit CONFIG.yaml")
        raise CheckpointError(f"{p} has no trained weights (model.safetensors is missing; the folder holds: "
                              f"{', '.join(sorted(x.name for x in p.iterdir())) or 'nothing'}). {hint}.")
    if not (p / "model.json").is_file():
        raise CheckpointError(f"{p} has no model.json, so the model and its preprocessing cannot be rebuilt. "
                              "Export a folder written by fittorch fit or fittorch demo.")
    from ..serialization import read_metadata

    meta = read_metadata(p / "model.safetensors")
    refuse_unsupported(meta, p)
    if (p / "config.yaml").is_file():
        return _from_fit_run(p, checkpoint, rows, max_rows, trust_code)
    if checkpoint is not None:
        raise ConfigError(f"{p} has no config.yaml, so it has no checkpoints to choose from; leave out --checkpoint.")
    return _from_model_folder(p, meta, rows, max_rows)


def refuse_unsupported(meta: dict, run_dir: Path) -> None:
    """Preprocessing this version does not know (a newer encoder) is refused, never silently dropped."""
    pre = meta.get("preprocessing") or {}
    unknown = sorted(k for k, v in pre.items() if k not in KNOWN_PREPROCESSING and v)
    if unknown:
        raise ConfigError(
            f"{run_dir} uses preprocessing that this fittorch export does not know: {', '.join(unknown)} in "
            "model.json. Folding it into the graph unchecked would serve wrong predictions. Export with the "
            "fittorch version that trained the run, or serve it with fittorch predict RUN_DIR.")


def _from_fit_run(p: Path, checkpoint, rows, max_rows, trust_code) -> RunSource:
    from ..runs import load_run

    cfg, prep, trainer = load_run(p, checkpoint=checkpoint, trust_code=trust_code)
    fold, names = fold_of(prep)
    if rows is not None:
        from ..cli._data import feature_data

        X = feature_data(cfg, prep, rows)
        n = len(X["numeric"]) if isinstance(X, dict) else len(X)
        rows_from = f"first {min(n, max_rows)} of {rows}"
    else:
        from ..cli._data import held_out
        from ..errors import DataError

        d = cfg.data
        which = "test" if d.test or d.test_split else "val" if d.val or d.val_split else "train"
        try:
            _, X, _ = held_out(cfg, prep, p, which)  # the rows the run held out, through its preprocessing
        except (ConfigError, DataError) as exc:
            raise type(exc)(f"{exc} The parity check reads the run's held-out rows from its data; to check "
                            "on other rows, pass --rows FILE.") from None
        rows_from = f"the run's {which} split"
    if isinstance(X, dict):  # numeric values + category codes (a run with categorical columns)
        X = {k: v[:max_rows] for k, v in X.items()}
        return RunSource(trainer, prep, raw_rows(fold, X["numeric"]), rows_from, fold, names,
                         codes=X["categorical"], model_inputs=X)
    return RunSource(trainer, prep, raw_rows(fold, X[:max_rows]), rows_from, fold, names)


def _from_model_folder(p: Path, meta: dict, rows, max_rows) -> RunSource:
    """A model folder without a config (fittorch demo's): rebuild the model from its spec."""
    from ..serialization import load_model
    from ..trainer import Trainer

    if not meta.get("spec"):
        raise CheckpointError(f"{p} holds a custom model ({meta.get('class', '?')}) and no config.yaml to import "
                              "it from. Export it from Python: trainer.export(path, format=..., example=X).")
    model = load_model(p / "model.safetensors")
    trainer = Trainer(model, loss=meta.get("loss") or "cross_entropy", metrics=[], device="cpu", progress=False)
    trainer.load(p / "model.safetensors")
    pre = meta.get("preprocessing") or {}
    std = pre.get("standardize") or {}
    n = int(meta.get("n_features_in") or meta["spec"].get("in_features"))
    kind = (meta.get("output_kind") or {}).get("task")
    prep = Preprocessing(task=meta.get("task") or kind or "multiclass",
                         feature_names=meta.get("feature_names") or [f"x{i}" for i in range(n)],
                         mean=pre.get("mean", std.get("mean")), scale=pre.get("scale", std.get("scale")),
                         classes=meta.get("classes"), binary_output=kind == "binary",
                         target=meta.get("target"))
    if has_class_labels(prep.task) and prep.classes is None:
        prep.classes = list(range((meta.get("output_kind") or {}).get("num_classes") or 2))
    fold, names = fold_of(prep)
    if rows is not None:
        from ..data.files import read_table

        X = prep.frame_to_X(read_table(rows), rows, allow=tuple(prep.target_columns))[:max_rows]
        return RunSource(trainer, prep, raw_rows(fold, X), f"first {len(X)} of {rows}", fold, names)
    rng = np.random.default_rng(0)
    z = rng.standard_normal((max_rows, n)).astype(np.float32)
    note = "synthetic rows drawn from the fitted mean and scale; pass --rows FILE to check real rows"
    return RunSource(trainer, prep, raw_rows(fold, z), note, fold, names)


def fold_of(prep) -> tuple[Fold | None, list[str]]:
    """The numeric preprocessing to fold into the graph, and the graph's input columns in order.

    A tabular run (``prep.tabular``) fills gaps with the training median, standardizes and may add
    "was missing" flags, column by column; an older run standardizes with ``mean``/``scale``.
    """
    tab = getattr(prep, "tabular", None)
    if tab:
        cols = tab.get("numeric") or []
        fold = Fold(mean=[float(c["mean"]) for c in cols], scale=[float(c["scale"]) for c in cols],
                    fill=[float(c["fill"]) for c in cols], indicator=[bool(c.get("indicator")) for c in cols])
        return fold, [str(c["name"]) for c in cols]
    names = list(prep.feature_names or [])
    if prep.mean is None:
        return None, names
    return Fold(mean=list(prep.mean), scale=list(prep.scale)), names


VOCABULARY_FORMAT = "fittorch.vocabulary/1"
UNKNOWN_CODE, MISSING_CODE, FIRST_LEVEL_CODE = 0, 1, 2  # fittorch.tabular's index layout


def vocabulary_of(prep) -> dict | None:
    """The categorical columns' levels, for the server to map text to codes (None without categories)."""
    categorical = (getattr(prep, "tabular", None) or {}).get("categorical") or []
    if not categorical:
        return None
    return {"format": VOCABULARY_FORMAT, "unknown": UNKNOWN_CODE, "missing": MISSING_CODE,
            "first_level": FIRST_LEVEL_CODE,
            "columns": [{"name": str(c["name"]), "kind": c.get("kind", "text"), "levels": list(c["levels"])}
                        for c in categorical]}


def write_vocabulary(vocabulary: dict, model_path: Path) -> Path:
    """``model.vocab.json`` beside ``model.onnx`` / ``model.pt2``, written atomically."""
    import json

    from .writers import publish, temp_path

    final = model_path.with_suffix(".vocab.json")
    tmp = temp_path(final)
    tmp.write_text(json.dumps(vocabulary, indent=2))
    publish(tmp, final)
    return final


def raw_rows(fold: Fold | None, X_model: np.ndarray) -> np.ndarray:
    """Undo the preprocessing of model inputs: the raw features a server would receive, as float32.

    A filled gap comes back as the fill value (a valid raw value); "was missing" flags are dropped.
    """
    X = np.asarray(X_model, dtype=np.float64)
    if fold is None:
        return X.astype(np.float32)
    values = [i for i, j in enumerate(fold.layout()) if j < len(fold.mean)]
    return (X[:, values] * np.asarray(fold.scale) + np.asarray(fold.mean)).astype(np.float32)


def head_of(prep: Preprocessing) -> str:
    """The outputs of ``prep.decode``: softmax or sigmoid probabilities, or the regression value."""
    if prep.task in ("regression", "multilabel"):  # multilabel: one sigmoid probability per label
        return prep.task
    return "sigmoid" if prep.binary_output else "softmax"


def with_gaps(fold: Fold | None, raw: np.ndarray) -> np.ndarray:
    """Where the graph fills gaps, blank one entry in every 7th row so that parity checks the filling too."""
    if fold is None or fold.fill is None or not raw.size:
        return raw
    raw = raw.copy()
    rows = np.arange(0, len(raw), 7)
    raw[rows, rows % raw.shape[1]] = np.nan
    return raw


def reference(trainer, prep: Preprocessing, raw: np.ndarray, names: list[str]) -> dict[str, np.ndarray]:
    """fittorch's own predict on the raw rows: a table through the saved preprocessing, the model, decode."""
    import pandas as pd

    X = prep.frame_to_X(pd.DataFrame(raw.astype(np.float64), columns=names), "the parity rows")
    return decoded(trainer.predict(X), prep)


def decoded(output, prep: Preprocessing) -> dict[str, np.ndarray]:
    """predict's outputs as the exported graph names them: logits and probabilities, or the prediction."""
    values, proba = prep.decode(output)
    if prep.task == "regression":
        return {"prediction": np.asarray(values, dtype=np.float64)}
    return {"logits": output.numpy(), "probabilities": proba}
