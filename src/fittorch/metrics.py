"""Metrics by name, computed with torchmetrics.

Metric objects accumulate on the model's device during an epoch and are computed once
at its end, so no metric causes a host sync per batch. ``torchmetrics`` is imported
lazily: it is only needed once a fit with metrics starts.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .errors import ConfigError, unknown_name


@dataclass(frozen=True)
class OutputKind:
    """What the model's output means, derived from the loss and one dry forward."""

    task: str  # "multiclass" | "binary" | "regression"
    num_classes: int = 0  # for multiclass
    logits: bool = True  # binary: output is a logit (bce_with_logits) or a probability (bce)


def _build(name: str, kind: OutputKind):
    import torchmetrics.classification as C  # noqa: N812 - lazy import keeps `import fittorch` light
    import torchmetrics.regression as R  # noqa: N812

    if kind.task == "multiclass":
        table = {"accuracy": lambda: C.MulticlassAccuracy(num_classes=kind.num_classes, average="micro")}
    elif kind.task == "binary":
        table = {"accuracy": lambda: C.BinaryAccuracy()}
    else:
        table = {
            "mse": lambda: R.MeanSquaredError(),
            "mae": lambda: R.MeanAbsoluteError(),
            "r2": lambda: R.R2Score(),
        }
    all_names = {"accuracy", "mse", "mae", "r2"}
    if name not in all_names:
        raise unknown_name("metric", name, all_names, "Or pass a torchmetrics.Metric instance.")
    if name not in table:
        raise ConfigError(
            f"Metric '{name}' does not apply to a {kind.task} task. "
            f"Metrics for {kind.task}: {', '.join(sorted(table))}."
        )
    return table[name]()


class MetricSet:
    """Named metrics that share one preparation of (output, target)."""

    def __init__(self, metrics: dict, kind: OutputKind):
        self.metrics = metrics
        self.kind = kind

    @classmethod
    def build(cls, specs, kind: OutputKind, device: torch.device) -> MetricSet:
        metrics = {}
        for spec in specs or ():
            if isinstance(spec, str):
                metrics[spec.lower()] = _build(spec.lower(), kind)
            elif hasattr(spec, "update") and hasattr(spec, "compute"):
                metrics[_metric_name(spec)] = spec
            else:
                raise ConfigError(
                    f"metrics entry {spec!r} is a {type(spec).__name__}; expected a metric name "
                    "such as 'accuracy' or a torchmetrics.Metric instance."
                )
        return cls({k: m.to(device) for k, m in metrics.items()}, kind)

    def prepare(self, output: torch.Tensor, target: torch.Tensor):
        """Turn model outputs into what torchmetrics expects for this task."""
        if self.kind.task == "binary":
            output = output.reshape(target.shape) if output.numel() == target.numel() else output
            probs = torch.sigmoid(output) if self.kind.logits else output
            return probs, target.long()
        if self.kind.task == "regression" and output.shape != target.shape and output.numel() == target.numel():
            output = output.reshape(target.shape)
        return output, target

    def update(self, output: torch.Tensor, target: torch.Tensor) -> None:
        if not self.metrics:
            return
        preds, target = self.prepare(output.detach().float(), target)
        for m in self.metrics.values():
            m.update(preds, target)

    def compute(self) -> dict[str, float]:
        out = {}
        for name, m in self.metrics.items():
            value = m.compute()
            out[name] = float(value) if value.numel() == 1 else value.tolist()
        return out

    def reset(self) -> None:
        for m in self.metrics.values():
            m.reset()

    def __bool__(self) -> bool:
        return bool(self.metrics)


def _metric_name(metric) -> str:
    import re

    name = type(metric).__name__
    for prefix in ("Multiclass", "Binary", "Multilabel"):
        name = name.removeprefix(prefix)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
