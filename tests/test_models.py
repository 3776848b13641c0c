"""Built-in models: the MLP and the TabularMLP, rebuilt from their JSON spec without code."""

from __future__ import annotations

import json

import pytest
import torch

import fittorch as ft
from fittorch.errors import ConfigError
from fittorch.models import TabularMLP, build_model, embedding_size


def inputs(n=6):
    g = torch.Generator().manual_seed(0)
    return {"numeric": torch.randn(n, 3, generator=g),
            "categorical": torch.stack([torch.randint(0, 5, (n,), generator=g),
                                        torch.randint(0, 300, (n,), generator=g)], dim=1)}


def test_small_columns_are_one_hot_large_ones_embedded():
    model = TabularMLP(3, [5, 300], [16], 2, column_names=["island", "zip"])
    assert model.dims == [0, embedding_size(300)] and embedding_size(300) == min(50, round(1.6 * 300 ** 0.56))
    assert set(model.embeddings) == {"1"} and model.embeddings["1"].weight.shape == (300, embedding_size(300))
    assert model.mlp[0].in_features == 3 + 5 + embedding_size(300)
    assert model(**inputs()).shape == (6, 2)
    forced = TabularMLP(3, [5, 300], [16], 2, embedding_dims=[4, 0])
    assert forced.mlp[0].in_features == 3 + 4 + 300
    with pytest.raises(ConfigError, match="one entry per categorical column"):
        TabularMLP(3, [5, 300], [16], 2, embedding_dims=[4])


def test_the_tabular_model_is_rebuilt_from_its_json_spec(tmp_path):
    torch.manual_seed(0)
    model = TabularMLP(3, [5, 300], [16], 2, column_names=["island", "zip"], dropout=0.1)
    ft.save(model, tmp_path / "m")
    spec = json.loads((tmp_path / "m" / "model.json").read_text())["spec"]
    assert spec["type"] == "tabular_mlp" and spec["cardinalities"] == [5, 300]
    again = ft.load(tmp_path / "m")  # no class given: rebuilt from the spec
    model.eval()
    again.eval()
    x = inputs()
    assert torch.equal(model(**x), again(**x))
    assert isinstance(build_model(spec), TabularMLP)
