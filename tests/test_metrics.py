"""Metric values against scikit-learn (the oracle), accumulated over several batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn import metrics as skm

from fittorch.errors import ConfigError
from fittorch.metrics import MetricSet, OutputKind

CPU = torch.device("cpu")


def _run(names, kind, outputs, target, n_batches=4):
    ms = MetricSet.build(names, kind, CPU)
    for out, t in zip(torch.tensor_split(outputs, n_batches), torch.tensor_split(target, n_batches)):
        ms.update(out, t)
    return ms.compute()


@pytest.fixture
def multiclass():
    g = torch.Generator().manual_seed(0)
    y = torch.randint(0, 4, (203,), generator=g)
    logits = torch.randn(203, 4, generator=g) + 1.5 * torch.nn.functional.one_hot(y, 4)
    return logits, y


def test_multiclass_metrics_match_sklearn(multiclass):
    logits, y = multiclass
    names = ["accuracy", "balanced_accuracy", "precision", "recall", "f1", "auroc", "log_loss", "confusion_matrix"]
    names += [f"{m}_{a}" for m in ("precision", "recall", "f1") for a in ("macro", "micro", "weighted")]
    got = _run(names, OutputKind("multiclass", num_classes=4), logits, y)
    probs = torch.softmax(logits.double(), 1).numpy()
    pred, yt = probs.argmax(1), y.numpy()
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(yt, pred), abs=1e-6)
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(yt, pred), abs=1e-6)
    for m, fn in (("precision", skm.precision_score), ("recall", skm.recall_score), ("f1", skm.f1_score)):
        assert got[m] == pytest.approx(fn(yt, pred, average="macro"), abs=1e-6)  # sklearn-style default
        for avg in ("macro", "micro", "weighted"):
            assert got[f"{m}_{avg}"] == pytest.approx(fn(yt, pred, average=avg), abs=1e-6), (m, avg)
    assert got["auroc"] == pytest.approx(skm.roc_auc_score(yt, probs, multi_class="ovr", average="macro"), abs=1e-5)
    assert got["log_loss"] == pytest.approx(skm.log_loss(yt, probs, labels=range(4)), abs=1e-5)
    assert got["confusion_matrix"] == skm.confusion_matrix(yt, pred, labels=range(4)).tolist()


@pytest.mark.parametrize("logits", [True, False])
def test_binary_metrics_match_sklearn(logits):
    g = torch.Generator().manual_seed(1)
    y = torch.randint(0, 2, (157,), generator=g).float()
    raw = torch.randn(157, 1, generator=g) + (2 * y.reshape(-1, 1) - 1)
    out = raw if logits else torch.sigmoid(raw)
    names = ["accuracy", "balanced_accuracy", "precision", "recall", "f1", "f1_macro", "precision_weighted",
             "recall_micro", "auroc", "log_loss", "confusion_matrix"]
    got = _run(names, OutputKind("binary", logits=logits), out, y)
    p = torch.sigmoid(raw.double()).reshape(-1).numpy()
    yt, pred = y.numpy().astype(int), (p >= 0.5).astype(int)
    assert got["accuracy"] == pytest.approx(skm.accuracy_score(yt, pred), abs=1e-6)
    assert got["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(yt, pred), abs=1e-6)
    assert got["precision"] == pytest.approx(skm.precision_score(yt, pred), abs=1e-6)
    assert got["recall"] == pytest.approx(skm.recall_score(yt, pred), abs=1e-6)
    assert got["f1"] == pytest.approx(skm.f1_score(yt, pred), abs=1e-6)
    assert got["f1_macro"] == pytest.approx(skm.f1_score(yt, pred, average="macro"), abs=1e-6)
    assert got["precision_weighted"] == pytest.approx(skm.precision_score(yt, pred, average="weighted"), abs=1e-6)
    assert got["recall_micro"] == pytest.approx(skm.recall_score(yt, pred, average="micro"), abs=1e-6)
    assert got["auroc"] == pytest.approx(skm.roc_auc_score(yt, p), abs=1e-6)
    assert got["log_loss"] == pytest.approx(skm.log_loss(yt, p), abs=1e-5)
    assert got["confusion_matrix"] == skm.confusion_matrix(yt, pred).tolist()


def test_regression_metrics_match_sklearn():
    g = torch.Generator().manual_seed(2)
    y = torch.randn(181, generator=g) * 3 + 5
    out = (y + 0.7 * torch.randn(181, generator=g)).reshape(-1, 1)  # [N, 1] against [N] targets
    got = _run(["mse", "rmse", "mae", "r2", "mape"], OutputKind("regression"), out, y)
    yt, yp = y.double().numpy(), out.reshape(-1).double().numpy()
    assert got["mse"] == pytest.approx(skm.mean_squared_error(yt, yp), rel=1e-5)
    assert got["rmse"] == pytest.approx(np.sqrt(skm.mean_squared_error(yt, yp)), rel=1e-5)
    assert got["mae"] == pytest.approx(skm.mean_absolute_error(yt, yp), rel=1e-5)
    assert got["r2"] == pytest.approx(skm.r2_score(yt, yp), rel=1e-5)
    assert got["mape"] == pytest.approx(skm.mean_absolute_percentage_error(yt, yp), rel=1e-4)


def test_torchmetrics_object_is_accepted(multiclass):
    from torchmetrics.classification import MulticlassCohenKappa

    logits, y = multiclass
    got = _run([MulticlassCohenKappa(num_classes=4)], OutputKind("multiclass", num_classes=4), logits, y)
    assert got["cohen_kappa"] == pytest.approx(skm.cohen_kappa_score(y.numpy(), logits.argmax(1).numpy()), abs=1e-6)


def test_bad_metric_names_say_what_to_do():
    with pytest.raises(ConfigError, match="Did you mean 'accuracy'"):
        MetricSet.build(["acuracy"], OutputKind("binary"), CPU)
    with pytest.raises(ConfigError, match="does not apply to a regression task"):
        MetricSet.build(["f1"], OutputKind("regression"), CPU)
    with pytest.raises(ConfigError, match="does not apply to a multiclass task"):
        MetricSet.build(["r2"], OutputKind("multiclass", num_classes=3), CPU)
    for name, kind in (("subset_accuracy", OutputKind("multiclass", num_classes=3)),
                       ("hamming_loss", OutputKind("binary"))):  # multilabel-only names: no raw KeyError
        with pytest.raises(ConfigError, match=f"'{name}' does not apply to a {kind.task} task. Metrics for "
                                              f"{kind.task}: accuracy"):
            MetricSet.build([name], kind, CPU)
    with pytest.raises(ConfigError, match="expected a metric name"):
        MetricSet.build([3], OutputKind("binary"), CPU)


def test_history_names_follow_the_convention(small_clf_data, mlp_factory):
    import fittorch as ft

    X, y = small_clf_data
    trainer = ft.Trainer(mlp_factory(), metrics=["accuracy", "f1_weighted", "auroc", "confusion_matrix"],
                         progress=False, lr=1e-2)
    history = trainer.fit((X[:150], y[:150]), val=(X[150:], y[150:]), epochs=2, batch_size=50)
    assert history.columns[:6] == ["epoch", "train_loss", "val_loss", "val_accuracy", "val_f1_weighted", "val_auroc"]
    assert "val_confusion_matrix" not in history.columns  # a matrix stays out of the rows
    result = trainer.evaluate((X[150:], y[150:]))
    probs = trainer.predict(X[150:]).softmax(1).numpy()
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(y[150:], probs.argmax(1)), abs=1e-6)
    assert result["confusion_matrix"] == skm.confusion_matrix(y[150:], probs.argmax(1), labels=range(3)).tolist()
    assert history.last["val_accuracy"] == pytest.approx(result["accuracy"])


def test_a_plain_function_metric_is_accepted(small_clf_data, mlp_factory):
    """fn(preds, target) -> float, called once per epoch on the whole validation set."""
    import fittorch as ft

    calls = []

    def top1(preds, target):
        calls.append(len(target))
        return float((preds.argmax(1) == target).float().mean())

    X, y = small_clf_data
    trainer = ft.Trainer(mlp_factory(), metrics=["accuracy", top1], progress=False)
    history = trainer.fit((X[:150], y[:150]), val=(X[150:], y[150:]), epochs=3, batch_size=16, val_batch_size=10)
    assert history["val_top1"] == pytest.approx(history["val_accuracy"])
    assert calls == [50, 50, 50]  # all 5 batches of 10 at once, each epoch
    result = trainer.evaluate((X[150:], y[150:]))
    assert result["top1"] == pytest.approx(skm.accuracy_score(y[150:], trainer.predict(X[150:]).argmax(1)))

    with pytest.raises(ConfigError, match="returned"):
        ft.Trainer(mlp_factory(), metrics=[lambda p, t: "high"], progress=False).fit(
            (X[:150], y[:150]), val=(X[150:], y[150:]), epochs=1)
