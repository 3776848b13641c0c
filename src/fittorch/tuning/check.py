"""Check a ``search:`` section against the run config before any trial runs.

Every searched key must be a key of the config schema ("did you mean" otherwise), and every
value a range can take (its two ends, each choice) must make a valid config; the metric must
be a column the run logs. Each failure is one :class:`~fittorch.errors.ConfigError` line.
"""

from __future__ import annotations

from typing import Any

from ..config import Config, _section_type, validate
from ..errors import ConfigError, did_you_mean
from ..history import infer_mode
from .space import SearchConfig

_NOT_SEARCHABLE = ("name", "search")


def check_search(cfg: Config, source: str) -> SearchConfig:
    """The validated ``search`` section of ``cfg``; ConfigError naming the first problem."""
    search = cfg.search
    if search is None:
        raise ConfigError(f"{source} has no 'search:' section, so there is nothing to tune. Add one, e.g. "
                          "search: {space: {optimizer.lr: {loguniform: [0.0001, 0.1]}}, trials: 20} "
                          "(see docs/tune.md).")
    for key, spec in search.space.items():
        check_key(key, source)
        for value in spec.candidates():
            try:
                trial_config(cfg, {key: value}, name="check")
            except ConfigError as exc:
                why = str(exc).split(": ", 1)[-1]
                raise ConfigError(f"{source}: search.space.{key}: the value {value!r} does not make a valid "
                                  f"config ({why.rstrip('.')}). Narrow the range or fix the choice.") from None
    return search


def check_key(key: str, source: str) -> None:
    parts = key.split(".")
    if not all(parts):
        raise ConfigError(f"{source}: search.space key {key!r} is not a key path; write it like optimizer.lr.")
    if parts[0] in _NOT_SEARCHABLE:
        raise ConfigError(f"{source}: search.space.{key}: '{parts[0]}' cannot be searched; pick a key of "
                          "data, model, optimizer, scheduler, train, callbacks, seed, loss, metrics...")
    model: Any = Config
    for i, part in enumerate(parts):
        fields = model.model_fields
        if part not in fields:
            if model.model_config.get("extra") == "allow":
                return  # e.g. a scheduler's own arguments
            where = ".".join(parts[:i]) or "the top level"
            prefix = ".".join(parts[:i])
            guess = did_you_mean(part, fields).replace(" '", f" '{prefix}." if prefix else " '")
            raise ConfigError(f"{source}: search.space: unknown config key '{'.'.join(parts[:i + 1])}'."
                              f"{guess} Keys at {where}: {', '.join(fields)}.")
        sub = _section_type(fields[part].annotation)
        if i == len(parts) - 1:
            return
        if sub is None:
            if "dict" in str(fields[part].annotation):
                return  # free-form arguments: model.kwargs.width, data.params.n_samples
            raise ConfigError(f"{source}: search.space.{key}: '{'.'.join(parts[:i + 1])}' is a value, "
                              f"not a section, so it has no key '{parts[i + 1]}'.")
        model = sub


def base_dict(cfg: Config) -> dict:
    raw = cfg.to_dict()
    raw.pop("search", None)
    return raw


def set_path(raw: dict, key: str, value) -> None:
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def trial_config(cfg: Config, values: dict[str, Any], *, name: str) -> Config:
    """``cfg`` without its search section, with ``values`` set at their key paths, validated."""
    raw = base_dict(cfg)
    for key, value in values.items():
        set_path(raw, key, value)
    raw["name"] = name
    return validate(raw, source=f"search.space ({', '.join(values)})")


def logged_columns(cfg: Config, metrics: list[str], has_val: bool) -> list[str]:
    """The numeric history columns a run of ``cfg`` writes each epoch."""
    cols = ["train_loss"]
    if has_val:
        cols += ["val_loss", *(f"val_{m}" for m in metrics if m != "confusion_matrix")]
    return cols + ["lr"]


def objective(cfg: Config, search: SearchConfig, columns: list[str], source: str) -> tuple[str, str]:
    """(metric, direction): the search's, defaulting to the run's monitor and its natural direction."""
    metric = search.metric or cfg.monitor
    if metric not in columns:
        hint = " (there is no validation data: set data.val_split above 0)" if metric.startswith("val_") and \
            "val_loss" not in columns else ""
        raise ConfigError(f"{source}: search.metric {metric!r} is not a column this run logs{hint}."
                          f"{did_you_mean(metric, columns)} It logs: {', '.join(columns)}.")
    direction = search.direction or ("minimize" if infer_mode(metric) == "min" else "maximize")
    return metric, direction
