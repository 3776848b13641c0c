"""The default metrics (accuracy, mse, rmse, mae, r2) without importing torchmetrics.

``import torchmetrics`` costs about a second in a fresh process (it imports matplotlib
and scipy), more than a whole small training run. The default metrics are a few sums,
so they are kept here as small streaming metrics with exactly torchmetrics' arithmetic:
the same operations on the same dtypes in the same order, so the values are bit-identical
to ``torchmetrics`` 1.x (``tests/test_fast_metrics.py`` checks them against torchmetrics and
scikit-learn). Every other metric, and any torchmetrics object a user passes, still runs on
torchmetrics (``fittorch.metrics``).

Like a torchmetrics ``Metric``, each one keeps its sums as tensors on the model's device,
adds to them in ``update`` without a host sync, and reads them once in ``compute``; under
``torch.distributed`` the sums of all ranks are gathered and added in ``compute``.
"""

from __future__ import annotations

import torch

#: Metric names this module computes, per task.
FAST = {"multiclass": ("accuracy",), "binary": ("accuracy",), "regression": ("mse", "rmse", "mae", "r2")}


def build(name: str, kind):
    """A ``(metric, input)`` pair as ``fittorch.metrics`` builds it, or None if not a fast metric."""
    if name not in FAST.get(kind.task, ()):
        return None
    if kind.task == "multiclass":
        return MulticlassAccuracy(), "probs"
    if kind.task == "binary":
        return BinaryAccuracy(), "probs"
    factory = {"mse": MeanSquaredError, "rmse": lambda: MeanSquaredError(squared=False),
               "mae": MeanAbsoluteError, "r2": R2Score}[name]
    return factory(), "probs"


class StreamingMetric:
    """Named tensor sums on one device; ``compute`` reduces them to a value."""

    #: state name -> (dtype, shape) of its zero
    STATES: dict[str, tuple[torch.dtype, tuple[int, ...]]] = {}

    def __init__(self):
        self.device = torch.device("cpu")
        self.reset()

    def reset(self) -> None:
        for name, (dtype, shape) in self.STATES.items():
            setattr(self, name, torch.zeros(shape, dtype=dtype, device=self.device))

    def to(self, device) -> StreamingMetric:
        self.device = torch.device(device)
        for name in self.STATES:
            setattr(self, name, getattr(self, name).to(self.device))
        return self

    def synced(self) -> list[torch.Tensor]:
        """The states, summed over all ranks when a process group is running (as torchmetrics does)."""
        states = [getattr(self, name) for name in self.STATES]
        if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
            return states
        world = torch.distributed.get_world_size()
        summed = []
        for state in states:
            gathered = [torch.zeros_like(state) for _ in range(world)]
            torch.distributed.all_gather(gathered, state.contiguous())
            summed.append(torch.sum(torch.stack(gathered), dim=0))
        return summed

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


def _safe_divide(num: torch.Tensor, denom: torch.Tensor) -> torch.Tensor:
    """``num / denom`` in float32, 0 where ``denom`` is 0 (torchmetrics' ``_safe_divide``)."""
    num = num if num.is_floating_point() else num.float()
    denom = denom if denom.is_floating_point() else denom.float()
    zero = torch.full((), 0.0, dtype=num.dtype, device=num.device)
    return torch.where(denom != 0, num / denom, zero)


def _check_same_shape(preds: torch.Tensor, target: torch.Tensor) -> None:
    if preds.shape != target.shape:
        raise RuntimeError(f"Predictions and targets are expected to have the same shape, "
                           f"but got {preds.shape} and {target.shape}.")


class MulticlassAccuracy(StreamingMetric):
    """Share of rows whose arg-max class is the target (torchmetrics' micro-averaged accuracy)."""

    STATES = {"correct": (torch.long, (1,)), "wrong": (torch.long, (1,))}

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if preds.ndim == target.ndim + 1:
            preds = preds.argmax(dim=1)
        preds, target = preds.flatten(), target.flatten()
        self.correct += (preds == target).sum()
        self.wrong += (preds != target).sum()

    def compute(self) -> torch.Tensor:
        correct, wrong = (s.sum(dim=0) for s in self.synced())
        return _safe_divide(correct, correct + wrong)


