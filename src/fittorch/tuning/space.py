"""The ``search:`` section of a run config: what to tune, and how (a pydantic schema, no optuna).

>>> SearchConfig.model_validate({"space": {"optimizer.lr": {"loguniform": [1e-4, 1e-1]}}, "trials": 20})

Each key of ``space`` is a config key path (``optimizer.lr``, ``model.hidden``, ``train.batch_size``);
its value names one distribution:

* ``{loguniform: [low, high]}``: a float, sampled on a log scale (``low > 0``);
* ``{uniform: [low, high]}`` or ``{float: [low, high], step: s, log: false}``: a float;
* ``{int: [low, high], step: 1, log: false}``: an integer (both ends included);
* ``{choice: [a, b, ...]}``: one of the values, which may be lists or mappings (``[64]``, ``[128, 64]``).

This module only checks the shape of each entry; :mod:`fittorch.tuning.check` checks the keys and
values against the rest of the config schema.
"""

from __future__ import annotations

import json
import math
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_serializer, model_validator

from ..errors import did_you_mean

KINDS = ("loguniform", "uniform", "float", "int", "choice")
_FIELD = {"loguniform": "loguniform", "uniform": "uniform", "float": "float_range", "int": "int_range",
          "choice": "choice"}


class ParamSpec(BaseModel):
    """One searched key: exactly one of ``loguniform``, ``uniform``, ``float``, ``int``, ``choice``."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True, serialize_by_alias=True)
    loguniform: list[float] | None = Field(None, description="[low, high], low > 0: a float on a log scale")
    uniform: list[float] | None = Field(None, description="[low, high]: a float")
    float_range: list[float] | None = Field(None, alias="float", description="[low, high], optional step or log")
    int_range: list[int] | None = Field(None, alias="int", description="[low, high], optional step or log")
    choice: list[Any] | None = Field(None, description="a list of values to pick from")
    step: float | None = Field(None, gt=0, description="spacing of a float or int range")
    log: bool = Field(False, description="sample a float or int range on a log scale")

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data):
        if isinstance(data, dict):
            known = (*KINDS, "step", "log")
            for key in data:
                if key not in known:
                    raise ValueError(f"unknown entry '{key}'.{did_you_mean(str(key), known)} A searched key takes "
                                     f"one of {', '.join(KINDS)}, plus step or log for a range")
        elif data is not None:
            raise ValueError(f"expected a mapping such as {{choice: [32, 64]}} or {{loguniform: [0.0001, 0.1]}}, "
                             f"got {data!r}")
        return data

    @model_validator(mode="after")
    def _check(self):
        given = [k for k in KINDS if getattr(self, _FIELD[k]) is not None]
        if len(given) != 1:
            what = "none" if not given else " and ".join(given)
            raise ValueError(f"give exactly one of {', '.join(KINDS)} (got {what}), "
                             "e.g. {loguniform: [0.0001, 0.1]} or {choice: [32, 64]}")
        kind = given[0]
        if kind == "choice":
            if not self.choice:
                raise ValueError("choice is an empty list; give at least one value")
            if self.step is not None or self.log:
                raise ValueError("step and log go with a float or int range, not with choice")
            return self
        bounds = getattr(self, _FIELD[kind])
        if len(bounds) != 2:
            raise ValueError(f"{kind} needs [low, high], got {bounds}")
        low, high = bounds
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ValueError(f"{kind} bounds must be finite numbers, got {bounds}")
        if low > high:
            raise ValueError(f"{kind} range [{low}, {high}] is empty (low > high); swap the two bounds")
        log = self.log or kind == "loguniform"
        if log and low <= 0:
            raise ValueError(f"{kind} {bounds} on a log scale needs low > 0 (got {low}); e.g. [1e-5, {high}]")
        if kind in ("loguniform", "uniform") and self.step is not None:
            raise ValueError(f"{kind} takes no step; use {{float: [{low}, {high}], step: {self.step}}}")
        if self.step is not None and log:
            raise ValueError("step and log cannot be combined (optuna samples a log range without a grid)")
        if kind == "int" and self.step is not None and self.step != int(self.step):
            raise ValueError(f"an int range needs an integer step, got {self.step}")
        return self

    @model_serializer(mode="wrap")
    def _short(self, handler):
        """Only what was given: {loguniform: [0.0001, 0.1]}, not every empty alternative."""
        return {k: v for k, v in handler(self).items() if v is not None and not (k == "log" and v is False)}

    @property
    def kind(self) -> str:
        return next(k for k in KINDS if getattr(self, _FIELD[k]) is not None)

    def bounds(self) -> list:
        return list(getattr(self, _FIELD[self.kind]))

    def labels(self) -> list:
        """The choice values as optuna stores them: scalars as they are, lists/mappings as JSON text."""
        return [encode(v) for v in self.choice]

    def grid(self) -> list | None:
        """Every value of a choice or a stepped range (for the grid sampler); None for a continuous range."""
        kind = self.kind
        if kind == "choice":
            return self.labels()
        if kind == "int" and not self.log:
            low, high = self.int_range
            return list(range(low, high + 1, int(self.step or 1)))
        if kind == "float" and self.step is not None:
            low, high = self.float_range
            n = int(math.floor((high - low) / self.step + 1e-9))
            return [round(low + i * self.step, 12) for i in range(n + 1)]
        return None

    def candidates(self) -> list:
        """Values that stand for the whole range when checking it against the config schema:
        the ends, and for a float range a value between them (a float where an int belongs fails)."""
        if self.kind == "choice":
            return list(self.choice)
        low, high = self.bounds()
        if self.kind == "int" or self.step is not None or low == high:
            return [low, high]
        middle = math.sqrt(low * high) if (self.log or self.kind == "loguniform") else (low + high) / 2
        return [low, middle * 1.0001 if middle * 1.0001 < high else middle, high]


def encode(value):
    """A choice value as optuna can store it (None, bool, int, float, str)."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return json.dumps(value, separators=(", ", ": "))


