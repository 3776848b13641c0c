"""The module that gets exported: the run's standardization, the model, and predict's outputs.

:class:`ServingModule` takes the raw numeric features, applies ``(x - mean) / scale`` with the
means and scales fitted on the training rows, runs the model and returns what ``predict``
gives: ``logits`` and ``probabilities`` for classification, ``prediction`` (in the target's
original units) for regression. :class:`NamedInputs` exports a model that takes several
named tensors (a dict batch) with those names as the graph's inputs.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from .._version import __version__
from ..outputs import select


@dataclass
class Contract:
    """What a served model takes and gives; written into the file's metadata as JSON."""

    task: str  # binary | multiclass | multilabel | regression (fittorch.task; 0.2 wrote classification)
    input_names: list[str]
    output_names: list[str]
    feature_names: list[str] | None = None
    classes: list | None = None
    target: str | None = None
    standardized_in_graph: bool = False
    mean: list[float] | None = None
    scale: list[float] | None = None
    fill: list[float] | None = None  # a missing value (NaN) becomes this, before standardizing
    indicator: list[bool] | None = None  # a 0/1 "was missing" input follows the column's value
    vocabulary: dict | None = None  # categorical columns: text level -> code (also in the .vocab.json beside)
    fittorch_version: str = __version__
    source: str = ""
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Fold:
    """The numeric preprocessing of one raw column each: fill a gap, standardize, maybe flag the gap.

    ``fill`` is None for runs without gap filling (a NaN then goes through, as in training);
    ``indicator[i]`` adds a 0/1 "was missing" input right after column i's value.
    """

    mean: list[float]
    scale: list[float]
    fill: list[float] | None = None
    indicator: list[bool] | None = None

    def layout(self) -> list[int]:
        """Model input column -> index into cat([values, gaps]): each value, then its gap flag."""
        n = len(self.mean)
        order: list[int] = []
        for i in range(n):
            order.append(i)
            if self.indicator and self.indicator[i]:
                order.append(n + i)
        return order


class ServingModule(nn.Module):
    """raw features -> fill gaps, standardize (the fitted :class:`Fold`) -> model -> predict's outputs."""

    def __init__(self, model: nn.Module, *, head: str, fold: Fold | None = None, target_mean=None,
                 target_scale=None, output_key=None):
        super().__init__()
        self.model = model
        self.head = head  # "softmax" | "sigmoid" | "probability" | "multilabel" | "regression" | "raw"
        self.output_key = output_key  # which tensor of a structured output predict uses
        self.standardize = fold is not None
        self.fills = fold is not None and fold.fill is not None
        self.flags = fold is not None and bool(fold.indicator) and any(fold.indicator)
        if fold is not None:
            self.register_buffer("mean", torch.as_tensor(fold.mean, dtype=torch.float32))
            self.register_buffer("scale", torch.as_tensor(fold.scale, dtype=torch.float32))
            if self.fills:
                self.register_buffer("fill", torch.as_tensor(fold.fill, dtype=torch.float32))
            if self.flags:
                self.register_buffer("order", torch.as_tensor(fold.layout(), dtype=torch.int64))
        self.target_mean = None if target_mean is None else float(target_mean)
        self.target_scale = None if target_scale is None else float(target_scale)

    def forward(self, features: torch.Tensor):
        out = select(self.model(self.numeric(features)), self.output_key)
        return outputs_of(out.float(), self.head, self.target_mean, self.target_scale)

    def numeric(self, x: torch.Tensor) -> torch.Tensor:
        if self.standardize:
            gaps = torch.isnan(x)
            if self.fills:
                x = torch.where(gaps, self.fill, x)
            x = (x - self.mean) / self.scale
            if self.flags:
                x = torch.cat([x, gaps.to(x.dtype)], dim=1).index_select(1, self.order)
        return x


class TabularServing(ServingModule):
    """Raw numeric columns + category codes (from the vocabulary JSON) -> the model's two inputs.

    The model is called as the trainer calls it with a dict batch: ``model(numeric=..., categorical=...)``.
    """

    def forward(self, numeric: torch.Tensor, categorical: torch.Tensor):
        out = select(self.model(numeric=self.numeric(numeric), categorical=categorical), self.output_key)
        return outputs_of(out.float(), self.head, self.target_mean, self.target_scale)


class NamedInputs(nn.Module):
    """A model fed a dict batch: the dict's keys become the graph's input names, in their order."""

    def __init__(self, model: nn.Module, names: list[str], *, head: str, as_kwargs: bool, output_key=None):
        super().__init__()
        self.model = model
        self.names = list(names)
        self.head = head
        self.output_key = output_key
        self.as_kwargs = as_kwargs  # model(**inputs) (the Trainer's dict convention) or model(inputs)

    def forward(self, *tensors: torch.Tensor):
        inputs = dict(zip(self.names, tensors))
        out = self.model(**inputs) if self.as_kwargs else self.model(inputs)
        return outputs_of(select(out, self.output_key).float(), self.head, None, None)


def outputs_of(out: torch.Tensor, head: str, target_mean, target_scale) -> tuple[torch.Tensor, ...]:
    if head == "softmax":
        return out, torch.softmax(out, dim=1)
    if head == "multilabel":  # one independent probability per label
        return out, torch.sigmoid(out)
    if head in ("sigmoid", "probability"):
        p1 = torch.sigmoid(out.reshape(-1)) if head == "sigmoid" else out.reshape(-1)
        return out, torch.stack([1 - p1, p1], dim=1)
    if head == "regression":  # the run's decode: column 0, back in the target's units
        value = out.reshape(out.shape[0], -1)[:, 0]
        if target_mean is not None:
            value = value * target_scale + target_mean
        return (value,)
    return (out,)


OUTPUT_NAMES = {"softmax": ["logits", "probabilities"], "sigmoid": ["logits", "probabilities"],
                "multilabel": ["logits", "probabilities"],
                "probability": ["output", "probabilities"], "regression": ["prediction"], "raw": ["prediction"]}
