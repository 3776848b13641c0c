"""``ft.tune(...)``: the whole of ``fittorch tune`` as one Python call.

>>> import fittorch as ft
>>> result = ft.tune("examples/configs/digits_tune.yaml", trials=10)
>>> result.best_value, result.study_dir / "best.yaml"

Everything is checked before a trial runs (the search section, the data, the metric, the
storage); a rerun of the same call continues the same study (see docs/tune.md).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..config import Config, dump_yaml, load_config
from ..errors import ConfigError
from .check import check_search, logged_columns, objective, trial_config

VOLATILE = ("trials", "timeout", "seed")
SPACE_PREFIX = "search.space."  # may change between runs of one study


@dataclass
class TuneResult:
    study: object  # optuna.Study
    study_dir: Path
    exit_code: int  # 0 done, 75 interrupted (run again to resume), 1 every trial failed
    summary: dict  # the content of study.json

    @property
    def best_value(self):
        return (self.summary.get("best") or {}).get("value")

    @property
    def best_params(self) -> dict:
        return (self.summary.get("best") or {}).get("params") or {}


def tune(config: str | os.PathLike | Config, *, overrides=(), storage: str | None = None,
         trials: int | None = None, timeout: float | None = None, out: str | os.PathLike = "runs",
         name: str | None = None, log=print) -> TuneResult:
    """Run (or continue) the study that ``config``'s ``search:`` section describes.

    ``trials``/``timeout`` override ``search.trials``/``search.timeout``; ``storage`` is a journal
    file path or a database URL (default: ``OUT/NAME/study.journal``). Raises ConfigError
    (or DataError) before any trial when something is wrong.
    """
    source = str(config) if not isinstance(config, Config) else "config"
    space_sets = [o for o in overrides if o.startswith(SPACE_PREFIX)]
    others = [o for o in overrides if not o.startswith(SPACE_PREFIX)]
    cfg = config if isinstance(config, Config) else load_config(config, others)
    if space_sets:
        cfg = _set_space(cfg, space_sets, source)
    if name:
        cfg.name = name
    search = check_search(cfg, source)
    if trials is not None:
        search.trials = trials
    if timeout is not None:
        search.timeout = timeout
    if search.sampler == "grid":
        search.trials = min(search.trials or search.grid_size(), search.grid_size())
    metric, direction = _objective(cfg, search, source)
    study_dir = Path(out) / cfg.name
    _check_same_study(cfg, study_dir)
    from .storage import describe, open_storage

    if storage:
        store = open_storage(storage, study_dir)  # a bad URL fails before a folder is made
    study_dir.mkdir(parents=True, exist_ok=True)
    if not storage:
        store = open_storage(None, study_dir)
    _save_tune_config(cfg, study_dir)
    from .report import write_study_files
    from .study import Plan, open_study, run_worker

    study = open_study(store, cfg.name, direction, search, cfg.train.epochs)
    plan = Plan(cfg, search, study_dir, metric, direction, search.trials, search.timeout, log=log)
    log(f"Study {cfg.name} in {describe(storage, study_dir)}: {search.trials or 'unlimited'} trials"
        f"{f', timeout {search.timeout:g} s' if search.timeout else ''}, {metric} ({direction}), "
        f"sampler {search.sampler}, pruner {search.pruner}")
    code = run_worker(study, plan)
    summary = write_study_files(study, cfg, search, study_dir, metric=metric, direction=direction,
                                storage=describe(storage, study_dir))
    return TuneResult(study, study_dir, code, summary)


def _set_space(cfg: Config, items: list[str], source: str) -> Config:
    """``--set search.space.optimizer.lr={loguniform: [1e-4, 0.1]}``: the key after ``search.space.``
    is a dotted config path, so it is set whole (``--set`` splits other keys at the dots)."""
    import yaml

    from ..config import validate

    raw = cfg.to_dict()
    for item in items:
        key, sep, text = item[len(SPACE_PREFIX):].partition("=")
        if not sep or not key:
            raise ConfigError(f"--set {item!r}: write it as --set search.space.KEY.PATH={{choice: [1, 2]}}.")
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            raise ConfigError(f"--set {item!r}: {text!r} is not valid YAML.") from None
        raw.setdefault("search", {}).setdefault("space", {})
        if value is None:
            raw["search"]["space"].pop(key, None)  # --set search.space.KEY= removes a searched key
        else:
            raw["search"]["space"][key] = value
    return validate(raw, source=source)


def _objective(cfg: Config, search, source: str) -> tuple[str, str]:
    """Load the data once with the base config: fails on bad data, and tells which columns are logged."""
    from ..experiment import default_metrics, prepare_data

    base = trial_config(cfg, {}, name=cfg.name)
    prep, splits = prepare_data(base)
    columns = logged_columns(base, default_metrics(base, prep), splits.val is not None)
    return objective(cfg, search, columns, source)


def _comparable(raw: dict) -> dict:
    raw = dict(raw)
    raw["search"] = {k: v for k, v in (raw.get("search") or {}).items() if k not in VOLATILE}
    return raw


def _check_same_study(cfg: Config, study_dir: Path) -> None:
    import yaml

    saved = study_dir / "tune.yaml"
    if not saved.is_file():
        marks = ("trials", "study.journal", "locks")
        if study_dir.exists() and any(study_dir.iterdir()) and not any((study_dir / m).exists() for m in marks):
            raise ConfigError(f"{study_dir} exists and is not a study folder. Pick another --name or --out.")
        return
    old = _comparable(yaml.safe_load(saved.read_text()) or {})
    new = _comparable(cfg.to_dict())
    if old != new:
        key = _first_difference(old, new)
        raise ConfigError(f"{study_dir} holds a study of another config ({key} differs). Continue it with the "
                          f"same config, or start a new study with --name {cfg.name}-2.")


def _first_difference(a, b, prefix="") -> str:
    if isinstance(a, dict) and isinstance(b, dict):
        for k in list(a) + [k for k in b if k not in a]:
            if a.get(k) != b.get(k):
                return _first_difference(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
    return f"'{prefix}': {a!r} then, {b!r} now"


def _save_tune_config(cfg: Config, study_dir: Path) -> None:
    from ..safeio import atomic_write

    atomic_write(study_dir / "tune.yaml", dump_yaml(cfg))


__all__ = ["tune", "TuneResult"]