def decode(spec: ParamSpec, stored):
    """The config value of what optuna stored for ``spec``."""
    if spec.kind == "choice" and isinstance(stored, str) and stored not in spec.choice:
        return json.loads(stored)
    if spec.kind == "int":
        return int(stored)
    return stored


class SearchConfig(BaseModel):
    """The ``search:`` section: the space, the objective, the budget, the sampler and the pruner."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
    space: dict[str, ParamSpec] = Field(description="config key path -> distribution")
    metric: str | None = Field(None, description="history column to optimize (default: the run's monitor)")
    direction: Literal["minimize", "maximize"] | None = Field(
        None, description="default: minimize for losses/errors, maximize for scores")
    trials: int | None = Field(None, ge=1, description="completed + pruned trials the study should hold")
    timeout: float | None = Field(None, gt=0, description="stop starting new trials after this many seconds")
    sampler: Literal["tpe", "random", "grid"] = Field("tpe", description="tpe, random or grid")
    pruner: Literal["median", "hyperband", "none"] = Field("median", description="median, hyperband or none")
    startup_trials: int = Field(5, ge=0, description="median pruner: trials that finish before any pruning")
    warmup_epochs: int = Field(0, ge=0, description="median pruner: epochs of each trial never pruned")
    seed: int | None = Field(None, description="sampler seed (default: random)")

    @model_validator(mode="after")
    def _check(self):
        if not self.space:
            raise ValueError("search.space is empty; name at least one key, e.g. "
                             "optimizer.lr: {loguniform: [0.0001, 0.1]}")
        if self.trials is None and self.timeout is None and self.sampler != "grid":
            raise ValueError("search needs trials or timeout (or both), e.g. trials: 20")
        if self.sampler == "grid":
            continuous = [k for k, s in self.space.items() if s.grid() is None]
            if continuous:
                raise ValueError(f"sampler grid needs choice lists or stepped ranges; {continuous[0]!r} is "
                                 f"continuous ({self.space[continuous[0]].kind}). Give it a step or a choice")
        return self

    def grid_size(self) -> int:
        size = 1
        for spec in self.space.values():
            size *= len(spec.grid() or [])
        return size
