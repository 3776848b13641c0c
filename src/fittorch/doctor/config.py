"""From a YAML config to the arguments of :func:`fittorch.doctor.doctor`.

This module is the doctor's only contact with the config machinery. It calls:

* ``fittorch.config.load_config(path, overrides) -> Config`` (``overrides``: ``["key.path=value", ...]``);
* ``fittorch.experiment.build_experiment(cfg, quiet=True)`` (``quiet`` only if it takes it), whose
  result is read by attribute: the model from ``exp.model`` or ``exp.trainer.model`` (at its
  initial weights: nothing has been trained), the data from ``exp.train``/``exp.val`` or
  ``exp.splits.train``/``exp.splits.val`` (``(X, y)`` pairs, already preprocessed);
* ``fittorch.experiment.default_loss(cfg, exp.prep)`` for the loss, when it exists (else ``cfg.loss``,
  else cross_entropy for integer targets and mse for float ones).

Everything else comes from the config: ``cfg.optimizer.{name,lr,weight_decay,kwargs}``,
``cfg.train.batch_size``, ``cfg.seed``, ``cfg.device``, ``cfg.data.standardize``.
"""

from __future__ import annotations

import inspect

import numpy as np

from ..errors import ConfigError

_MISSING = object()


def from_config(path, overrides=()) -> dict:
    try:
        from .. import experiment
        from ..config import load_config
    except ImportError as exc:
        raise ConfigError(
            f"fittorch doctor CONFIG needs the config loader (fittorch.config / fittorch.experiment), which this "
            f"build does not include ({exc}). Call fittorch.doctor(model, train, val=...) from Python instead, "
            "or run 'fittorch doctor --demo' for the reference experiment."
        ) from None
    cfg = load_config(path, list(overrides or ()))
    build = experiment.build_experiment
    exp = build(cfg, quiet=True) if "quiet" in inspect.signature(build).parameters else build(cfg)
    splits = _get(exp, "splits", exp)
    model = _get(exp, "model", _get(_get(exp, "trainer", None), "model", _MISSING))
    train = _get(exp, "train", _get(splits, "train", _MISSING))
    if model is _MISSING or train is _MISSING:
        raise ConfigError(f"build_experiment() returned a {type(exp).__name__} without a model and training data; "
                          "the doctor cannot read it. This is a fittorch bug: please report it.")
    val = _get(exp, "val", _get(splits, "val", None))
    opt = getattr(cfg, "optimizer", None)
    kwargs = dict(getattr(opt, "kwargs", None) or {})
    if getattr(opt, "weight_decay", 0):
        kwargs["weight_decay"] = opt.weight_decay
    return {
        "model": model,
        "train": train,
        "val": val,
        "loss": _loss(cfg, exp, experiment, train),
        "optimizer": getattr(opt, "name", "adam"),
        "lr": getattr(opt, "lr", None),
        "optimizer_kwargs": kwargs,
        "batch_size": getattr(getattr(cfg, "train", None), "batch_size", 32),
        "seed": getattr(cfg, "seed", 0),
        "device": getattr(cfg, "device", "auto"),
        "standardize": getattr(getattr(cfg, "data", None), "standardize", None),
        "labels": getattr(_get(exp, "prep", None), "classes", None),  # the class / label column names
    }


def _loss(cfg, exp, experiment, train):
    default_loss = getattr(experiment, "default_loss", None)
    if default_loss is not None and _get(exp, "prep", None) is not None:
        return default_loss(cfg, exp.prep)
    if getattr(cfg, "loss", None):
        return cfg.loss
    y = np.asarray(train[1]) if isinstance(train, tuple) else None
    return "mse" if y is not None and y.dtype.kind == "f" else "cross_entropy"


def _get(obj, name, default):
    if obj is None:
        return default
    if isinstance(obj, dict):
        return obj.get(name, default)
    return getattr(obj, name, default)
