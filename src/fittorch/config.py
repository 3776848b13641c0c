"""The run config: a YAML file, read with ``yaml.safe_load`` and checked by a pydantic schema.

Every section and key, with its default, is documented in ``docs/config.md``. Errors are
one line for people: an unknown key gets "did you mean", a wrong type names the key and the
type expected. ``--set key.path=value`` overrides any key and goes through the same checks.

>>> cfg = load_config("examples/configs/digits.yaml", overrides=["train.epochs=5"])
>>> cfg.train.epochs
5
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import ConfigError, did_you_mean
from . import safeio
from .safeio import atomic_write
from .task import (LEGACY, LOSS_ALIASES, LOSS_TASKS, TASKS, LegacyTaskWarning, default_loss, loss_task,
                   task_guess, upgrade_task)
from .tuning.space import SearchConfig

Task = Literal[TASKS]  # fittorch.task's one vocabulary; the legacy "classification" is read too
SKLEARN_DATASETS = ("iris", "wine", "digits", "breast_cancer", "diabetes")
SKLEARN_GENERATORS = ("make_classification", "make_regression", "make_moons")
MAX_WIDTH = 1 << 20  # one hidden layer's width


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, str_max_length=4096)


class DataConfig(_Section):
    source: str = Field(description="sklearn:NAME, sklearn:make_* or a .csv/.parquet/.npz path")
    target: str | list[str] | None = Field(None, description="label column of a tabular file ('y' for .npz); "
                                                              "task multilabel: the list of 0/1 label columns")
    features: list[str] | None = Field(None, description="use only these columns (default: all but target)")
    params: dict[str, Any] = Field(default_factory=dict, description="arguments of a sklearn:make_* generator")
    val: str | None = Field(None, description="a separate validation file (instead of val_split)")
    val_split: float = Field(0.2, ge=0.0, lt=1.0, description="fraction of all rows held out for validation")
    test: str | None = Field(None, description="a separate test file (instead of test_split)")
    test_split: float = Field(0.0, ge=0.0, lt=1.0, description="fraction of all rows held out for the final test")
    standardize: bool = Field(True, description="scale features with mean/std fitted on the training rows only")
    standardize_target: bool = Field(True, description="regression: scale the target too; predictions are "
                                                       "scaled back to the original units")
    stratify: bool = Field(True, description="keep class proportions in the splits (classification)")
    numeric: list[str] | None = Field(None, description="columns read as numbers (default: auto-detected)")
    categorical: list[str] | None = Field(None, description="columns read as categories besides text/bool ones, "
                                                            "e.g. integer codes")
    ignore: list[str] = Field(default_factory=list, description="columns never used nor looked at")
    min_frequency: int = Field(1, ge=1, description="category levels seen fewer times in training fold into "
                                                    "the unknown level")
    missing_indicator: bool = Field(False, description="add a 0/1 input per numeric column that had gaps")

    @field_validator("target")
    @classmethod
    def _targets(cls, value):
        if isinstance(value, list) and (len(value) < 2 or len(set(value)) < len(value)):
            raise ValueError(f"data.target lists {value}; several target columns (task multilabel) need at least 2 "
                             "distinct names. For one column write target: NAME")
        return value

    def target_columns(self) -> list[str]:
        """The target column(s): one for binary/multiclass/regression, the label columns for multilabel."""
        return [] if self.target is None else [self.target] if isinstance(self.target, str) else list(self.target)

    @model_validator(mode="after")
    def _check(self):
        both = sorted(set(self.numeric or ()) & set(self.categorical or ()))
        if both:
            raise ValueError(f"data.numeric and data.categorical both list {both}; put each column in one")
        outside = [c for c in (*(self.numeric or ()), *(self.categorical or ())) if self.features is not None
                   and c not in self.features]
        if outside:
            raise ValueError(f"data.numeric/data.categorical name {outside[0]!r}, which is not in data.features; "
                             "add it there or remove it")
        inputs = {*(self.numeric or ()), *(self.categorical or ()), *(self.features or ())}
        for target in self.target_columns():
            if target in inputs:
                raise ValueError(f"data.target {target!r} is also listed as an input column; remove it there")
        if self.val_split + self.test_split >= 1.0:
            raise ValueError(f"data.val_split ({self.val_split}) + data.test_split ({self.test_split}) leaves no "
                             "training rows; their sum must be below 1")
        if self.source.startswith("sklearn:"):
            if isinstance(self.target, list):
                raise ValueError(f"data.target lists label columns, but {self.source} has its own single target; "
                                 "several 0/1 label columns (task multilabel) come from a .csv/.parquet file")
            name = self.source.split(":", 1)[1]
            known = SKLEARN_DATASETS + SKLEARN_GENERATORS
            if name not in known:
                raise ValueError(f"data.source: unknown scikit-learn dataset '{name}'.{did_you_mean(name, known)} "
                                 f"Expected sklearn: + one of {', '.join(known)}")
            if self.params and name not in SKLEARN_GENERATORS:
                raise ValueError(f"data.params is only for the sklearn:make_* generators, not '{self.source}'")
        return self


class ModelConfig(_Section):
    type: Literal["mlp", "import"] = Field("mlp", description="'mlp' (built in) or 'import' (your own code)")
    hidden: list[int] = Field(default_factory=lambda: [64], max_length=64, description="mlp: hidden layer widths")
    activation: str = Field("relu", description="mlp: relu, gelu, tanh, sigmoid, leaky_relu, elu, silu")
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="mlp: dropout after each hidden layer")
    batchnorm: bool = Field(False, description="mlp: BatchNorm1d after each hidden Linear")
    target: str | None = Field(None, description="import: 'package.module:ClassOrFactory'")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="import: keyword arguments for the target")
    one_hot_max_levels: int = Field(10, ge=0, description="mlp: categorical columns with at most this many "
                                                          "levels (+ unknown, missing) are one-hot, larger ones "
                                                          "embedded")
    embedding_dims: dict[str, int] = Field(default_factory=dict, description="mlp: embedding width per "
                                                                             "categorical column (0: one-hot)")

    @field_validator("activation")
    @classmethod
    def _activation(cls, value: str) -> str:
        from .models import ACTIVATIONS

        return _known("activation", value, ACTIVATIONS)

    @model_validator(mode="after")
    def _check(self):
        if self.type == "import" and not self.target:
            raise ValueError("model.target is required with model.type: import, e.g. target: 'mypkg.models:Net'")
        if self.type == "import" and ":" not in self.target:
            raise ValueError(f"model.target '{self.target}' must look like 'package.module:ClassOrFactory'")
        if self.type == "mlp" and self.target:
            raise ValueError("model.target is only used with model.type: import (this model is type: mlp)")
        if any(d < 0 for d in self.embedding_dims.values()):
            raise ValueError(f"model.embedding_dims {self.embedding_dims}: widths must be >= 0 (0 means one-hot)")
        if any(h < 1 or h > MAX_WIDTH for h in self.hidden):
            raise ValueError(f"model.hidden {self.hidden}: every width must be between 1 and {MAX_WIDTH}")
        return self


class OptimizerConfig(_Section):
    name: str = Field("adam", description="sgd, adam, adamw, rmsprop, adagrad")
    lr: float = Field(0.001, gt=0.0, allow_inf_nan=False, description="learning rate")
    weight_decay: float = Field(0.0, ge=0.0, allow_inf_nan=False, description="L2 penalty / decoupled decay (adamw)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="other optimizer arguments, e.g. momentum")

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        from .optim import OPTIMIZERS

        return _known("optimizer", value.lower(), OPTIMIZERS)


class SchedulerConfig(BaseModel):
    """``name`` plus the scheduler's own arguments, passed through as given."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(description="step, multistep, cosine, onecycle, reduce_on_plateau")


