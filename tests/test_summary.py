"""model_summary: layers, output shapes and parameter counts."""

from __future__ import annotations

import torch
from torch import nn

import fittorch as ft


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(10, 32), nn.ReLU(), nn.BatchNorm1d(32))
        self.head = nn.Linear(32, 3)
        self.head.bias.requires_grad_(False)

    def forward(self, x):
        return self.head(self.body(x))


def test_summary_counts_and_shapes():
    s = ft.model_summary(Net(), torch.zeros(4, 10))
    rows = {layer.name: layer for layer in s.layers}
    assert list(rows) == ["body", "body.0", "body.1", "body.2", "head"]
    assert rows["body.0"].params == 352 and rows["body.0"].output_shape == (4, 32)
    assert rows["body.2"].params == 64 and rows["head"].output_shape == (4, 3)
    assert s.total_params == sum(p.numel() for p in Net().parameters()) == 352 + 64 + 99
    assert s.trainable_params == s.total_params - 3
    text = str(s)
    assert "Total params: 515  (trainable 512, non-trainable 3)" in text
    assert "[4, 32]" in text and "BatchNorm1d" in text
    assert s.to_dict()["layers"][0]["type"] == "Sequential"


def test_summary_without_input_and_of_a_bare_module():
    s = ft.model_summary(nn.Linear(3, 2))
    assert s.total_params == 8 and s.layers[0].type == "Linear"
    assert "Output shape" not in str(s)
    net = Net()
    net.train()
    ft.model_summary(net, torch.zeros(2, 10))
    assert net.training  # the forward ran in eval mode and the mode was restored
