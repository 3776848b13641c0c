"""Build everything a run needs from a :class:`~fittorch.config.Config`.

data source -> task -> label mapping -> train/val/test split -> standardization (fitted on
the training rows only) -> model -> Trainer. The preprocessing is a plain
:class:`Preprocessing` record, saved in ``model.json`` so ``evaluate``/``predict`` apply it
exactly. The only place user code is imported is :func:`import_target`, for
``model.type: import``.
"""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .config import SKLEARN_DATASETS, Config, loss_task
from .errors import ConfigError, DataError, ModelError
from .preprocess import Preprocessing, _plain, _short, numeric_matrix
from .tabular import TabularPreprocessor, n_rows
from .task import default_loss as task_default_loss
from .task import has_class_labels, task_metrics

__all__ = ["Experiment", "Preprocessing", "Splits", "build_experiment", "build_model", "build_trainer",
           "prepare_data", "numeric_matrix", "import_target"]

_CLASSIFICATION_SOURCES = {"iris", "wine", "digits", "breast_cancer", "make_classification", "make_moons"}
_MAX_INT_CLASSES = 20  # an integer target with at most this many values is taken as class labels


@dataclass
class Splits:
    train: tuple
    val: tuple | None = None
    test: tuple | None = None
    sizes: dict = field(default_factory=dict)
    rows: dict = field(default_factory=dict)  # row positions in data.source of each split (for baselines)


# ---------------------------------------------------------------------------------------
# Data


def read_frame(path: str, cfg_data, what: str):
    """(features DataFrame, target Series) of one tabular file; only the selected columns are kept.

    No feature column is inspected here: roles and values are the tabular preprocessing's job.
    A target with empty cells is refused by ``load_xy``, naming the lines.
    """
    from .data.files import load_xy

    target = cfg_data.target or ("y" if str(path).lower().endswith(".npz") else None)
    if target is None:
        from .data.files import read_table

        cols = ", ".join(map(str, read_table(path).columns))
        raise ConfigError(f"data.target is not set: name the label column of {path} (columns: {cols}).")
    if isinstance(target, list):  # multilabel: one 0/1 column per label
        X, y = label_columns(path, target)
    else:
        X, y = load_xy(path, target, check=False)
    if cfg_data.features is not None:
        missing = [c for c in cfg_data.features if c not in X.columns]
        if missing:
            from .errors import did_you_mean

            raise ConfigError(f"data.features names {missing[0]!r}, which is not a column of {path}."
                              f"{did_you_mean(missing[0], [str(c) for c in X.columns])}")
        X = X[list(cfg_data.features)]
    return X, y


def label_columns(path, targets: list[str]):
    """(features DataFrame, label DataFrame) of a multilabel file; empty label cells are refused by row."""
    from .data.files import check_target_present, read_table
    from .errors import did_you_mean

    df = read_table(path)
    for target in targets:
        if target not in df.columns:
            columns = [str(c) for c in df.columns]
            raise DataError(f"{path} has no label column {target!r} (data.target lists {targets})."
                            f"{did_you_mean(target, columns)} Columns: {_short(columns)}.")
        check_target_present(df[target], target, path)
    return df.drop(columns=targets), df[targets]


def load_sklearn(name: str, params: dict, seed: int):
    """(X ndarray, y ndarray, feature names, class names or None) of a built-in source."""
    import sklearn.datasets as D  # noqa: N812

    if name in SKLEARN_DATASETS:
        bunch = getattr(D, f"load_{name}")()
        names = [str(n) for n in getattr(bunch, "feature_names", [])] or [f"x{i}" for i in range(bunch.data.shape[1])]
        if name == "diabetes":
            return bunch.data, bunch.target, names, None
        classes = [_plain(c) for c in bunch.target_names]  # e.g. 'malignant', 'benign'
        labels = np.empty(len(bunch.target), dtype=object)
        labels[:] = [classes[i] for i in bunch.target]
        return bunch.data, labels, names, classes
    params = dict(params)
    params.setdefault("random_state", seed)
    try:
        X, y = getattr(D, name)(**params)
    except TypeError as exc:
        raise ConfigError(f"data.params for sklearn:{name}: {exc}. See scikit-learn's {name} for its arguments.") from None
    return X, y, [f"x{i}" for i in range(X.shape[1])], None