class TrainConfig(_Section):
    epochs: int = Field(100, ge=1, description="total epochs (resume continues up to this)")
    batch_size: int = Field(32, ge=1, description="training batch size")
    shuffle: bool = Field(True, description="reshuffle the training rows each epoch")
    drop_last: bool = Field(False, description="drop a last incomplete batch")
    accumulate_steps: int = Field(1, ge=1, description="micro-batches per optimizer step")
    checkpoint_every_steps: int = Field(0, ge=0, description="also checkpoint every N steps (0: epoch ends only)")
    keep_last: int = Field(2, ge=1, description="how many recent checkpoints to keep (plus the best)")
    grad_clip: float | None = Field(None, gt=0.0, allow_inf_nan=False,
                                    description="clip the gradient norm to this value")
    precision: Literal["fp32", "bf16", "fp16"] = Field("fp32", description="fp32, bf16 or fp16 (CUDA)")
    log_every: int = Field(10, ge=0, description="print a log line every N epochs (0: none)")


class EarlyStoppingConfig(_Section):
    monitor: str = Field("val_loss", description="history column to watch")
    patience: int = Field(10, ge=1, description="epochs without improvement before stopping")
    min_delta: float = Field(0.0, ge=0.0, allow_inf_nan=False, description="smallest change that counts as improvement")
    mode: Literal["min", "max"] | None = Field(None, description="inferred from the name when omitted")
    restore_best: bool = Field(True, description="restore the best weights when training stops")


