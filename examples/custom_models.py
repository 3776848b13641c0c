"""Custom models for ``model: {type: import, target: custom_models:NAME}`` configs.

Make this folder importable first, e.g. ``PYTHONPATH=examples fittorch fit examples/configs/digits_cnn.yaml``.
"""

from __future__ import annotations

from torch import nn


class DigitsCNN(nn.Module):
    """sklearn's 8x8 digits as images: 64 columns -> 1x8x8 -> conv16 -> conv32 -> maxpool -> linear.

    The same network as the W4 benchmark in docs/benchmarks.md, fed the 64 pixel columns of a table.
    """

    def __init__(self, in_features: int = 64, out_features: int = 10):
        super().__init__()
        if in_features != 64:
            raise ValueError(f"DigitsCNN takes the 64 pixels of an 8x8 image; the data has {in_features} columns.")
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        )
        self.head = nn.Linear(32 * 4 * 4, out_features)

    def forward(self, x):
        return self.head(self.features(x.reshape(-1, 1, 8, 8)).flatten(1))


class ResidualMLP(nn.Module):
    """A tabular MLP with a skip connection and layer norm: a typical hand-written model."""

    def __init__(self, in_features: int, out_features: int, width: int = 64):
        super().__init__()
        self.inp = nn.Linear(in_features, width)
        self.block = nn.Sequential(nn.LayerNorm(width), nn.Linear(width, width), nn.GELU(), nn.Linear(width, width))
        self.out = nn.Linear(width, out_features)

    def forward(self, x):
        h = self.inp(x)
        return self.out(h + self.block(h))