def infer_task(cfg: Config, y, sklearn_name: str | None) -> str:
    """A name of :mod:`fittorch.task`: the config's; multilabel for a list of target columns; else the
    loss's, the source's, or the target column's (text, bool, or at most 20 distinct integers: multiclass)."""
    if cfg.task:
        return cfg.task
    if isinstance(cfg.data.target, list):
        return "multilabel"
    if cfg.loss:
        return loss_task(cfg.loss)
    if sklearn_name:
        return "multiclass" if sklearn_name in _CLASSIFICATION_SOURCES else "regression"
    import pandas as pd

    s = pd.Series(np.asarray(y).ravel()) if not isinstance(y, pd.Series) else y
    if pd.api.types.is_bool_dtype(s) or not pd.api.types.is_numeric_dtype(s):
        return "multiclass"
    if pd.api.types.is_integer_dtype(s) and s.nunique() <= _MAX_INT_CLASSES:
        return "multiclass"
    return "regression"


def prepare_data(cfg: Config) -> tuple[Preprocessing, Splits]:
    """Load the source, split it, fit the preprocessing on the training rows, transform all."""
    import pandas as pd

    d = cfg.data
    extra_val = extra_test = None
    if d.source.startswith("sklearn:"):
        name = d.source.split(":", 1)[1]
        X_all, y_all, names, classes = load_sklearn(name, d.params, cfg.seed)
        X_all = pd.DataFrame(X_all, columns=names)
        if d.features is not None:
            X_all = X_all[[c for c in d.features]] if all(c in names for c in d.features) else _bad_features(d, names)
        if d.val or d.test:
            raise ConfigError("data.val / data.test files go with a file source; with sklearn: sources use "
                              "data.val_split / data.test_split.")
    else:
        name, classes = None, None
        X_all, y_all = read_frame(d.source, d, f"data.source {d.source}")
        if d.val:
            extra_val = read_frame(d.val, d, f"data.val {d.val}")
        if d.test:
            extra_test = read_frame(d.test, d, f"data.test {d.test}")
    if len(X_all) < 2:
        raise DataError(f"data.source {d.source} has {len(X_all)} row(s); training needs at least 2.")
    task = infer_task(cfg, y_all, name)
    y_np = np.asarray(y_all)
    if has_class_labels(task) and classes is None:
        pools = [y_np] + [np.asarray(e[1]) for e in (extra_val, extra_test) if e is not None]
        classes = _sorted_classes(np.concatenate(pools))
        if len(classes) < 2:
            raise DataError(f"The target {d.target or 'y'!r} has a single value ({classes[0]!r}); "
                            f"task {task} needs at least 2 classes.")
    if task == "regression":
        y_num = pd.to_numeric(pd.Series(y_np.ravel()), errors="coerce")
        if y_num.isna().any():
            raise DataError(f"task is regression, but the target {d.target or 'y'!r} holds non-numbers "
                            f"(e.g. {y_np.ravel()[y_num.isna().to_numpy()][0]!r}). Set task: multiclass, "
                            "or clean the column.")
        y_np = y_num.to_numpy(dtype=np.float64)
    if task == "binary" and len(classes) != 2:
        raise ConfigError(f"task binary (one output, loss {cfg.loss or task_default_loss(task)}) is for two "
                          f"classes, but the target has {len(classes)}: {_short(classes)}. Use task: multiclass "
                          "(loss cross_entropy).")
    if task == "multilabel":
        classes = list(d.target)  # the labels are the target columns, in order
    prep = Preprocessing(task=task, feature_names=[], target=d.target, classes=classes,
                         binary_output=task == "binary")
    if task == "multilabel":  # every label cell checked once, naming the file
        y_np = prep.encode(y_np, f"data.source {d.source}")
    strat = prep.encode(y_np, "data") if (has_class_labels(task) and d.stratify) else None
    train_idx, val_idx, test_idx = split_rows(len(X_all), strat, classes, seed=cfg.seed,
                                              val_frac=0.0 if extra_val is not None else d.val_split,
                                              test_frac=0.0 if extra_test is not None else d.test_split)
    # with data.features the other columns are already gone: an ignore entry for them is moot
    ignore = [c for c in d.ignore if d.features is None or c in X_all.columns]
    tab = TabularPreprocessor(numeric=d.numeric, categorical=d.categorical, ignore=ignore,
                              min_frequency=d.min_frequency, missing_indicator=d.missing_indicator,
                              standardize=d.standardize)
    tab.fit(X_all.iloc[train_idx], what=f"data.source {d.source}")
    prep.tabular, prep.feature_names = tab.to_dict(), list(tab.state.columns)
    if task == "regression" and d.standardize_target:
        prep.target_mean = float(y_np[train_idx].mean())
        prep.target_scale = float(y_np[train_idx].std()) or 1.0

    def part(rows):
        return (tab.transform(X_all.iloc[rows], what=f"data.source {d.source}"), prep.encode(y_np[rows], "data"))

    splits = Splits(train=part(train_idx), rows={"train": train_idx, "val": val_idx, "test": test_idx})
    if len(val_idx):
        splits.val = part(val_idx)
    if len(test_idx):
        splits.test = part(test_idx)
    for label, extra in (("val", extra_val), ("test", extra_test)):
        if extra is not None:
            pair = (prep.frame_to_X(extra[0], f"data.{label} {getattr(d, label)}"),
                    prep.encode(np.asarray(extra[1]), f"data.{label} {getattr(d, label)}"))
            setattr(splits, label, pair)
    splits.sizes = {k: (0 if v is None else n_rows(v[0])) for k, v in
                    (("train", splits.train), ("val", splits.val), ("test", splits.test))}
    return prep, splits


