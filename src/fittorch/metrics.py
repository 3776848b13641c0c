"""Metrics by name, computed with torchmetrics (the defaults with ``fittorch.fast_metrics``).

Metric objects accumulate on the model's device during an epoch and are computed once
at its end, so no metric causes a host sync per batch. ``torchmetrics`` is imported
lazily, and only for a metric other than the defaults (accuracy, mse, rmse, mae, r2), which
``fittorch.fast_metrics`` computes with torchmetrics' exact arithmetic at no import cost.

Names (the history calls them ``val_<name>``):

- classification: ``accuracy``, ``balanced_accuracy``, ``precision``, ``recall``, ``f1``
  (each of the last three also as ``<name>_macro``, ``<name>_micro``, ``<name>_weighted``),
  ``auroc``, ``log_loss``, ``confusion_matrix``;
- regression: ``mse``, ``rmse``, ``mae``, ``r2``, ``mape``.

- multilabel (``[N, C]`` 0/1 targets): ``subset_accuracy`` (every label of a sample right:
  scikit-learn's ``accuracy_score`` on indicator arrays; plain ``accuracy`` means this too),
  ``hamming_loss`` (the fraction of wrong labels: ``hamming_loss``), ``hamming_accuracy``
  (1 - hamming_loss), ``precision``/``recall``/``f1`` with ``_micro``/``_macro``/``_weighted``
  (plain: macro), ``auroc`` (macro).

Plain ``precision``/``recall``/``f1`` follow scikit-learn's defaults: the positive class
for a binary task, and the macro average for a multiclass one. Probability / one-hot
targets (soft labels) count as the class of their largest entry.
"""

from __future__ import annotations

import torch

from . import fast_metrics
from .errors import ConfigError, unknown_name
from .outputs import select
from .task import OutputKind

__all__ = ["MetricSet", "OutputKind", "scalars"]


AVERAGED = ("precision", "recall", "f1")
AVERAGES = ("macro", "micro", "weighted")
CLASSIFICATION = ("accuracy", "balanced_accuracy", *AVERAGED,
                  *(f"{m}_{a}" for m in AVERAGED for a in AVERAGES), "auroc", "log_loss", "confusion_matrix")
REGRESSION = ("mse", "rmse", "mae", "r2", "mape")
MULTILABEL = ("accuracy", "subset_accuracy", "hamming_loss", "hamming_accuracy", *AVERAGED,
              *(f"{m}_{a}" for m in AVERAGED for a in AVERAGES), "auroc")
ALL_NAMES = frozenset(CLASSIFICATION + REGRESSION + MULTILABEL)