class CallbacksConfig(_Section):
    early_stopping: EarlyStoppingConfig | None = Field(None, description="stop when the monitor stops improving")


class Config(_Section):
    name: str | None = Field(None, max_length=100, description="run name (default: the config file's name)")
    seed: int = Field(0, ge=0, lt=2**32, description="seeds the splits, the initial weights and the data order")
    data: DataConfig
    model: ModelConfig = Field(default_factory=ModelConfig)
    task: Task | None = Field(None, description="binary, multiclass, multilabel or regression; inferred from the "
                                                "loss, the source or the target when omitted")
    loss: str | None = Field(None, description="default: bce_with_logits (binary), cross_entropy (multiclass), "
                                               "mse (regression)")
    optimizer: OptimizerConfig = Field(default_factory=OptimizerConfig)
    scheduler: SchedulerConfig | None = Field(None, description="an LR schedule, or null")
    train: TrainConfig = Field(default_factory=TrainConfig)
    callbacks: CallbacksConfig = Field(default_factory=CallbacksConfig)
    metrics: list[str] | None = Field(None, description="default: [accuracy] or [r2]")
    monitor: str = Field("val_loss", description="metric that picks the best checkpoint")
    device: str = Field("auto", description="auto, cpu, cuda, cuda:N, mps")
    loggers: list[Literal["csv", "tensorboard", "mlflow"]] = Field(default_factory=lambda: ["csv"],
                                                                  description="csv, tensorboard, mlflow")
    search: SearchConfig | None = Field(None, description="what `fittorch tune` searches (fit ignores it); "
                                                          "see docs/tune.md")

    @field_validator("loss")
    @classmethod
    def _loss(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return LOSS_ALIASES.get(value.lower()) or _known("loss", value.lower(), LOSS_TASKS)

    @model_validator(mode="before")
    @classmethod
    def _legacy_task(cls, raw):
        return upgrade_config(raw)

    @model_validator(mode="after")
    def _task_and_loss(self):
        several = isinstance(self.data.target, list)
        if self.task == "multilabel" and not several:
            raise ValueError("task multilabel trains several 0/1 label columns: list them as data.target: [a, b, c] "
                             f"(a file source; data.target is {self.data.target!r})")
        if several and self.task not in (None, "multilabel"):
            raise ValueError(f"data.target lists {len(self.data.target)} columns, which is task multilabel (one 0/1 "
                             f"column per label); task {self.task} trains one column. Write task: multilabel (or "
                             "leave task out), or name one target column")
        if self.model.type == "mlp" and self.loss in _NEEDS_PROBABILITIES:
            stable, last = _NEEDS_PROBABILITIES[self.loss]
            raise ValueError(f"loss {self.loss} takes {last} outputs, but model type mlp outputs raw scores (logits). "
                             f"Use loss: {stable} (the same loss on logits, computed stably), or model.type: import "
                             f"with a model that ends in {last}")
        task = self.task or ("multilabel" if several else None)
        implied = loss_task(self.loss)
        if implied == "binary" and task == "multilabel":
            implied = "multilabel"  # bce on several 0/1 columns
        if task is not None and implied is not None and implied != task:
            why = " (data.target lists several 0/1 columns)" if several else ""
            other = "name one target column" if several else f"task: {implied}"
            raise ValueError(f"task {task!r}{why} does not go with loss {self.loss!r}, a {implied} loss. Use "
                             f"loss: {default_loss(task)} (or leave loss out) for task: {task}, or {other} for "
                             "this loss")
        return self

    def to_dict(self) -> dict:
        d = self.model_dump(mode="json")
        if d.get("search") is None:  # only a tune config has one; saved run configs stay as they were
            d.pop("search", None)
        return d


def upgrade_config(raw):
    """A raw config dict with ``task: classification`` (fittorch 0.1/0.2) read as what it trained: binary
    with a bce loss (one output), else multiclass (one output per class). :func:`validate` says so once."""
    if isinstance(raw, dict) and isinstance(raw.get("task"), str):
        task = raw["task"].strip().lower()
        raw = {**raw, "task": upgrade_task(task, binary=loss_task(raw.get("loss")) == "binary")}
    return raw


_NEEDS_PROBABILITIES = {"bce": ("bce_with_logits", "sigmoid"), "nll": ("cross_entropy", "log_softmax")}


def _known(kind: str, value: str, choices) -> str:
    if value not in choices:
        raise ValueError(f"unknown {kind} '{value}'.{did_you_mean(value, choices)} "
                         f"Expected one of: {', '.join(sorted(choices))}")
    return value


# ---------------------------------------------------------------------------------------
# Reading, overriding, writing


def load_config(path: str | os.PathLike, overrides: list[str] | tuple = (), *, root: str | os.PathLike | None = "/"
                ) -> Config:
    """Read ``path`` (YAML), apply ``key.path=value`` overrides, validate. Raises ConfigError.

    ``root``: a symlink at ``path`` is followed only to a file inside it (a run folder's own
    config: ``root=run_dir``); the default follows links anywhere, for a config you pass yourself.
    """
    raw = read_yaml(path, root=root)
    _resolve_paths(raw, Path(path).resolve().parent)  # paths in the file: relative to the file
    for item in overrides:
        apply_override(raw, item)
    _resolve_paths(raw, Path.cwd())  # paths given with --set: relative to where you are
    if raw.get("name") is None:
        raw["name"] = Path(path).stem
    return validate(raw, source=str(path))


def _resolve_paths(raw: dict, base: Path) -> None:
    """Make data file paths absolute, so a run's config.yaml works from any folder (resume)."""
    data = raw.get("data")
    if not isinstance(data, dict):
        return
    for key in ("source", "val", "test"):
        value = data.get(key)
        if isinstance(value, str) and value and not value.startswith("sklearn:") and not Path(value).is_absolute():
            data[key] = str((base / Path(value).expanduser()).resolve())


def _no_alias_loader():
    import yaml

    class NoAliasLoader(yaml.SafeLoader):
        """``yaml.SafeLoader`` that refuses aliases (``*name``): a tiny file cannot expand to gigabytes."""

        def compose_node(self, parent, index):
            if self.check_event(yaml.events.AliasEvent):
                event = self.peek_event()
                raise yaml.composer.ComposerError(None, None, f"a YAML alias (*{event.anchor}) is not allowed in a "
                                                  "fittorch config; write the value out", event.start_mark)
            return super().compose_node(parent, index)

    return NoAliasLoader


def safe_yaml(text: str, what: str):
    """Parse YAML text with the no-alias safe loader; a syntax error is a ConfigError naming the place."""
    import yaml

    try:
        return yaml.load(text, Loader=_no_alias_loader())  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{what} is not valid YAML{where}: {problem}. Check the indentation and quotes "
                          "there.") from None
    except RecursionError:
        raise ConfigError(f"{what} is nested too deeply to be a fittorch config.") from None


