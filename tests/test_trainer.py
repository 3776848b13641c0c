"""The Trainer's public API: fit/evaluate/predict, devices, names, and early errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.metrics import accuracy_score, mean_squared_error, r2_score
from torch import nn

import fittorch as ft


def test_reference_api_trains_and_evaluates(ref_data):
    (X_train, y_train), (X_test, y_test) = ref_data
    ft.seed_everything(42)
    model = nn.Sequential(nn.Linear(20, 64), nn.ReLU(), nn.Linear(64, 2))
    trainer = ft.Trainer(model, loss="cross_entropy", optimizer="adam", lr=1e-3, metrics=["accuracy"],
                         device="auto", seed=42, progress=False)
    history = trainer.fit((X_train, y_train), val=(X_test, y_test), epochs=20, batch_size=32)
    assert len(history) == 20
    assert set(history.columns) >= {"epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"}
    result = trainer.evaluate((X_test, y_test))
    assert set(result) == {"loss", "accuracy"}
    assert result["accuracy"] > 0.8
    # metric agrees with sklearn's, computed from predict()
    pred = trainer.predict(X_test).argmax(1).numpy()
    assert result["accuracy"] == pytest.approx(accuracy_score(y_test, pred), abs=1e-7)
    assert history[-1]["val_accuracy"] == pytest.approx(result["accuracy"], abs=1e-7)


def test_val_loss_is_the_sample_weighted_mean(small_clf_data):
    X, y = small_clf_data
    trainer = ft.Trainer(nn.Linear(8, 3), progress=False)
    trainer.fit((X, y), epochs=1, batch_size=32)
    full = nn.functional.cross_entropy(trainer.predict(X), torch.from_numpy(y).long()).item()
    assert trainer.evaluate((X, y), batch_size=7)["loss"] == pytest.approx(full, rel=1e-5)


def test_regression_metrics_match_sklearn(small_reg_data):
    X, y = small_reg_data
    model = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Linear(16, 1), nn.Flatten(0))
    trainer = ft.Trainer(model, loss="mse", lr=1e-2, metrics=["mse", "mae", "r2"], progress=False)
    trainer.fit((X, y), epochs=30, batch_size=32)
    res = trainer.evaluate((X, y))
    pred = trainer.predict(X).numpy()
    assert res["mse"] == pytest.approx(mean_squared_error(y, pred), rel=1e-4)
    assert res["r2"] == pytest.approx(r2_score(y, pred), rel=1e-4)
    assert res["r2"] > 0.9


def test_binary_bce_with_logits_accuracy(small_clf_data):
    X, y = small_clf_data
    yb = (y == 0).astype(np.float32)
    model = nn.Sequential(nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 1), nn.Flatten(0))
    trainer = ft.Trainer(model, loss="bce_with_logits", lr=1e-2, progress=False)
    trainer.fit((X, yb), epochs=10, batch_size=32)
    acc = trainer.evaluate((X, yb))["accuracy"]
    pred = (trainer.predict(X) > 0).numpy().astype(np.float32)
    assert acc == pytest.approx(accuracy_score(yb, pred), abs=1e-7)


def test_model_data_and_loss_share_the_device(small_clf_data):
    X, y = small_clf_data
    trainer = ft.Trainer(nn.Linear(8, 3), device="cpu", progress=False)
    assert trainer.device == torch.device("cpu")
    assert all(p.device.type == "cpu" for p in trainer.model.parameters())
    trainer.fit((torch.from_numpy(X), torch.from_numpy(y)), epochs=1)
    assert trainer.predict(X).device.type == "cpu"


def test_auto_device_picks_cuda_then_mps_then_cpu():
    from fittorch.device import resolve_device

    dev = resolve_device("auto")
    expected = "cuda" if torch.cuda.is_available() else (
        "mps" if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available() else "cpu")
    assert dev.type == expected


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on machines without CUDA")
def test_cuda_requested_without_cuda_is_a_clear_error():
    with pytest.raises(ft.ConfigError, match="CUDA is not available"):
        ft.Trainer(nn.Linear(2, 2), device="cuda")


@pytest.mark.parametrize("name", ["cross_entropy", "nll", "bce", "bce_with_logits", "mse", "l1", "smooth_l1", "huber"])
def test_loss_names_resolve(name):
    from fittorch.losses import resolve_loss

    fn, info = resolve_loss(name)
    assert isinstance(fn, nn.Module) and info.name == name


@pytest.mark.parametrize("name,cls", [("sgd", torch.optim.SGD), ("adam", torch.optim.Adam),
                                      ("adamw", torch.optim.AdamW), ("rmsprop", torch.optim.RMSprop),
                                      ("adagrad", torch.optim.Adagrad)])
def test_optimizer_names_resolve(name, cls):
    trainer = ft.Trainer(nn.Linear(2, 2), optimizer=name, lr=0.05, progress=False)
    assert type(trainer.optimizer) is cls
    assert trainer.optimizer.param_groups[0]["lr"] == 0.05
    if name == "sgd":
        assert trainer.optimizer.param_groups[0]["momentum"] == 0.9


def test_optimizer_instance_and_factory_are_used_as_given():
    model = nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.3)
    assert ft.Trainer(model, optimizer=opt, progress=False).optimizer is opt
    trainer = ft.Trainer(nn.Linear(2, 2), optimizer=lambda params: torch.optim.Adam(params, lr=0.2), progress=False)
    assert trainer.optimizer.param_groups[0]["lr"] == 0.2


@pytest.mark.parametrize("kwargs,match", [
    ({"loss": "cross_entropyy"}, "Did you mean 'cross_entropy'"),
    ({"optimizer": "adan"}, "Did you mean 'adam'"),
    ({"optimizer": "adam", "optimizer_kwargs": {"weight_decy": 0.1}}, "Did you mean 'weight_decay'"),
    ({"precision": "fp8"}, "Unknown precision 'fp8'"),
])
def test_unknown_names_get_did_you_mean(kwargs, match):
    with pytest.raises(ft.ConfigError, match=match):
        ft.Trainer(nn.Linear(2, 2), **kwargs)


def test_unknown_metric_gets_did_you_mean(small_clf_data):
    X, y = small_clf_data
    trainer = ft.Trainer(nn.Linear(8, 3), metrics=["acuracy"], progress=False)
    with pytest.raises(ft.ConfigError, match="Did you mean 'accuracy'"):
        trainer.fit((X, y), epochs=1)


def test_predict_before_fit_is_a_clear_error():
    trainer = ft.Trainer(nn.Linear(4, 2), progress=False)
    with pytest.raises(ft.NotFittedError, match="before fit"):
        trainer.predict(np.zeros((2, 4), dtype=np.float32))


def test_one_call_fit_returns_the_trainer(small_clf_data):
    X, y = small_clf_data
    trainer = ft.fit(nn.Linear(8, 3), (X, y), val=(X, y), epochs=2, batch_size=50, progress=False)
    assert isinstance(trainer, ft.Trainer) and len(trainer.history) == 2


def test_num_threads_is_restored_after_fit(small_clf_data):
    X, y = small_clf_data
    torch.set_num_threads(2)
    ft.Trainer(nn.Linear(8, 3), num_threads="auto", progress=False).fit((X, y), epochs=1)
    assert torch.get_num_threads() == 2


def test_optimizer_instance_with_lr_is_refused(mlp_factory):
    import torch as _torch

    model = mlp_factory()
    opt = _torch.optim.SGD(model.parameters(), lr=0.01)
    with pytest.raises(ft.ConfigError, match=r"lr=0.5 was also given.*ignored"):
        ft.Trainer(model, optimizer=opt, lr=0.5, progress=False)
    assert ft.Trainer(model, optimizer=opt, progress=False).optimizer is opt  # alone it is used as is
