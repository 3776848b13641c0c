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

KNOWN_PREPROCESSING = set(Preprocessing.__dataclass_fields__) | {"standardize"}


@dataclass
class RunSource:
    trainer: object  # a fittorch Trainer holding the weights to export
    prep: Preprocessing
    rows: np.ndarray  # raw features, float32
    rows_from: str
    cfg: object | None = None


def load_run_source(run_dir: str, *, checkpoint: str | None, rows: str | None, max_rows: int) -> RunSource:
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
        return _from_fit_run(p, checkpoint, rows, max_rows)
    if checkpoint is not None:
        raise ConfigError(f"{p} has no config.yaml, so it has no checkpoints to choose from; leave out --checkpoint.")
    return _from_model_folder(p, meta, rows, max_rows)


def refuse_unsupported(meta: dict, run_dir: Path) -> None:
    """Categorical columns (a vocabulary in the preprocessing) are not exported yet: say so."""
    pre = meta.get("preprocessing") or {}
    unknown = sorted(k for k, v in pre.items() if k not in KNOWN_PREPROCESSING and v)
    if unknown:
        raise ConfigError(
            f"{run_dir} uses preprocessing that fittorch export does not support yet: {', '.join(unknown)} "
            "(categorical columns or another encoder). Only numeric features with standardization are folded "
            "into the exported graph. Train a run on numeric columns, or encode the categories yourself "
            "before training. See docs/export.md, 'Categorical columns'.")


def _from_fit_run(p: Path, checkpoint, rows, max_rows) -> RunSource:
    from ..runs import load_run

    cfg, prep, trainer = load_run(p, checkpoint=checkpoint)
    if rows is not None:
        from ..cli._data import feature_data

        X = feature_data(cfg, prep, rows)
        return RunSource(trainer, prep, raw_rows(prep, X[:max_rows]), f"first {min(len(X), max_rows)} of {rows}", cfg)
    from ..experiment import prepare_data

    _, splits = prepare_data(cfg)  # same seed, same split as in training
    which = next(k for k in ("test", "val", "train") if getattr(splits, k) is not None)
    X = getattr(splits, which)[0][:max_rows]
    return RunSource(trainer, prep, raw_rows(prep, X), f"the run's {which} split", cfg)


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
    prep = Preprocessing(task=meta.get("task") or ("regression" if kind == "regression" else "classification"),
                         feature_names=meta.get("feature_names") or [f"x{i}" for i in range(n)],
                         mean=pre.get("mean", std.get("mean")), scale=pre.get("scale", std.get("scale")),
                         classes=meta.get("classes"), binary_output=kind == "binary",
                         target=meta.get("target"))
    if prep.task == "classification" and prep.classes is None:
        prep.classes = list(range((meta.get("output_kind") or {}).get("num_classes") or 2))
    if rows is not None:
        from ..data.files import read_table

        X = prep.frame_to_X(read_table(rows), rows, allow=(prep.target or "y",))[:max_rows]
        return RunSource(trainer, prep, raw_rows(prep, X), f"first {len(X)} of {rows}")
    rng = np.random.default_rng(0)
    z = rng.standard_normal((max_rows, n)).astype(np.float32)
    note = "synthetic rows drawn from the fitted mean and scale; pass --rows FILE to check real rows"
    return RunSource(trainer, prep, raw_rows(prep, z), note)


def raw_rows(prep: Preprocessing, X_standardized: np.ndarray) -> np.ndarray:
    """Undo the standardization: the raw features a server would receive, as float32."""
    X = np.asarray(X_standardized, dtype=np.float64)
    if prep.mean is not None:
        X = X * np.asarray(prep.scale) + np.asarray(prep.mean)
    return X.astype(np.float32)


def head_of(prep: Preprocessing) -> str:
    """The outputs of ``prep.decode``: softmax or sigmoid probabilities, or the regression value."""
    if prep.task == "regression":
        return "regression"
    return "sigmoid" if prep.binary_output else "softmax"


def reference(trainer, prep: Preprocessing, raw: np.ndarray) -> dict[str, np.ndarray]:
    """fittorch's own predict on the raw rows: the saved preprocessing, the model, decode."""
    output = trainer.predict(prep.transform(raw))
    values, proba = prep.decode(output)
    if prep.task == "regression":
        return {"prediction": np.asarray(values, dtype=np.float64)}
    return {"logits": output.numpy(), "probabilities": proba}