def read_yaml(path: str | os.PathLike, *, root: str | os.PathLike | None = "/") -> dict:
    """A config file as a dict: a regular UTF-8 file of at most 1 MiB, YAML without aliases or tags."""
    p = Path(path)
    try:
        text = safeio.read_text(p, max_bytes=safeio.MAX_CONFIG, root=root, what="config file")
    except FileNotFoundError:
        raise ConfigError(f"Config file {str(p)!r} does not exist. Pass the path of a YAML file, "
                          "e.g. examples/configs/digits.yaml.") from None
    except safeio.UnsafeFile as exc:
        raise ConfigError(str(exc)) from None
    raw = safe_yaml(text, str(p))
    if raw is None:
        raise ConfigError(f"{p} is empty. A config needs at least 'data: {{source: ...}}'.")
    if not isinstance(raw, dict):
        raise ConfigError(f"{p} holds a {type(raw).__name__}, not a mapping of keys. Start with 'data:'.")
    return raw


def apply_override(raw: dict, item: str) -> None:
    """Apply one ``--set key.path=value`` to the raw dict; the value is parsed as YAML."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r} has no '='. Write it as --set key.path=value, e.g. --set train.epochs=20.")
    key, _, text = item.partition("=")
    parts = [p for p in key.strip().split(".")]
    if not all(parts):
        raise ConfigError(f"--set {item!r}: {key!r} is not a key path. Write it like train.epochs or optimizer.lr.")
    try:
        value = safe_yaml(text, f"--set {item!r}") if text.strip() else None
    except ConfigError:
        value = text
    _check_path(parts, item)
    node = raw
    for part in parts[:-1]:
        if not isinstance(node.get(part), dict):
            node[part] = {}
        node = node[part]
    node[parts[-1]] = value


def _check_path(parts: list[str], item: str) -> None:
    """An override of an unknown key fails here, with a suggestion."""
    model: type[BaseModel] | None = Config
    for i, part in enumerate(parts):
        if model is None or model.model_config.get("extra") == "allow" and part not in model.model_fields:
            return
        if part not in model.model_fields:
            where = ".".join(parts[:i]) or "the config"
            raise ConfigError(f"--set {item!r}: unknown key '{'.'.join(parts[:i + 1])}'."
                              f"{did_you_mean(part, model.model_fields)} Keys of {where}: "
                              f"{', '.join(model.model_fields)}.")
        model = _section_type(model.model_fields[part].annotation)


def _section_type(annotation) -> type[BaseModel] | None:
    import typing

    for arg in (annotation, *typing.get_args(annotation)):
        if isinstance(arg, type) and issubclass(arg, BaseModel):
            return arg
    return None


def validate(raw: dict, source: str = "config") -> Config:
    """The checked config, or one ConfigError listing every problem pydantic found (one per line)."""
    if isinstance(raw, dict) and isinstance(raw.get("task"), str) and raw["task"].strip().lower() == LEGACY:
        new = upgrade_task(LEGACY, binary=loss_task(raw.get("loss")) == "binary")
        model = f"one output, loss {raw.get('loss')}" if new == "binary" else "one output per class"
        warnings.warn(f"{source}: task 'classification' is the old name; it is read as task: {new}, the same "
                      f"model as before ({model}). Write task: {new} (tasks: {', '.join(TASKS)}).",
                      LegacyTaskWarning, stacklevel=2)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = list(dict.fromkeys(_one_error(err, source) for err in exc.errors()))
        if len(problems) == 1:
            raise ConfigError(problems[0]) from None
        lines = [f"  - {p.removeprefix(source + ': ')}" for p in problems[:20]]
        more = [f"  ... and {len(problems) - 20} more"] if len(problems) > 20 else []
        raise ConfigError(f"{source}: {len(problems)} problems:\n" + "\n".join(lines + more)) from None


_TYPE_WORDS = {"int": "an integer", "float": "a number", "bool": "true or false", "string": "a string",
               "list": "a list", "dict": "a mapping (key: value)", "model": "a mapping (key: value)",
               "model_attributes": "a mapping (key: value)"}


def _one_error(err: dict, source: str) -> str:
    # pydantic puts union members into loc (e.g. 'EarlyStoppingConfig', 'literal[...]'); drop
    # them so the key path is the one the user wrote.
    loc = [f"[{p}]" if isinstance(p, int) else str(p) for p in err["loc"]
           if not (isinstance(p, str) and (p.endswith("Config") or p.startswith(("literal[", "function-"))
                                            or p in ("int", "float", "str", "bool", "list", "dict")))]
    key = ".".join(loc).replace(".[", "[") or "(top level)"
    etype, given = err["type"], err.get("input")
    if etype == "extra_forbidden":
        parent, name = loc[:-1], loc[-1]
        fields = _fields_at(parent)
        where = ".".join(parent) or "the top level"
        return (f"{source}: unknown key '{key}'.{did_you_mean(name, fields)} "
                f"Valid keys at {where}: {', '.join(fields)}.")
    if etype == "missing":
        return f"{source}: '{key}' is required but missing. See docs/config.md for the schema."
    if etype == "value_error":
        msg = str(err["msg"]).removeprefix("Value error, ")
        return f"{source}: {msg}." if msg.startswith(("data.", "model.")) or not loc else f"{source}: '{key}': {msg}."
    if etype == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        guess = task_guess(str(given)) if key == "task" else did_you_mean(str(given), _literal_choices(expected))
        return f"{source}: '{key}' is {given!r}; expected one of {expected}.{guess}"
    kind = etype.rsplit("_", 1)[0] if etype.endswith(("_parsing", "_type")) else etype.removesuffix("_from_float")
    if kind in _TYPE_WORDS:
        return f"{source}: '{key}' must be {_TYPE_WORDS[kind]}, but it is {given!r} ({type(given).__name__})."
    if etype in ("greater_than", "greater_than_equal", "less_than", "less_than_equal"):
        return f"{source}: '{key}' is {given!r}; {err['msg'].replace('Input should be', 'it must be')}."
    return f"{source}: '{key}': {err['msg']} (got {given!r})."


def _literal_choices(expected: str) -> list[str]:
    return [c.strip().strip("'\"") for c in expected.replace(" or ", ",").split(",") if c.strip()]


def _fields_at(path: list[str]) -> list[str]:
    model: type[BaseModel] | None = Config
    for part in path:
        if model is None or part not in model.model_fields:
            return []
        model = _section_type(model.model_fields[part].annotation)
    return list(model.model_fields) if model else []


def dump_yaml(cfg: Config) -> str:
    import yaml

    return yaml.safe_dump(cfg.to_dict(), sort_keys=False, default_flow_style=None)


def save_config(cfg: Config, path: str | os.PathLike) -> None:
    atomic_write(path, dump_yaml(cfg))
