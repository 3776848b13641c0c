"""Schemas of the JSON files in a run folder and a checkpoint: parsed, bounded, checked.

A run folder may come from someone else, so ``manifest.json``, ``state.json``, ``model.json``
and ``run.json`` are untrusted input: each is read with a bound (:mod:`fittorch.safeio`),
parsed as strict JSON and validated here before any value is used. Sizes, lengths and
numbers are bounded; preprocessing has one finite mean and one positive finite scale per
feature. :func:`parse_json` turns every failure into the caller's error class with one line
saying what is wrong.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from .strictjson import MAX_DEPTH, MAX_STR, loads  # noqa: F401 - MAX_DEPTH, loads: part of this API
from .task import LEGACY, TASKS, is_classification

MAX_DIM = 1 << 31  # one tensor dimension
MAX_ITEMS = 1 << 20  # features, classes, files, parameters

Name = Annotated[str, Field(max_length=MAX_STR)]
Count = Annotated[int, Field(ge=0, le=1 << 62)]
Finite = Annotated[float, Field(allow_inf_nan=False)]
Shape = Annotated[list[Annotated[int, Field(ge=0, le=MAX_DIM)]], Field(max_length=16)]
Label = str | int | bool | Finite


class _Lenient(BaseModel):  # files fittorch extends: unknown keys are kept, known ones checked
    # defer_build: a model's validator is built when it first validates, so a command pays only
    # for the files it reads (building all of them took about 30 ms of `fittorch predict`)
    model_config = ConfigDict(extra="allow", defer_build=True)


# -- checkpoint ---------------------------------------------------------------------------------
class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid", defer_build=True)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    bytes: Count


class Monitor(_Lenient):
    name: Name | None = None
    value: float | None = None
    mode: Literal["min", "max"] | None = None


class Manifest(_Lenient):
    format: Literal["fittorch-checkpoint"]
    version: int = Field(ge=0, le=1 << 16)
    epoch: Count = 0
    batch_in_epoch: Count = 0
    global_step: Count = 0
    monitor: Monitor | None = None
    files: dict[Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,99}$")], FileEntry] = Field(
        max_length=64)

    @model_validator(mode="after")
    def _names(self):
        bad = [n for n in self.files if n in (".", "..") or "/" in n]
        if bad:
            raise ValueError(f"file names must stay inside the checkpoint folder: {bad}")
        return self


class TrainStateSchema(_Lenient):
    epoch: Count
    batch_in_epoch: Count
    global_step: Count
    max_epochs: Count | None = None


class StateJson(_Lenient):
    train_state: TrainStateSchema
    optimizer: dict | None = None  # one optimizer
    optimizers: dict[Name, dict] | None = None  # several, by name
    rng: Any
    callbacks: dict | None = None
    config: dict | None = None


# -- model.json and run.json --------------------------------------------------------------------
class PreprocessingSchema(_Lenient):
    task: Literal[(*TASKS, LEGACY)]  # "classification": a model.json of fittorch 0.1/0.2, read as it trained
    feature_names: list[Name] = Field(max_length=MAX_ITEMS)
    target: Name | list[Name] | None = None  # multilabel: the label columns
    mean: list[Finite] | None = Field(None, max_length=MAX_ITEMS)
    scale: list[Annotated[float, Field(gt=0.0, allow_inf_nan=False)]] | None = Field(None, max_length=MAX_ITEMS)
    classes: list[Label] | None = Field(None, max_length=MAX_ITEMS)
    target_mean: Finite | None = None
    target_scale: Annotated[float, Field(gt=0.0, allow_inf_nan=False)] | None = None
    binary_output: bool = False

    @model_validator(mode="after")
    def _lengths(self):
        n = len(self.feature_names)
        for key in ("mean", "scale"):
            values = getattr(self, key)
            if values is not None and len(values) != n:
                raise ValueError(f"preprocessing.{key} has {len(values)} value(s) for {n} feature(s); "
                                 "it needs one per feature")
        if is_classification(self.task) and (self.classes is None or len(self.classes) < 1):
            raise ValueError(f"preprocessing.classes is missing for a {self.task} model")
        if self.classes is not None and len({str(c) for c in self.classes}) != len(self.classes):
            raise ValueError("preprocessing.classes holds duplicate labels")
        return self


class ModelJson(_Lenient):
    fittorch_version: Name | None = None
    spec: dict | None = None
    parameters: dict[Name, Shape] | None = Field(None, max_length=MAX_ITEMS)
    classes: list[Label] | None = Field(None, max_length=MAX_ITEMS)
    feature_names: list[Name] | None = Field(None, max_length=MAX_ITEMS)
    n_features_in: Count | None = None
    output_kind: dict | None = None
    preprocessing: dict | None = None  # `fittorch fit`'s is checked with PreprocessingSchema where it is used


class BestSchema(_Lenient):
    monitor: Name | None = None
    value: float | None = None
    epoch: Count | None = None


class RunJson(_Lenient):
    name: Name | None = None
    status: Name | None = None
    started: Name | None = None
    epochs: Count | None = None
    max_epochs: Count | None = None
    seconds: Finite | None = None
    pid: Count | None = None
    best: BestSchema | None = None
    test: dict[Name, float | None] | None = None
    final: dict[Name, Any] | None = None


# -- parsing ------------------------------------------------------------------------------------
def describe(exc: ValidationError, limit: int = 3) -> str:
    """The first few problems of a validation error, one line."""
    parts = []
    for err in exc.errors()[:limit]:
        loc = ".".join(str(p) for p in err["loc"]) or "(top level)"
        given = repr(err.get("input"))
        parts.append(f"{loc}: {err['msg'].removeprefix('Value error, ')} (got {given[:60]})")
    more = exc.error_count() - limit
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def parse_json(data: bytes | str, schema: type[BaseModel], *, what: str, error: type[Exception],
               hint: str = "", allow_nan: bool = False):
    """``(raw dict, validated model)`` of a JSON file's bytes, or ``error`` naming ``what`` and the problem."""
    try:
        raw = loads(data, allow_nan=allow_nan)
    except ValueError as exc:
        raise error(f"{what} is damaged (not valid JSON: {exc}). {hint}".rstrip()) from None
    if not isinstance(raw, dict):
        raise error(f"{what} is damaged: it holds a {type(raw).__name__}, not a JSON object. {hint}".rstrip())
    return raw, check(raw, schema, what=what, error=error, hint=hint)


def check(data, schema: type[BaseModel], *, what: str, error: type[Exception], hint: str = ""):
    """``schema.model_validate(data)``, or ``error`` naming ``what`` and the first problems."""
    try:
        return schema.model_validate(data)
    except ValidationError as exc:
        raise error(f"{what} is damaged or not written by fittorch: {describe(exc)}. {hint}".rstrip()) from None


def finite_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
