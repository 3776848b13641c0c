"""Mixed precision and gradient accumulation: they change speed/memory, not what is learned."""

from __future__ import annotations

import pytest
import torch

import fittorch as ft
from fittorch.errors import ConfigError

from conftest import make_mlp


def _fit(X, y, *, seed=0, **kwargs):
    fit_args = {k: kwargs.pop(k) for k in ("epochs", "batch_size", "shuffle") if k in kwargs}
    trainer = ft.Trainer(make_mlp(seed=seed), optimizer=kwargs.pop("optimizer", "adam"), lr=kwargs.pop("lr", 1e-2),
                         device="cpu", progress=False, **kwargs)
    trainer.fit((X, y), val=(X, y), **{"epochs": 15, "batch_size": 32, **fit_args})
    return trainer


def test_bf16_autocast_runs_in_bfloat16_and_trains_to_similar_accuracy(small_clf_data):
    X, y = small_clf_data
    fp32 = _fit(X, y)
    bf16 = _fit(X, y, precision="bf16")
    acc32, acc16 = fp32.history.last["val_accuracy"], bf16.history.last["val_accuracy"]
    seen = []
    layer = bf16.model[0]
    handle = layer.register_forward_hook(lambda m, i, out: seen.append(out.dtype) if m.training else None)
    bf16.fit((X, y), epochs=1, batch_size=64)
    handle.remove()
    assert len(seen) == 4 and set(seen) == {torch.bfloat16}  # every train step ran the Linear in bf16
    assert layer.weight.dtype == torch.float32  # master weights stay fp32
    assert acc16 >= 0.9
    assert abs(acc16 - acc32) <= 0.05
    assert abs(bf16.history[0]["train_loss"] - fp32.history[0]["train_loss"]) < 0.05


def test_bf16_predictions_come_back_as_float32(small_clf_data):
    X, y = small_clf_data
    trainer = _fit(X, y, precision="bf16", epochs=1)
    assert trainer.predict(X[:5]).dtype == torch.float32


def test_fp16_needs_cuda_and_says_what_to_use_instead(small_clf_data):
    with pytest.raises(ConfigError, match="bf16"):
        ft.Trainer(make_mlp(), precision="fp16", device="cpu")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="fp16 + GradScaler needs CUDA (none on this machine)")
def test_fp16_with_grad_scaler_trains_on_cuda(small_clf_data):
    X, y = small_clf_data
    trainer = ft.Trainer(make_mlp(), lr=1e-2, precision="fp16", device="cuda", progress=False)
    trainer.fit((X, y), val=(X, y), epochs=15, batch_size=32)
    assert trainer.step.scaler is not None
    assert trainer.history.last["val_accuracy"] >= 0.9


def _weights(trainer):
    return [p.detach().clone() for p in trainer.model.parameters()]


@pytest.mark.parametrize("n_rows", [64, 56])  # 56: the last window holds 3 micro-batches (24 rows)
def test_accumulating_4x8_equals_one_batch_of_32(small_clf_data, n_rows):
    X, y = small_clf_data
    X, y = X[:n_rows], y[:n_rows]
    common = dict(optimizer="sgd", lr=0.1, metrics=[], epochs=3, shuffle=False)
    big = _fit(X, y, batch_size=32, **common)
    acc = _fit(X, y, batch_size=8, accumulate_steps=4, **common)
    assert acc.state.global_step == big.state.global_step == 3 * 2  # one optimizer step per window
    for a, b in zip(_weights(acc), _weights(big)):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # ...and they really moved: the comparison is not between two untouched models.
    assert not torch.equal(_weights(big)[0], make_mlp()[0].weight)


def test_accumulation_is_not_the_same_as_small_batches(small_clf_data):
    """The control: without accumulation, batch 8 takes 4x the steps and ends elsewhere."""
    X, y = small_clf_data
    X, y = X[:64], y[:64]
    common = dict(optimizer="sgd", lr=0.1, metrics=[], epochs=3, shuffle=False)
    big = _fit(X, y, batch_size=32, **common)
    small = _fit(X, y, batch_size=8, **common)
    assert small.state.global_step == 4 * big.state.global_step
    assert not torch.allclose(_weights(small)[0], _weights(big)[0], atol=1e-4)
