"""The fitted state of a :class:`~fittorch.tabular.TabularPreprocessor`, as a validated schema.

This is what ``model.json`` holds under ``preprocessing.tabular`` (and what
``TabularPreprocessor.save`` writes): plain JSON, parsed back through these pydantic models
so a damaged or hand-edited file is refused with the key that is wrong. Nothing here can
run code when read. The format is documented in ``docs/data.md`` ("The saved JSON").
"""

from __future__ import annotations

import math
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from ..errors import CheckpointError

FORMAT = "fittorch.tabular/1"
UNKNOWN, MISSING, FIRST_LEVEL = 0, 1, 2  # category index layout: 0 unknown/rare, 1 missing, 2.. levels


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class NumericColumn(_Strict):
    name: str
    dtype: str = Field(description="pandas dtype at fit time, e.g. float64")
    fill: float = Field(description="value put in for a missing entry: the training median")
    mean: float = Field(description="subtracted after filling (0 without standardize)")
    scale: float = Field(description="divided by after centering (1 without standardize)")
    indicator: bool = Field(False, description="an extra 0/1 input column marks the filled entries")

    @model_validator(mode="after")
    def _finite(self):
        if not all(math.isfinite(v) for v in (self.fill, self.mean, self.scale)) or self.scale <= 0:
            raise ValueError(f"numeric column {self.name!r}: fill/mean/scale must be finite and scale > 0")
        return self


class CategoricalColumn(_Strict):
    name: str
    dtype: str = Field(description="pandas dtype at fit time, e.g. str, bool, int64, category")
    kind: Literal["text", "number", "bool"] = Field(description="what the values were at fit time")
    levels: list[str] = Field(description="known levels as text; level i has index i + 2")
    n_rare: int = Field(0, ge=0, description="levels seen fewer than min_frequency times, folded into unknown")

    @model_validator(mode="after")
    def _unique(self):
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"categorical column {self.name!r}: levels must be unique")
        return self

    @property
    def cardinality(self) -> int:
        """Number of indices: the levels plus unknown (0) and missing (1)."""
        return len(self.levels) + FIRST_LEVEL


class TabularState(_Strict):
    format: Literal["fittorch.tabular/1"] = FORMAT
    columns: list[str] = Field(description="every input column used, in the order of the training table")
    numeric: list[NumericColumn] = Field(default_factory=list)
    categorical: list[CategoricalColumn] = Field(default_factory=list)
    ignored: list[str] = Field(default_factory=list, description="other columns of the training table (names "
                                                                 "only: never read)")
    min_frequency: int = Field(1, ge=1)
    missing_indicator: bool = False
    standardize: bool = True
    n_rows: int = Field(ge=0, description="training rows the state was fitted on")

    @model_validator(mode="after")
    def _consistent(self):
        named = [c.name for c in self.numeric] + [c.name for c in self.categorical]
        if sorted(named) != sorted(self.columns) or len(set(self.columns)) != len(self.columns):
            raise ValueError("'columns' must list each numeric and categorical column exactly once")
        return self

    @property
    def n_numeric_inputs(self) -> int:
        return len(self.numeric) + sum(c.indicator for c in self.numeric)

    @property
    def cardinalities(self) -> list[int]:
        return [c.cardinality for c in self.categorical]


def parse_state(data, source: str = "the tabular preprocessing") -> TabularState:
    """A dict (read from JSON) as a :class:`TabularState`, or a CheckpointError naming the bad key."""
    if isinstance(data, TabularState):
        return data
    if not isinstance(data, dict):
        raise CheckpointError(f"{source} is a {type(data).__name__}; expected a JSON object written by "
                              "fittorch.tabular. Re-fit the preprocessing or re-save the model.")
    try:
        return TabularState.model_validate(data)
    except ValidationError as exc:
        err = exc.errors()[0]
        where = ".".join(str(p) for p in err["loc"]) or "(top level)"
        raise CheckpointError(f"{source} is not a valid fittorch.tabular state: at {where!r}: {err['msg']}. "
                              "The file is damaged or was edited by hand; re-fit and save it again.") from None
