"""The default metrics without torchmetrics: bit-identical to torchmetrics, close to scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchmetrics.classification as TC  # noqa: N812 - the engine the fast metrics must equal
import torchmetrics.regression as TR  # noqa: N812
from sklearn import metrics as skm

import fittorch as ft
from fittorch import fast_metrics
from fittorch.metrics import MetricSet, OutputKind

CPU = torch.device("cpu")


def _feed(metric, preds, target, n_batches=5):
    metric.reset()
    for p, t in zip(torch.tensor_split(preds, n_batches), torch.tensor_split(target, n_batches)):
        metric.update(p, t)
    return metric.compute()


def _same(fast, reference, preds, target):
    got, want = _feed(fast, preds, target), _feed(reference, preds, target)
    assert got.dtype == want.dtype and got.shape == want.shape
    assert torch.equal(got, want), (float(got), float(want))
    return float(got)


@pytest.mark.parametrize("n,c", [(203, 4), (64, 2), (7, 10)])
def test_multiclass_accuracy_equals_torchmetrics_and_sklearn(n, c):
    g = torch.Generator().manual_seed(n)
    y = torch.randint(0, c, (n,), generator=g)
    probs = torch.softmax(torch.randn(n, c, generator=g) + torch.nn.functional.one_hot(y, c), dim=1)
    value = _same(fast_metrics.MulticlassAccuracy(), TC.MulticlassAccuracy(num_classes=c, average="micro",
                                                                            validate_args=False), probs, y)
    assert value == pytest.approx(skm.accuracy_score(y.numpy(), probs.argmax(1).numpy()), abs=1e-7)


@pytest.mark.parametrize("shape", [(157,), (157, 1)])
@pytest.mark.parametrize("scores", ["probs", "logits", "hard"])
def test_binary_accuracy_equals_torchmetrics_and_sklearn(shape, scores):
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 2, shape, generator=g)
    raw = torch.randn(shape, generator=g) + (2 * y - 1)
    preds = {"probs": torch.sigmoid(raw), "logits": raw, "hard": (raw > 0).long()}[scores]
    value = _same(fast_metrics.BinaryAccuracy(), TC.BinaryAccuracy(validate_args=False), preds, y)
    assert value == pytest.approx(skm.accuracy_score(y.reshape(-1).numpy(), (raw > 0).reshape(-1).numpy()))


def test_binary_accuracy_takes_scores_outside_0_1_for_logits_without_a_sync():
    preds, y = torch.tensor([0.2, 0.7, -3.0, 4.0]), torch.tensor([1, 1, 0, 1])  # 0.2 > 0 once sigmoid'ed
    assert float(_feed(fast_metrics.BinaryAccuracy(), preds, y, n_batches=1)) == 1.0


@pytest.mark.parametrize("shape", [(301,), (301, 1)])
@pytest.mark.parametrize("target_dtype", [torch.float32, torch.float64])
def test_regression_metrics_equal_torchmetrics_and_sklearn(shape, target_dtype):
    g = torch.Generator().manual_seed(2)
    target = (torch.randn(shape, generator=g) * 3 + 1).to(target_dtype)
    preds = target.float() + torch.randn(shape, generator=g)
    yt, yp = target.reshape(-1).numpy(), preds.reshape(-1).numpy()
    cases = [(fast_metrics.MeanSquaredError(), TR.MeanSquaredError(), skm.mean_squared_error(yt, yp)),
             (fast_metrics.MeanSquaredError(squared=False), TR.MeanSquaredError(squared=False),
              skm.mean_squared_error(yt, yp) ** 0.5),
             (fast_metrics.MeanAbsoluteError(), TR.MeanAbsoluteError(), skm.mean_absolute_error(yt, yp)),
             (fast_metrics.R2Score(), TR.R2Score(), skm.r2_score(yt, yp))]
    for fast, reference, oracle in cases:
        assert _same(fast, reference, preds, target) == pytest.approx(oracle, rel=1e-5), type(fast).__name__


def test_r2_of_constant_targets_and_too_few_rows_behave_as_torchmetrics():
    target = torch.full((10,), 2.0)
    _same(fast_metrics.R2Score(), TR.R2Score(), target.clone(), target)  # perfect and constant: 1.0
    _same(fast_metrics.R2Score(), TR.R2Score(), target + 1, target)  # wrong and constant: 0.0
    with pytest.raises(ValueError, match="at least two samples"):
        _feed(fast_metrics.R2Score(), torch.ones(1), torch.ones(1), n_batches=1)


def test_mismatched_shapes_are_refused():
    with pytest.raises(RuntimeError, match="same shape"):
        fast_metrics.MeanSquaredError().update(torch.zeros(3), torch.zeros(4))


def test_metric_set_uses_fast_metrics_for_defaults_only():
    ms = MetricSet.build(["accuracy"], OutputKind("multiclass", num_classes=3), CPU)
    assert isinstance(ms.metrics["accuracy"], fast_metrics.MulticlassAccuracy)
    ms = MetricSet.build(["mse", "rmse", "mae", "r2"], OutputKind("regression"), CPU)
    assert all(type(m).__module__ == "fittorch.fast_metrics" for m in ms.metrics.values())
    ms = MetricSet.build(["f1", "accuracy"], OutputKind("binary"), CPU)
    assert type(ms.metrics["f1"]).__module__.startswith("torchmetrics")
    assert isinstance(ms.metrics["accuracy"], fast_metrics.BinaryAccuracy)
    assert fast_metrics.build("accuracy", OutputKind("regression")) is None  # the error comes from metrics.py


def _seeded_fit(metrics, loss, X, y, n_out):
    torch.manual_seed(0)
    model = ft.MLP(X.shape[1], [16], n_out)
    trainer = ft.Trainer(model, loss=loss, metrics=metrics, progress=False, device="cpu")
    trainer.fit((X[:240], y[:240]), val=(X[240:], y[240:]), epochs=3, batch_size=32)
    return trainer


@pytest.mark.parametrize("task", ["multiclass", "binary", "regression"])
def test_fit_with_fast_metrics_equals_fit_with_torchmetrics(task):
    """Same weights (torch.equal) and the same history values as with torchmetrics objects."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 6)).astype(np.float32)
    if task == "multiclass":
        y, loss, n_out = (X[:, 0] > 0).astype(np.int64) + (X[:, 1] > 1), "cross_entropy", 3
        names, objects = ["accuracy"], [TC.MulticlassAccuracy(num_classes=3, average="micro", validate_args=False)]
    elif task == "binary":
        y, loss, n_out = (X[:, :1] > 0).astype(np.float32), "bce_with_logits", 1
        names, objects = ["accuracy"], [TC.BinaryAccuracy(validate_args=False)]
    else:
        y, loss, n_out = (X @ rng.normal(size=6)).astype(np.float32)[:, None], "mse", 1
        names = ["mse", "mae", "r2"]  # one object per torchmetrics class: the history names them by class
        objects = [TR.MeanSquaredError(), TR.MeanAbsoluteError(), TR.R2Score()]
    fast, reference = _seeded_fit(names, loss, X, y, n_out), _seeded_fit(objects, loss, X, y, n_out)
    for a, b in zip(fast.model.parameters(), reference.model.parameters()):
        assert torch.equal(a, b)
    for row_fast, row_ref in zip(fast.history, reference.history):
        values = [v for k, v in row_ref.items() if k.startswith("val_") and k != "val_loss"]
        assert [row_fast[f"val_{n}"] for n in names] == values
    evaluated = fast.evaluate((X[240:], y[240:]))
    assert [evaluated[n] for n in names] == [v for k, v in reference.evaluate((X[240:], y[240:])).items()
                                             if k != "loss"]


def test_sum_over_ranks_in_a_process_group(tmp_path):
    """Under torch.distributed, compute() sums the states of all ranks (here a group of one)."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{tmp_path / 'pg'}", rank=0, world_size=1)
    try:
        m = fast_metrics.MulticlassAccuracy()
        m.update(torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]]), torch.tensor([0, 1, 1]))
        assert float(m.compute()) == pytest.approx(2 / 3)
    finally:
        dist.destroy_process_group()