class BinaryAccuracy(StreamingMetric):
    """Share of rows where ``probability > 0.5`` matches the 0/1 target (torchmetrics' BinaryAccuracy).

    As in torchmetrics, scores outside [0, 1] are taken for logits and go through a sigmoid
    first; the test is a tensor op here, so it costs no host sync.
    """

    STATES = {"tp": (torch.long, ()), "fp": (torch.long, ()), "tn": (torch.long, ()), "fn": (torch.long, ())}
    threshold = 0.5

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        if preds.is_floating_point():
            if preds.device.type == "cpu":  # the two conditions differ only for NaN, as in torchmetrics
                logits = ~torch.all((preds >= 0) * (preds <= 1))
            else:
                logits = ((preds < 0) | (preds > 1)).any()
            preds = torch.where(logits, preds.sigmoid(), preds)
            preds = preds > self.threshold
        preds = preds.reshape(preds.shape[0], -1)
        target = target.reshape(target.shape[0], -1)
        self.tp += ((target == preds) & (target == 1)).sum([0, 1]).squeeze()
        self.fn += ((target != preds) & (target == 1)).sum([0, 1]).squeeze()
        self.fp += ((target != preds) & (target == 0)).sum([0, 1]).squeeze()
        self.tn += ((target == preds) & (target == 0)).sum([0, 1]).squeeze()

    def compute(self) -> torch.Tensor:
        tp, fp, tn, fn = self.synced()
        return _safe_divide(tp + tn, tp + tn + fp + fn)


class MeanSquaredError(StreamingMetric):
    """Mean of squared errors over all elements; ``squared=False`` gives its square root (RMSE)."""

    STATES = {"sum_squared_error": (torch.float32, (1,)), "total": (torch.long, ())}

    def __init__(self, squared: bool = True):
        self.squared = squared
        super().__init__()

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        _check_same_shape(preds, target)
        preds, target = preds.view(-1), target.view(-1)
        diff = preds - target
        self.sum_squared_error += torch.sum(diff * diff, dim=0)
        self.total += target.shape[0]

    def compute(self) -> torch.Tensor:
        sse, total = self.synced()
        return (sse / total if self.squared else torch.sqrt(sse / total)).squeeze()


class MeanAbsoluteError(StreamingMetric):
    """Mean of absolute errors over all elements."""

    STATES = {"sum_abs_error": (torch.float32, (1,)), "total": (torch.long, ())}

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        _check_same_shape(preds, target)
        preds, target = preds.view(-1), target.view(-1)
        self.sum_abs_error += torch.sum(torch.abs(preds - target), dim=0)
        self.total += target.shape[0]

    def compute(self) -> torch.Tensor:
        sae, total = self.synced()
        return (sae / total).squeeze()


class R2Score(StreamingMetric):
    """Coefficient of determination, averaged uniformly over outputs (scikit-learn's ``r2_score``)."""

    STATES = {"sum_squared_obs": (torch.float32, ()), "sum_obs": (torch.float32, ()),
              "rss": (torch.float32, ()), "total": (torch.long, ())}

    def update(self, preds: torch.Tensor, target: torch.Tensor) -> None:
        _check_same_shape(preds, target)
        if preds.ndim > 2:
            raise ValueError("Expected both prediction and target to be 1D or 2D tensors,"
                             f" but received tensors with dimension {preds.shape}")
        residual = target - preds
        # not in place: a float64 target makes the sums float64, as in torchmetrics
        self.sum_squared_obs = self.sum_squared_obs + torch.sum(target * target, dim=0)
        self.sum_obs = self.sum_obs + torch.sum(target, dim=0)
        self.rss = self.rss + torch.sum(residual * residual, dim=0)
        self.total = self.total + target.size(0)

    def compute(self) -> torch.Tensor:
        sum_squared_obs, sum_obs, rss, num_obs = self.synced()
        if num_obs < 2:
            raise ValueError("Needs at least two samples to calculate r2 score.")
        mean_obs = sum_obs / num_obs
        tss = sum_squared_obs - sum_obs * mean_obs
        cond_rss = ~torch.isclose(rss, torch.zeros_like(rss), atol=1e-4)  # near-constant targets
        cond_tss = ~torch.isclose(tss, torch.zeros_like(tss), atol=1e-4)
        cond = cond_rss & cond_tss
        raw_scores = torch.ones_like(rss)
        raw_scores[cond] = 1 - (rss[cond] / tss[cond])
        raw_scores[cond_rss & ~cond_tss] = 0.0
        return torch.mean(raw_scores)
