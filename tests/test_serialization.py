"""Saving and loading weights: safetensors + JSON, checked names and shapes."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

import fittorch as ft


def test_round_trip_of_a_builtin_model_rebuilds_from_json(tmp_path):
    model = ft.MLP(20, [64], 2)
    ft.save(model, tmp_path / "model.safetensors", metadata={"classes": ["a", "b"]})
    meta = json.loads((tmp_path / "model.json").read_text())
    assert meta["spec"] == {"type": "mlp", "in_features": 20, "hidden": [64], "out_features": 2,
                            "activation": "relu", "dropout": 0.0, "batchnorm": False}
    assert meta["classes"] == ["a", "b"]
    loaded = ft.load(tmp_path / "model.safetensors")
    assert loaded is not model
    for k, v in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[k], v)


def test_directory_paths_work(tmp_path):
    model = ft.MLP(4, [8], 3)
    ft.save(model, tmp_path / "run")
    assert (tmp_path / "run" / "model.safetensors").exists()
    assert isinstance(ft.load(tmp_path / "run"), ft.MLP)


def test_custom_model_needs_an_instance(tmp_path):
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    ft.save(model, tmp_path / "m.safetensors")
    with pytest.raises(ft.CheckpointError, match="pass it: fittorch.load"):
        ft.load(tmp_path / "m.safetensors")
    fresh = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    ft.load(tmp_path / "m.safetensors", model=fresh)
    assert torch.equal(fresh[0].weight, model[0].weight)


def test_shape_mismatch_is_named(tmp_path):
    ft.save(ft.MLP(20, [64], 2), tmp_path / "m.safetensors")
    with pytest.raises(ft.CheckpointError, match=r"0.weight: file \(64, 20\) vs model \(32, 20\)"):
        ft.load(tmp_path / "m.safetensors", model=ft.MLP(20, [32], 2))


def test_missing_and_unexpected_keys_are_named(tmp_path):
    ft.save(nn.Sequential(nn.Linear(2, 2)), tmp_path / "m.safetensors")
    with pytest.raises(ft.CheckpointError, match="missing in file: 1.bias"):
        ft.load(tmp_path / "m.safetensors", model=nn.Sequential(nn.Linear(2, 2), nn.Linear(2, 2)))


def test_truncated_file_is_a_checkpoint_error(tmp_path):
    ft.save(ft.MLP(4, [8], 2), tmp_path / "m.safetensors")
    data = (tmp_path / "m.safetensors").read_bytes()
    (tmp_path / "m.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ft.CheckpointError, match="truncated or damaged"):
        ft.load(tmp_path / "m.safetensors")


def test_file_is_safetensors_not_pickle(tmp_path):
    ft.save(ft.MLP(4, [8], 2), tmp_path / "m.safetensors")
    from safetensors import safe_open

    with safe_open(str(tmp_path / "m.safetensors"), framework="pt") as f:
        assert set(f.keys()) == {"0.weight", "0.bias", "2.weight", "2.bias"}
    assert not (tmp_path / "m.safetensors").read_bytes().startswith(b"\x80")  # no pickle protocol header


def test_trainer_save_and_load_give_identical_predictions(small_clf_data, tmp_path):
    X, y = small_clf_data
    trainer = ft.Trainer(ft.MLP(8, [16], 3), progress=False)
    trainer.fit((X, y), epochs=3)
    trainer.save(tmp_path / "model.safetensors")
    other = ft.Trainer(ft.load(tmp_path / "model.safetensors"), progress=False).load(tmp_path / "model.safetensors")
    assert torch.equal(other.predict(X), trainer.predict(X))
    assert other.evaluate((X, y)) == trainer.evaluate((X, y))


def test_tied_weights_are_saved(tmp_path):
    emb = nn.Linear(4, 4)
    model = nn.Sequential(emb, nn.ReLU(), nn.Linear(4, 4))
    model[2].weight = emb.weight
    ft.save(model, tmp_path / "t.safetensors")
    fresh = nn.Sequential(nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 4))
    ft.load(tmp_path / "t.safetensors", model=fresh)
    assert torch.equal(fresh[2].weight, emb.weight)
