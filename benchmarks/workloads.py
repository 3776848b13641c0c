"""The four benchmark workloads: data, model and schedule, shared by every implementation.

Every implementation receives numpy arrays (float32 inputs, int64 labels), exactly as a
user has them, and does its own conversion inside the timed region.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn


@dataclass
class Workload:
    name: str
    title: str
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray
    make_model: Callable[[], nn.Module]
    epochs: int
    batch_size: int
    lr: float = 1e-3
    device: str = "cpu"  # --device: where fittorch, hand_optimized and plain_loop train

    @property
    def steps(self) -> int:
        return self.epochs * -(-len(self.X_train) // self.batch_size)

    def model(self, seed: int = 0) -> nn.Module:
        torch.manual_seed(seed)
        return self.make_model()


def mlp(sizes) -> nn.Module:
    layers: list[nn.Module] = []
    for a, b in zip(sizes[:-2], sizes[1:-1]):
        layers += [nn.Linear(a, b), nn.ReLU()]
    layers.append(nn.Linear(sizes[-2], sizes[-1]))
    return nn.Sequential(*layers)


class SmallConvNet(nn.Module):
    """1x8x8 -> conv16 -> conv32 -> maxpool -> linear 10: a small image-shaped model."""

    def __init__(self):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(32 * 4 * 4, 10)

    def forward(self, x):
        return self.head(self.features(x).flatten(1))


def _reference():
    from fittorch.demo import make_reference_data

    (X_train, y_train), (X_val, y_val), _ = make_reference_data()
    return X_train, y_train.astype(np.int64), X_val, y_val.astype(np.int64)


_W2_CACHE: dict = {}


def _w2_data():
    """200k x 20 training rows (+ 20k validation rows), two classes, standardized."""
    if not _W2_CACHE:
        rng = np.random.default_rng(0)
        n, d = 220_000, 20
        X = rng.normal(size=(n, d)).astype(np.float32)
        w = rng.normal(size=d).astype(np.float32)
        logits = X @ w + 0.5 * np.sin(3 * X[:, 0]) * X[:, 1]
        y = (logits + rng.normal(scale=0.5, size=n) > 0).astype(np.int64)
        _W2_CACHE["data"] = (X[:200_000], y[:200_000], X[200_000:], y[200_000:])
    return _W2_CACHE["data"]


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    X = (d.images / 16.0).astype(np.float32)[:, None, :, :]  # N x 1 x 8 x 8
    X_train, X_val, y_train, y_val = train_test_split(X, d.target.astype(np.int64), test_size=0.2, random_state=0)
    return X_train, y_train, X_val, y_val


def get(name: str, *, epochs: int | None = None) -> Workload:
    if name == "W1":
        w = Workload("W1", "reference: MLP 20-64-2, 800 rows, batch 32, 100 epochs (2,500 steps)",
                     *_reference(), make_model=lambda: mlp([20, 64, 2]), epochs=100, batch_size=32)
    elif name == "W2":
        w = Workload("W2", "MLP 20-64-2, 200k rows, batch 256, 3 epochs (2,346 steps)",
                     *_w2_data(), make_model=lambda: mlp([20, 64, 2]), epochs=3, batch_size=256)
    elif name == "W3":
        w = Workload("W3", "MLP 20-512-512-2, 200k rows, batch 256, 1 epoch (782 steps)",
                     *_w2_data(), make_model=lambda: mlp([20, 512, 512, 2]), epochs=1, batch_size=256)
    elif name == "W4":
        w = Workload("W4", "conv net on digits 1x8x8, 1,437 rows, batch 32, 20 epochs (900 steps)",
                     *_digits(), make_model=SmallConvNet, epochs=20, batch_size=32)
    else:
        raise SystemExit(f"unknown workload {name!r}; choose from W1, W2, W3, W4")
    if epochs is not None and epochs != w.epochs:
        w.epochs = epochs
        w.title += f" [epochs overridden: {epochs}, {w.steps:,} steps]"
    return w


WORKLOADS = ("W1", "W2", "W3", "W4")
