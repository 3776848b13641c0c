"""From a YAML config to the arguments of :func:`fittorch.doctor.doctor`.

This module is the doctor's only contact with the config machinery. It calls exactly:

* ``fittorch.config.load_config(path, overrides) -> Config`` (pydantic model), and
* ``fittorch.experiment.build_experiment(cfg)``, whose result is read by attribute (or key):
  ``model`` (nn.Module, initial weights), ``train`` ((X, y)), ``val`` ((X, y) or None),
  and optionally ``loss``, ``optimizer``, ``lr``, ``optimizer_kwargs``, ``batch_size``,
  ``seed``, ``device``, ``standardize``. Whatever the experiment does not provide is taken
  from the config: ``cfg.loss``, ``cfg.optimizer.{name,lr,weight_decay,kwargs}``,
  ``cfg.train.batch_size``, ``cfg.seed``, ``cfg.device``, ``cfg.data.standardize``.
"""

from __future__ import annotations

from ..errors import ConfigError

_MISSING = object()


def from_config(path, overrides=()) -> dict:
    try:
        from ..config import load_config
        from ..experiment import build_experiment
    except ImportError as exc:
        raise ConfigError(
            f"fittorch doctor CONFIG needs the config loader (fittorch.config / fittorch.experiment), which this "
            f"build does not include ({exc}). Call fittorch.doctor(model, train, val=...) from Python instead, "
            "or run 'fittorch doctor --demo' for the reference experiment."
        ) from None
    cfg = load_config(path, list(overrides or ()))
    exp = build_experiment(cfg)
    model, train = _get(exp, "model"), _get(exp, "train")
    if model is _MISSING or train is _MISSING:
        raise ConfigError(f"build_experiment() returned a {type(exp).__name__} without 'model' and 'train'; "
                          "the doctor cannot read it. This is a fittorch bug: please report it.")
    opt = getattr(cfg, "optimizer", None)
    kwargs = dict(getattr(opt, "kwargs", {}) or {})
    if getattr(opt, "weight_decay", 0):
        kwargs["weight_decay"] = opt.weight_decay
    data = getattr(cfg, "data", None)
    train_cfg = getattr(cfg, "train", None)
    args = {
        "model": model,
        "train": train,
        "val": _or(_get(exp, "val"), None),
        "loss": _or(_get(exp, "loss"), getattr(cfg, "loss", None)),
        "optimizer": _or(_get(exp, "optimizer"), getattr(opt, "name", "adam")),
        "lr": _or(_get(exp, "lr"), getattr(opt, "lr", None)),
        "optimizer_kwargs": _or(_get(exp, "optimizer_kwargs"), kwargs),
        "batch_size": _or(_get(exp, "batch_size"), getattr(train_cfg, "batch_size", 32)),
        "seed": _or(_get(exp, "seed"), getattr(cfg, "seed", 0)),
        "device": _or(_get(exp, "device"), getattr(cfg, "device", "auto")),
        "standardize": _or(_get(exp, "standardize"), getattr(data, "standardize", None)),
    }
    if args["loss"] is None:
        args["loss"] = "cross_entropy"
    return args


def _get(obj, name):
    if isinstance(obj, dict):
        return obj.get(name, _MISSING)
    return getattr(obj, name, _MISSING)


def _or(value, default):
    return default if value is _MISSING or value is None and default is not None else value
