"""Explicit tasks, one vocabulary; soft targets; multi-label predictions and metrics (sklearn as oracle)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import fittorch as ft
from fittorch.task import TASKS, OutputKind, check_output_target


def _clf(n=240, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 6, generator=g)
    return X, X[:, :3].argmax(dim=1)


def test_the_vocabulary_is_four_names_and_classification_is_refused_with_the_choices():
    assert TASKS == ("binary", "multiclass", "multilabel", "regression")
    with pytest.raises(ft.ConfigError, match=r"Unknown task 'classification'.*Expected one of: binary, multiclass, "
                                            r"multilabel, regression.*use 'multiclass'"):
        ft.Trainer(nn.Linear(6, 3), task="classification", progress=False)
    with pytest.raises(ft.ConfigError, match=r"Unknown task 'multi_class'.*Did you mean 'multiclass'"):
        ft.Trainer(nn.Linear(6, 3), task="multi_class", progress=False)


def test_the_predicates_and_the_reading_of_the_old_name():
    from fittorch.task import has_class_labels, is_classification, task_guess, task_metrics, upgrade_task

    assert [is_classification(t) for t in (*TASKS, "classification", None)] == [True, True, True, False, True, False]
    assert [has_class_labels(t) for t in (*TASKS, "classification")] == [True, True, False, False, True]
    assert upgrade_task("classification", binary=True) == "binary"
    assert upgrade_task("classification", binary=False) == "multiclass"
    assert upgrade_task("regression", binary=True) == "regression"
    assert "Did you mean 'multiclass'" in task_guess("clasification") and "old name" in task_guess("clasification")
    assert task_guess("regresion") == " Did you mean 'regression'?"
    assert task_metrics("multilabel") == ["subset_accuracy", "hamming_loss", "f1_micro"]
    assert task_metrics("binary") == ["accuracy"] and task_metrics("regression") == ["r2"]


def test_a_custom_loss_with_task_multiclass_gets_accuracy_and_labels():
    X, y = _clf()
    t = ft.Trainer(nn.Linear(6, 3), loss=lambda out, t: nn.functional.cross_entropy(out, t), task="multiclass",
                   metrics=["accuracy"], lr=3e-2, progress=False)
    h = t.fit((X, y), val=0.25, epochs=15)
    assert "val_r2" not in h[-1] and h[-1]["val_accuracy"] > 0.85
    assert set(t.predict(X, labels=True).tolist()) <= {0, 1, 2}


def test_a_custom_loss_without_task_is_regression_and_predict_labels_says_how_to_fix_it():
    X, y = _clf()
    t = ft.Trainer(nn.Linear(6, 1), loss=lambda out, t: ((out.squeeze(-1) - t) ** 2).mean(), progress=False)
    t.fit((X, y.float()), epochs=1)
    assert t.output_kind.task == "regression"
    with pytest.raises(ft.ConfigError, match=r"predict\(labels=True\) needs a classification task.*'regression'.*"
                                            r"task='multiclass'"):
        t.predict(X, labels=True)


def test_task_multiclass_needs_class_outputs():
    X, y = _clf()
    t = ft.Trainer(nn.Linear(6, 1), loss=lambda out, t: out.sum(), task="multiclass", progress=False)
    with pytest.raises(ft.ModelError, match=r"task 'multiclass' needs outputs \[N, num_classes\], but the model "
                                           r"outputs shape \(2, 1\). End the model with nn.Linear"):
        t.fit((X, y), epochs=1)


@pytest.mark.parametrize("kind", ["probabilities", "one_hot"])
def test_soft_and_one_hot_float_targets_train_with_cross_entropy(kind):
    X, y = _clf()
    target = nn.functional.one_hot(y, 3).float()
    if kind == "probabilities":
        target = 0.8 * target + 0.2 / 3  # label smoothing by hand
    t = ft.Trainer(nn.Linear(6, 3), loss="cross_entropy", lr=3e-2, progress=False)
    h = t.fit((X, target), val=0.25, epochs=15)
    assert t.output_kind == OutputKind("multiclass", num_classes=3)
    assert h[-1]["val_accuracy"] > 0.85  # compared with the argmax of the soft target


def test_float_targets_of_the_wrong_shape_for_cross_entropy_are_refused_naming_both_shapes():
    with pytest.raises(ft.DataTypeError, match=r"expects integer class indices \[N\], or probabilities / one-hot "
                                              r"floats of the output's shape \(4, 3\), but y has dtype torch.float32 "
                                              r"and shape \(4, 2\)"):
        from fittorch.losses import LOSSES

        check_output_target(torch.zeros(4, 3), torch.zeros(4, 2), LOSSES["cross_entropy"])


def _multilabel(n=400, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 6, generator=g)
    Y = torch.stack([X[:, 0] > 0, X[:, 1] > 0.3, X[:, 2] + X[:, 3] > 0, X[:, 4] > 1], dim=1).float()
    return X, Y


def test_multilabel_predicts_indicator_rows_and_names_its_metric_averaging_like_sklearn():
    from sklearn.metrics import accuracy_score, f1_score, hamming_loss

    X, Y = _multilabel()
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 4))
    t = ft.Trainer(model, loss="bce_with_logits", lr=1e-2, progress=False,
                   metrics=["subset_accuracy", "hamming_loss", "hamming_accuracy", "f1_micro", "f1_macro",
                            "accuracy"])
    t.fit((X[:300], Y[:300]), epochs=15)
    assert t.output_kind.task == "multilabel" and t.output_kind.num_classes == 4
    pred = t.predict(X[300:], labels=True)
    assert pred.shape == (100, 4) and set(np.unique(pred)) <= {0, 1}
    truth = Y[300:].numpy().astype(int)
    got = t.evaluate((X[300:], Y[300:]))
    assert got["subset_accuracy"] == pytest.approx(accuracy_score(truth, pred), abs=1e-6)
    assert got["accuracy"] == got["subset_accuracy"]  # plain accuracy means subset accuracy, as in sklearn
    assert got["hamming_loss"] == pytest.approx(hamming_loss(truth, pred), abs=1e-6)
    assert got["hamming_accuracy"] == pytest.approx(1 - hamming_loss(truth, pred), abs=1e-6)
    assert got["f1_micro"] == pytest.approx(f1_score(truth, pred, average="micro"), abs=1e-6)
    assert got["f1_macro"] == pytest.approx(f1_score(truth, pred, average="macro", zero_division=0), abs=1e-6)
    assert got["subset_accuracy"] > 0.6


def test_multilabel_auto_metrics_and_a_metric_that_does_not_apply():
    X, Y = _multilabel()
    t = ft.Trainer(nn.Linear(6, 4), loss="bce_with_logits", progress=False)
    h = t.fit((X, Y), val=0.25, epochs=1)
    assert {"val_subset_accuracy", "val_hamming_loss", "val_f1_micro"} <= set(h[-1])
    t = ft.Trainer(nn.Linear(6, 4), loss="bce_with_logits", metrics=["r2"], progress=False)
    with pytest.raises(ft.ConfigError, match=r"Metric 'r2' does not apply to a multilabel task.*subset_accuracy"):
        t.fit((X, Y), epochs=1)


def test_multilabel_with_named_label_columns_predicts_the_names_per_row():
    import pandas as pd

    X, Y = _multilabel()
    frame = pd.DataFrame(Y.numpy().astype(int), columns=["cat", "dog", "bird", "fish"])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Linear(32, 4))
    t = ft.Trainer(model, loss="bce_with_logits", lr=1e-2, progress=False)
    t.fit((X, frame), epochs=10)
    assert t.classes == ["cat", "dog", "bird", "fish"]
    names = t.predict(X[:50], labels=True)
    assert len(names) == 50 and all(set(row) <= set(t.classes) for row in names)
    truth = [[c for c, on in zip(t.classes, row) if on] for row in Y[:50].int().tolist()]
    assert sum(a == b for a, b in zip(names, truth)) > 35


def test_task_is_saved_and_loaded_with_the_weights(tmp_path):
    X, Y = _multilabel()
    t = ft.Trainer(nn.Linear(6, 4), loss="bce_with_logits", progress=False)
    t.fit((X, Y), epochs=1)
    t.save(tmp_path / "m")
    u = ft.Trainer(nn.Linear(6, 4), loss="bce_with_logits", progress=False).load(tmp_path / "m")
    assert u.output_kind.task == "multilabel" and u.predict(X[:3], labels=True).shape == (3, 4)