def split_rows(n: int, codes, classes, *, seed: int, val_frac: float, test_frac: float):
    """Sorted (train, val, test) row positions: fittorch's one split policy (:mod:`fittorch.data.split`).

    The test rows are held out first, then ``val_frac`` of all rows from the rest; both splits are
    stratified by the class ``codes`` (None: regression, or ``data.stratify: false``).
    """
    from .data.split import split_indices

    y = None if codes is None else np.asarray(codes).reshape(n, -1)[:, 0].astype(np.int64)
    idx = np.arange(n)
    test_idx = idx[:0]
    if test_frac:
        keep, hold = split_indices(n, test_frac, seed=seed, y=y, classes=classes, words=_words("test", test_frac))
        idx, test_idx = idx[keep], idx[hold]
    val_idx = idx[:0]
    if val_frac:
        keep, hold = split_indices(len(idx), val_frac / (1.0 - test_frac), seed=seed, y=None if y is None else y[idx],
                                   classes=classes, words=_words("val", val_frac))
        idx, val_idx = idx[keep], idx[hold]
    return idx, val_idx, test_idx


def _words(part: str, fraction: float) -> dict:
    """How a split refusal names the config's key (see ``fittorch.data.checks.SPLIT_WORDS``)."""
    key = f"data.{part}_split"
    return {"name": f"{key}: {fraction}", "key": key, "part": "validation" if part == "val" else "test",
            "explicit": f"a separate data.{part} file (or data.stratify: false for a plain random split)"}


def _bad_features(d, names):
    from .errors import did_you_mean

    bad = next(c for c in d.features if c not in names)
    raise ConfigError(f"data.features names {bad!r}, which is not a feature of {d.source}.{did_you_mean(bad, names)}")


def _sorted_classes(values) -> list:
    uniq = list({_plain(v) for v in values})
    try:
        return sorted(uniq)
    except TypeError:  # mixed types: order by text
        return sorted(uniq, key=str)