def _log_loss_metric():
    """Mean cross-entropy of predicted probabilities (scikit-learn's ``log_loss``)."""
    from torchmetrics import Metric

    class LogLoss(Metric):
        full_state_update = False
        is_differentiable = False
        higher_is_better = False

        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.add_state("total", default=torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state("count", default=torch.tensor(0, dtype=torch.long), dist_reduce_fx="sum")

        def update(self, probs: torch.Tensor, target: torch.Tensor) -> None:
            probs = probs.double()
            eps = torch.finfo(probs.dtype).eps
            if probs.ndim == 1:  # binary: probability of the positive class
                probs = torch.stack([1 - probs, probs], dim=-1)
            probs = probs / probs.sum(dim=-1, keepdim=True)
            p = probs.gather(-1, target.long().reshape(-1, 1)).squeeze(-1).clamp(eps, 1 - eps)
            self.total += -torch.log(p).sum()
            self.count += target.numel()

        def compute(self) -> torch.Tensor:
            return self.total / self.count

    return LogLoss()


def _build(name: str, kind: OutputKind):
    """A ``(metric, input)`` pair; ``input`` is ``"probs"`` or ``"labels"`` (hard predictions)."""
    fast = fast_metrics.build(name, kind)
    if fast is not None:
        return fast
    import torchmetrics.classification as C  # noqa: N812 - lazy import keeps `import fittorch` light
    import torchmetrics.regression as R  # noqa: N812

    if name not in ALL_NAMES:
        raise unknown_name("metric", name, ALL_NAMES, "Or pass a torchmetrics.Metric instance.")
    if kind.task == "regression":
        table = {
            "mse": lambda: R.MeanSquaredError(),
            "rmse": lambda: R.MeanSquaredError(squared=False),
            "mae": lambda: R.MeanAbsoluteError(),
            "r2": lambda: R.R2Score(),
            "mape": lambda: R.MeanAbsolutePercentageError(),
        }
        if name not in table:
            raise ConfigError(f"Metric '{name}' does not apply to a regression task. "
                              f"Metrics for regression: {', '.join(REGRESSION)}.")
        return table[name](), "probs"
    if kind.task == "multilabel":
        return _multilabel(name, kind.num_classes)
    if name in REGRESSION or name not in CLASSIFICATION:  # e.g. subset_accuracy: multilabel only
        raise ConfigError(f"Metric '{name}' does not apply to a {kind.task} task. "
                          f"Metrics for {kind.task}: {', '.join(CLASSIFICATION)}.")
    base, _, average = name.partition("_") if name.split("_")[-1] in AVERAGES else (name, "", "")
    if name == "log_loss":
        return _log_loss_metric(), "probs"
    if kind.task == "binary":
        if average:  # averaged over both classes, as scikit-learn's average="macro" etc. on 0/1 labels
            cls = {"precision": C.MulticlassPrecision, "recall": C.MulticlassRecall, "f1": C.MulticlassF1Score}[base]
            return cls(num_classes=2, average=average, validate_args=False), "labels"
        table = {
            "accuracy": (C.BinaryAccuracy, "probs"),
            "balanced_accuracy": (lambda **kw: C.MulticlassRecall(num_classes=2, average="macro", **kw), "labels"),
            "precision": (C.BinaryPrecision, "probs"),
            "recall": (C.BinaryRecall, "probs"),
            "f1": (C.BinaryF1Score, "probs"),
            "auroc": (C.BinaryAUROC, "probs"),
            "confusion_matrix": (C.BinaryConfusionMatrix, "probs"),
        }
        factory, inp = table[name]
        return factory(validate_args=False), inp
    n = kind.num_classes
    if average:
        cls = {"precision": C.MulticlassPrecision, "recall": C.MulticlassRecall, "f1": C.MulticlassF1Score}[base]
        return cls(num_classes=n, average=average, validate_args=False), "probs"
    table = {
        "accuracy": lambda **kw: C.MulticlassAccuracy(num_classes=n, average="micro", **kw),
        "balanced_accuracy": lambda **kw: C.MulticlassRecall(num_classes=n, average="macro", **kw),
        "precision": lambda **kw: C.MulticlassPrecision(num_classes=n, average="macro", **kw),
        "recall": lambda **kw: C.MulticlassRecall(num_classes=n, average="macro", **kw),
        "f1": lambda **kw: C.MulticlassF1Score(num_classes=n, average="macro", **kw),
        "auroc": lambda **kw: C.MulticlassAUROC(num_classes=n, average="macro", **kw),
        "confusion_matrix": lambda **kw: C.MulticlassConfusionMatrix(num_classes=n, **kw),
    }
    return table[name](validate_args=False), "probs"


def _multilabel(name: str, n: int):
    import torchmetrics.classification as C  # noqa: N812

    if name not in MULTILABEL:
        raise ConfigError(f"Metric '{name}' does not apply to a multilabel task. Metrics for multilabel: "
                          f"{', '.join(MULTILABEL)}.")
    kw = {"num_labels": n, "validate_args": False}
    base, _, average = name.partition("_") if name.split("_")[-1] in AVERAGES else (name, "", "")
    if average or base in AVERAGED:
        cls = {"precision": C.MultilabelPrecision, "recall": C.MultilabelRecall, "f1": C.MultilabelF1Score}[base]
        return cls(average=average or "macro", **kw), "probs"
    if name in ("accuracy", "subset_accuracy"):
        return C.MultilabelExactMatch(**kw), "probs"
    if name == "hamming_loss":
        return C.MultilabelHammingDistance(average="micro", **kw), "probs"
    if name == "hamming_accuracy":
        return C.MultilabelAccuracy(average="micro", **kw), "probs"
    return C.MultilabelAUROC(average="macro", **kw), "probs"


class MetricSet:
    """Named metrics that share one preparation of (output, target).

    Classifier outputs are turned into probabilities once per batch (softmax, or sigmoid
    for a binary logit), so every metric, including ``auroc`` and ``log_loss``, sees the
    same well-defined input.
    """

    def __init__(self, metrics: dict, kind: OutputKind, inputs: dict | None = None, output_key=None):
        self.metrics = metrics
        self.kind = kind
        self.output_key = output_key  # which tensor of a structured output (see fittorch.outputs)
        self.inputs = inputs or {}  # name -> "probs" | "labels"
        self._needs_labels = any(v == "labels" for v in self.inputs.values())

    @classmethod
    def build(cls, specs, kind: OutputKind, device: torch.device, output_key=None) -> MetricSet:
        metrics, inputs = {}, {}
        for spec in specs or ():
            if isinstance(spec, str):
                name = spec.lower()
                metrics[name], inputs[name] = _build(name, kind)
            elif hasattr(spec, "update") and hasattr(spec, "compute"):
                name = _metric_name(spec)
                metrics[name], inputs[name] = spec, "probs"
            elif callable(spec):  # a plain function fn(preds, target) -> float
                name = getattr(spec, "__name__", type(spec).__name__).strip("<>").lower()
                metrics[name], inputs[name] = FunctionMetric(spec), "probs"
            else:
                raise ConfigError(
                    f"metrics entry {spec!r} is a {type(spec).__name__}; expected a metric name "
                    "such as 'accuracy', a torchmetrics.Metric instance, or a function fn(preds, target) -> float."
                )
        return cls({k: m.to(device) for k, m in metrics.items()}, kind, inputs, output_key)

    def prepare(self, output: torch.Tensor, target: torch.Tensor):
        """Turn model outputs into what torchmetrics expects for this task (probabilities)."""
        if self.kind.task in ("binary", "multilabel"):
            output = output.reshape(target.shape) if output.numel() == target.numel() else output
            probs = torch.sigmoid(output) if self.kind.logits else output
            return probs, target.round().long() if target.is_floating_point() else target.long()
        if self.kind.task == "multiclass":
            if target.is_floating_point() and target.ndim == output.ndim:  # soft / one-hot targets
                target = target.argmax(dim=1)
            return torch.softmax(output, dim=1), target
        if output.shape != target.shape and output.numel() == target.numel():
            output = output.reshape(target.shape)
        return output, target

    def update(self, output, target: torch.Tensor) -> None:
        if not self.metrics:
            return
        preds, target = self.prepare(select(output, self.output_key).detach().float(), target)
        labels = None
        if self._needs_labels:
            labels = (preds >= 0.5).long() if self.kind.task == "binary" else preds.argmax(dim=1)
        for name, m in self.metrics.items():
            m.update(labels if self.inputs.get(name) == "labels" else preds, target)

    def compute(self) -> dict:
        """Scalars as floats; a matrix (``confusion_matrix``) as nested lists."""
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


class FunctionMetric:
    """A plain function ``fn(preds, target) -> float`` as a metric, called once per epoch.

    The batches' ``preds`` (probabilities for a classifier, outputs for a regressor) and targets
    are kept on the device and concatenated at the end, so ``fn`` sees the whole set at once,
    as scikit-learn's metrics do, and nothing is read back per batch.
    """

    def __init__(self, fn):
        self.fn = fn
        self._preds: list = []
        self._targets: list = []

    def to(self, device):
        return self

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        self._preds.append(preds.detach())
        self._targets.append(target.detach())

    def compute(self) -> torch.Tensor:
        value = self.fn(torch.cat(self._preds), torch.cat(self._targets))
        try:
            return torch.as_tensor(float(value))
        except (TypeError, ValueError):
            raise ConfigError(f"The metric function {getattr(self.fn, '__name__', self.fn)!r} returned "
                              f"{value!r}; expected one number (a float or a 0-d tensor).") from None

    def reset(self) -> None:
        self._preds, self._targets = [], []


def scalars(values: dict) -> dict:
    """Only the numeric entries of a metrics dict (what goes into a history row)."""
    return {k: v for k, v in values.items() if isinstance(v, (int, float)) and not isinstance(v, bool)}


def _metric_name(metric) -> str:
    import re

    name = type(metric).__name__
    for prefix in ("Multiclass", "Binary", "Multilabel"):
        name = name.removeprefix(prefix)
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()
