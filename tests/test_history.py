"""History: the per-epoch record that the CSV, the plot and the progress bar read."""

from __future__ import annotations

import csv

import pytest
from torch import nn

import fittorch as ft
from fittorch.history import History, infer_mode


def _history():
    return History([
        {"epoch": 1, "train_loss": 0.9, "val_loss": 0.8, "val_accuracy": 0.6, "lr": 1e-3, "seconds": 0.1},
        {"epoch": 2, "train_loss": 0.5, "val_loss": 0.55, "val_accuracy": 0.8, "lr": 1e-3, "seconds": 0.1},
        {"epoch": 3, "train_loss": 0.3, "val_loss": 0.6, "val_accuracy": 0.8, "lr": 1e-3, "seconds": 0.1},
    ])


def test_columns_rows_and_best():
    h = _history()
    assert h["val_loss"] == [0.8, 0.55, 0.6]
    assert h[-1]["epoch"] == 3
    assert h.best("val_loss")["epoch"] == 2
    assert h.best("val_accuracy")["epoch"] == 2  # ties: the earliest
    with pytest.raises(ft.ConfigError, match="Did you mean 'val_loss'"):
        h["val_los"]


def test_infer_mode():
    assert infer_mode("val_loss") == "min" and infer_mode("val_mae") == "min"
    assert infer_mode("val_accuracy") == "max" and infer_mode("val_r2") == "max"


def test_csv_round_trips_exactly(tmp_path):
    h = _history()
    h.to_csv(tmp_path / "m.csv")
    with open(tmp_path / "m.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"]
    assert History.from_csv(tmp_path / "m.csv").rows == h.rows


def test_plot_writes_a_real_png(tmp_path):
    from PIL import Image

    _history().plot(tmp_path / "curves.png", best="val_accuracy")
    data = (tmp_path / "curves.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    with Image.open(tmp_path / "curves.png") as img:
        assert img.size[0] > 600 and img.size[1] > 300
        # not a blank canvas: the curves put many distinct colours on it
        assert len(img.convert("RGB").getcolors(maxcolors=1_000_000)) > 20


def test_plot_has_labelled_axes_for_loss_and_accuracy():
    fig = _history().plot()
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == ["Loss", "Accuracy"]
    assert all(ax.get_xlabel() == "Epoch" for ax in fig.axes)
    labels = [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    best = _history().best("val_loss")["epoch"]
    assert labels == ["Train loss", "Validation loss", f"best val_loss (epoch {best})"]  # like curves.png
    assert [t.get_text() for t in _history().plot(best=None).axes[0].get_legend().get_texts()] == labels[:2]


def test_trainer_history_is_the_record(small_clf_data, tmp_path):
    X, y = small_clf_data
    trainer = ft.Trainer(nn.Linear(8, 3), progress=False)
    history = trainer.fit((X, y), val=(X, y), epochs=3, batch_size=50)
    assert history is trainer.history and len(history) == 3
    history.to_csv(tmp_path / "metrics.csv")
    assert History.from_csv(tmp_path / "metrics.csv")["val_accuracy"] == history["val_accuracy"]
    assert "3 epochs" in repr(history)
