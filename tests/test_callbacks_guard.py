"""The non-finite guard: stop on NaN/inf losses or gradients, or skip bad steps bitwise-exactly."""

from __future__ import annotations

import math

import pytest
import torch

import fittorch as ft
from fittorch.callbacks import Callback
from fittorch.errors import TrainingError


class PoisonGrad(Callback):
    """Turns the gradients of the chosen optimizer steps (1-based) into NaN, leaving the loss finite."""

    order = -200  # before the guard and the clipping see the gradients

    def __init__(self, steps, value=float("nan")):
        self.steps, self.value = set(steps), value
        self.step = 0

    def on_after_backward(self, trainer):
        self.step += 1
        if self.step in self.steps:
            for p in trainer.model.parameters():
                p.grad.fill_(self.value)


class Weights(Callback):
    """The weights after every batch (a test helper)."""

    def __init__(self):
        self.after = []

    def on_fit_start(self, trainer):
        self.before = {k: v.clone() for k, v in trainer.model.state_dict().items()}

    def on_train_batch_end(self, trainer, loss):
        self.after.append({k: v.clone() for k, v in trainer.model.state_dict().items()})


def test_nan_loss_stops_naming_the_step(small_clf_data, mlp_factory):
    X, y = small_clf_data
    calls = {"n": 0}

    def loss(out, target):
        calls["n"] += 1
        value = torch.nn.functional.cross_entropy(out, target)
        return value * float("nan") if calls["n"] == 8 else value  # call 1: the dry run

    trainer = ft.Trainer(mlp_factory(), loss=loss, progress=False)
    with pytest.raises(TrainingError, match=r"epoch 2, batch 3 \(global step 7\)"):
        trainer.fit((X, y), epochs=3, batch_size=50)
    assert trainer.state.status == "failed" and len(trainer.history) == 1


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_nonfinite_gradients_with_a_finite_loss_stop_at_the_epoch_end(small_clf_data, mlp_factory, value):
    X, y = small_clf_data
    saved = []

    class Saver(Callback):  # stands in for a checkpoint callback: it must never see poisoned weights
        def on_epoch_end(self, trainer, row):
            saved.append(all(torch.isfinite(p).all() for p in trainer.model.parameters()))

    # Step 4 is the last of epoch 1 (4 batches): the loss never sees the poisoned weights.
    trainer = ft.Trainer(mlp_factory(), optimizer="sgd", callbacks=[PoisonGrad({4}, value), Saver()],
                         progress=False)
    with pytest.raises(TrainingError, match="gradients became non-finite .* during epoch 1"):
        trainer.fit((X, y), epochs=3, batch_size=50)
    assert saved == []  # the guard ran first and refused the epoch

    clip = ft.GradientClipping(max_norm=1.0)  # its per-step norms name the exact step
    trainer = ft.Trainer(mlp_factory(), optimizer="adam", callbacks=[PoisonGrad({8}, value), clip], progress=False)
    with pytest.raises(TrainingError, match=r"at epoch 2, step 4 of the epoch \(global step 8\)"):
        trainer.fit((X, y), epochs=3, batch_size=50)


def test_nonfinite_gradients_mid_epoch_are_caught_through_the_next_loss(small_clf_data, mlp_factory):
    X, y = small_clf_data
    trainer = ft.Trainer(mlp_factory(), optimizer="adam", callbacks=[PoisonGrad({6})], progress=False)
    with pytest.raises(TrainingError, match=r"epoch 2, batch 3 \(global step 7\)"):  # the first poisoned forward
        trainer.fit((X, y), epochs=3, batch_size=50)


def test_skip_mode_leaves_the_weights_bitwise_unchanged(small_clf_data, mlp_factory):
    X, y = small_clf_data
    weights = Weights()
    trainer = ft.Trainer(mlp_factory(), nonfinite="skip", callbacks=[PoisonGrad({2, 6}), weights], progress=False)
    history = trainer.fit((X, y), epochs=2, batch_size=50)
    guard = next(cb for cb in trainer.callbacks if isinstance(cb, ft.NonFiniteGuard))
    assert guard.skipped == 2 and history["skipped_steps"] == [1, 1]
    for bad in (2, 6):  # after a skipped step the weights are exactly those before it
        before, after = weights.after[bad - 2], weights.after[bad - 1]
        assert all(torch.equal(before[k], after[k]) for k in before)
    assert not all(torch.equal(weights.after[2][k], weights.after[1][k]) for k in weights.before)  # a good step moved
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    # Adam's state too: a skipped step did not count as a step.
    assert int(trainer.optimizer.state[next(iter(trainer.model.parameters()))]["step"]) == 8 - 2


def test_skip_mode_skips_a_nan_loss_and_keeps_the_epoch_loss_finite(small_clf_data, mlp_factory):
    X, y = small_clf_data
    calls = {"n": 0}

    def loss(out, target):
        calls["n"] += 1
        value = torch.nn.functional.cross_entropy(out, target)
        return value + float("inf") if calls["n"] == 4 else value  # call 1: the dry run

    trainer = ft.Trainer(mlp_factory(), loss=loss, nonfinite="skip", progress=False)
    history = trainer.fit((X, y), epochs=2, batch_size=50)
    assert history["skipped_steps"] == [1, 0]
    assert all(math.isfinite(v) for v in history["train_loss"])


def test_ignore_mode_has_no_guard(small_clf_data, mlp_factory):
    X, y = small_clf_data
    trainer = ft.Trainer(mlp_factory(), nonfinite="ignore", callbacks=[PoisonGrad({1})], progress=False)
    history = trainer.fit((X, y), epochs=1, batch_size=50)
    assert not any(isinstance(cb, ft.NonFiniteGuard) for cb in trainer.callbacks)
    assert math.isnan(history["train_loss"][0])
