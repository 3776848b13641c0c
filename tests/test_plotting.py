"""Curves (best epoch and LR changes marked) and the confusion matrix."""

from __future__ import annotations

import pytest

from fittorch.history import History
from fittorch.plotting import lr_changes, metric_label, plot_confusion_matrix, plot_history


def _history(lrs):
    rows = []
    for i, lr in enumerate(lrs):
        rows.append({"epoch": i + 1, "train_loss": 1.0 / (i + 1), "val_loss": abs(i - 3) * 0.1 + 0.2,
                     "val_accuracy": 0.5 + 0.05 * min(i, 3), "val_confusion_matrix": [[1, 0], [0, 1]], "lr": lr})
    return History(rows)


def _vlines(ax):
    return [line for line in ax.get_lines() if len(set(line.get_xdata())) == 1 and len(line.get_xdata()) == 2]


def test_best_epoch_and_stepped_lr_changes_are_marked(tmp_path):
    history = _history([0.1] * 3 + [0.01] * 3 + [0.001] * 3)
    assert lr_changes(history) == [(4, 0.1, 0.01), (7, 0.01, 0.001)]
    fig = plot_history(history, tmp_path / "curves.png", best="auto")
    assert (tmp_path / "curves.png").stat().st_size > 10_000
    titles = [ax.get_title() for ax in fig.axes if ax.get_visible()]
    assert titles == ["Loss", "Accuracy", "Learning rate"]  # the matrix column is not plotted
    loss_ax = fig.axes[0]
    xs = sorted(line.get_xdata()[0] for line in _vlines(loss_ax))
    assert xs == [3.5, 4, 6.5]  # LR changes between epochs 3|4 and 6|7, best val_loss at epoch 4
    labels = loss_ax.get_legend_handles_labels()[1]
    assert "best val_loss (epoch 4)" in labels and "LR change" in labels
    star = [ln for ln in loss_ax.get_lines() if ln.get_marker() == "*"]
    assert [(s.get_xdata()[0], s.get_ydata()[0]) for s in star] == [(4, pytest.approx(0.2))]


def test_smooth_schedule_gets_a_panel_not_marks():
    history = _history([0.1 * 0.9**i for i in range(9)])
    fig = plot_history(history, best="val_accuracy")
    loss_ax = fig.axes[0]
    assert [line.get_xdata()[0] for line in _vlines(loss_ax)] == [4]  # best val_accuracy only
    assert "Learning rate" in [ax.get_title() for ax in fig.axes]
    assert not plot_history(_history([0.1] * 4), best=None).axes[0].get_legend_handles_labels()[1].count("LR change")


def test_confusion_matrix_plot_shows_the_counts(tmp_path):
    fig = plot_confusion_matrix([[5, 1, 0], [2, 7, 1], [0, 0, 9]], tmp_path / "cm.png", labels=["a", "b", "c"])
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.texts] == ["5", "1", "0", "2", "7", "1", "0", "0", "9"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "c"]
    assert ax.get_xlabel() == "Predicted" and ax.get_ylabel() == "True"
    assert (tmp_path / "cm.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_metric_labels():
    assert metric_label("f1_macro") == "F1 macro"
    assert metric_label("balanced_accuracy") == "Balanced accuracy"
    assert metric_label("auroc") == "AUROC"
