"""Notebook HTML: History, evaluate results, model summaries and doctor reports render as tables."""

from __future__ import annotations

import torch

import fittorch as ft
from fittorch.display import EvalResult


def test_history_html_highlights_the_monitors_best_epoch():
    rows = [{"epoch": e, "train_loss": 1 / e, "val_loss": abs(e - 3) + 0.5, "val_accuracy": e / 10}
            for e in range(1, 21)]
    history = ft.History(rows, monitor="val_accuracy")
    html = history._repr_html_()
    assert "best val_accuracy 2 at epoch 20" in html and "the last 12 shown" in html
    history.monitor = None  # val_loss: best at epoch 3, outside the last 12 rows, still shown first
    html = history._repr_html_()
    assert "best val_loss 0.5 at epoch 3" in html
    assert html.index("<tr class='ft-best'><td>3</td>") < html.index("<td>9</td>")
    assert "<script" not in html


def test_evaluate_result_is_a_dict_with_a_table(small_clf_data, mlp_factory):
    X, y = small_clf_data
    trainer = ft.Trainer(mlp_factory(), progress=False)
    trainer.fit((X, y), epochs=1)
    result = trainer.evaluate((X, y))
    assert isinstance(result, dict) and isinstance(result, EvalResult)
    assert set(result) == {"loss", "accuracy"} and "<td>accuracy</td>" in result._repr_html_()


def test_model_summary_and_doctor_report_html(small_clf_data, mlp_factory):
    summary = ft.model_summary(mlp_factory(), torch.zeros(1, 8))
    html = summary._repr_html_()
    assert "<th>Output shape</th>" in html and "<td>[1, 16]</td>" in html and "195 params" in html
    X, y = small_clf_data
    report = ft.doctor(torch.nn.Sequential(mlp_factory(), torch.nn.Softmax(dim=1)), (X, y), checks=["init_loss"])
    html = report._repr_html_()
    assert "fittorch doctor: FAILED" in html and "class='ft-fail'" in html and "fix: Remove the final softmax" in html


def test_trainer_html_is_the_fit_summary(small_clf_data, mlp_factory):
    X, y = small_clf_data
    trainer = ft.fit(mlp_factory(), (X[:150], y[:150]), val=(X[150:], y[150:]), epochs=4, progress=False,
                     callbacks=[ft.EarlyStopping("val_accuracy", patience=10, restore_best=True)])
    html = trainer._repr_html_()
    best = trainer.history.best("val_accuracy")
    assert "<td>epochs</td><td>4 of 4</td>" in html
    assert f"<td>best epoch</td><td>{best['epoch']}: val_accuracy" in html
    assert f"the best epoch&#x27;s weights (epoch {best['epoch']}" in html
    plain = ft.fit(mlp_factory(), (X, y), epochs=1, progress=False)._repr_html_()
    assert "the last epoch&#x27;s weights (epoch 1)" in plain