# ---------------------------------------------------------------------------------------
# Model and trainer


def import_target(target: str):
    """Import ``package.module:Name``: the one place fittorch imports user code (model.type: import).

    The current working directory is searched first, as ``python -m`` does, so a package in the
    folder you run ``fittorch fit`` from is found without installing it.
    """
    import os
    import sys

    module_name, _, attr = target.partition(":")
    cwd = os.getcwd()
    if cwd not in sys.path and "" not in sys.path:
        sys.path.insert(0, cwd)
        importlib.invalidate_caches()
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        top = module_name.split(".")[0]
        if getattr(exc, "name", None) in (top, module_name):
            why = (f"no module {exc.name!r} in the current folder ({cwd}) nor among the installed packages. "
                   f"Run fittorch from the folder that holds {top}/ (or {top}.py), or install it "
                   "(pip install -e . in its project)")
        else:
            why = f"importing it failed: {exc}. Fix that import in your code, or install the missing package"
        raise ConfigError(f"model.target {target!r}: cannot import module {module_name!r}: {why}.") from None
    obj = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            from .errors import did_you_mean

            names = [n for n in dir(obj) if not n.startswith("_")]
            raise ConfigError(f"model.target {target!r}: {module_name} has no attribute {part!r}."
                              f"{did_you_mean(part, names)}")
        obj = getattr(obj, part)
    return obj


def build_model(cfg: Config, n_features: int, n_outputs: int, prep: Preprocessing | None = None):
    """The run's model; with categorical columns in ``prep``, it takes ``(numeric, categorical)``."""
    from torch import nn

    from .models import MLP

    m = cfg.model
    tab = prep.columns() if prep is not None else None
    categorical = bool(tab is not None and tab.cardinalities)
    if m.type == "mlp":
        if categorical:
            return _tabular_mlp(cfg, tab, n_outputs)
        return MLP(n_features, list(m.hidden), n_outputs, activation=m.activation, dropout=m.dropout,
                   batchnorm=m.batchnorm)
    factory = import_target(m.target)
    kwargs = dict(m.kwargs)
    try:
        params = inspect.signature(factory).parameters
        takes_any = any(p.kind == p.VAR_KEYWORD for p in params.values())
    except (TypeError, ValueError):
        params, takes_any = {}, False
    given = [("in_features", n_features), ("out_features", n_outputs)]
    if categorical:
        given += [("cardinalities", tab.cardinalities), ("categorical_columns", tab.categorical_columns)]
    for key, value in given:
        if (key in params or takes_any) and key not in kwargs:
            kwargs[key] = value
    try:
        model = factory(**kwargs)
    except TypeError as exc:
        raise ConfigError(f"model.target {m.target}: calling it with {kwargs} failed: {exc}. "
                          "Fix model.kwargs.") from None
    if not isinstance(model, nn.Module):
        raise ModelError(f"model.target {m.target} returned a {type(model).__name__}; expected a torch nn.Module.")
    return model


def _tabular_mlp(cfg: Config, tab, n_outputs: int):
    from .models import TabularMLP, embedding_size

    m = cfg.model
    names = tab.categorical_columns
    unknown = [c for c in m.embedding_dims if c not in names]
    if unknown:
        from .errors import did_you_mean

        raise ConfigError(f"model.embedding_dims names {unknown[0]!r}, which is not a categorical column."
                          f"{did_you_mean(unknown[0], names)} Categorical columns: {', '.join(names)}.")
    dims = [m.embedding_dims.get(name, embedding_size(card, m.one_hot_max_levels))
            for name, card in zip(names, tab.cardinalities)]
    return TabularMLP(tab.n_numeric_inputs, tab.cardinalities, list(m.hidden), n_outputs, embedding_dims=dims,
                      column_names=names, activation=m.activation, dropout=m.dropout, batchnorm=m.batchnorm)


def build_callbacks(cfg: Config, run_dir: Path | None, has_val: bool) -> list:
    from . import callbacks as cbs

    callbacks: list = []
    es = cfg.callbacks.early_stopping
    if es is not None:
        if es.monitor.startswith("val_") and not has_val:
            raise ConfigError(f"callbacks.early_stopping.monitor is {es.monitor!r}, but there is no validation "
                              "data. Set data.val_split above 0, or monitor 'train_loss'.")
        callbacks.append(cbs.EarlyStopping(**es.model_dump()))
    if cfg.scheduler is not None:
        args = cfg.scheduler.model_dump()
        callbacks.append(cbs.LRScheduler(args.pop("name"), **args))
    if cfg.train.grad_clip:
        callbacks.append(cbs.GradientClipping(max_norm=cfg.train.grad_clip))
    if run_dir is not None:
        for logger in dict.fromkeys(cfg.loggers):
            if logger == "csv":
                callbacks.append(cbs.CSVLogger(run_dir / "metrics.csv"))
            elif logger == "tensorboard":
                callbacks.append(cbs.TensorBoardLogger(run_dir / "tensorboard"))
            elif logger == "mlflow":
                callbacks.append(cbs.MLflowLogger(run_dir))
    return callbacks


def default_loss(cfg: Config, prep: Preprocessing) -> str:
    return cfg.loss or task_default_loss(prep.task)


def default_metrics(cfg: Config, prep: Preprocessing) -> list[str]:
    if cfg.metrics is not None:
        return list(cfg.metrics)
    return task_metrics(prep.task)


def checkpoint_kwargs(cfg: Config, run_dir: Path | None, has_val: bool) -> dict:
    """The Trainer's checkpoint settings for a run folder (none without one)."""
    if run_dir is None:
        return {}
    monitor = cfg.monitor if (has_val or not cfg.monitor.startswith("val_")) else "train_loss"
    return {"checkpoint_dir": str(run_dir / "checkpoints"), "checkpoint_every_steps": cfg.train.checkpoint_every_steps,
            "keep_last": cfg.train.keep_last, "monitor": monitor}


@dataclass
class Experiment:
    config: Config
    prep: Preprocessing
    splits: Splits
    trainer: object  # fittorch.Trainer

    def fit_kwargs(self) -> dict:
        t = self.config.train
        return {"epochs": t.epochs, "batch_size": t.batch_size, "shuffle": t.shuffle, "drop_last": t.drop_last}


def build_trainer(cfg: Config, prep: Preprocessing, *, run_dir: Path | None = None, has_val: bool = True,
                  quiet: bool = False, inference: bool = False):
    """The run's Trainer; ``inference=True`` builds no optimizer (for evaluate, predict, report)."""
    from .seeding import seed_everything
    from .trainer import Trainer

    seed_everything(cfg.seed)  # the initial weights come from the seed
    model = build_model(cfg, prep.n_inputs, prep.n_outputs, prep)
    opt_kwargs = dict(cfg.optimizer.kwargs)
    if cfg.optimizer.weight_decay:
        opt_kwargs["weight_decay"] = cfg.optimizer.weight_decay
    return Trainer(model, loss=default_loss(cfg, prep), optimizer=None if inference else cfg.optimizer.name,
                   lr=cfg.optimizer.lr,
                   optimizer_kwargs=opt_kwargs, metrics=default_metrics(cfg, prep), device=cfg.device,
                   seed=cfg.seed, callbacks=build_callbacks(cfg, run_dir, has_val), precision=cfg.train.precision,
                   accumulate_steps=cfg.train.accumulate_steps, progress=not quiet, log_every=cfg.train.log_every,
                   **checkpoint_kwargs(cfg, run_dir, has_val))


def build_experiment(cfg: Config, run_dir: Path | None = None, *, quiet: bool = False) -> Experiment:
    """Data, preprocessing, model and Trainer from ``cfg``; validated before any training."""
    prep, splits = prepare_data(cfg)
    trainer = build_trainer(cfg, prep, run_dir=run_dir, has_val=splits.val is not None, quiet=quiet)
    return Experiment(cfg, prep, splits, trainer)
