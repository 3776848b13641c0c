"""LRScheduler: each named schedule against torch's own, per epoch or per step, and its state."""

from __future__ import annotations

import math

import pytest
import torch

import fittorch as ft
from fittorch.callbacks import Callback
from fittorch.errors import ConfigError


class LRTrace(Callback):
    """The learning rate used by every optimizer step."""

    order = -60  # before the scheduler steps

    def __init__(self):
        self.lrs = []

    def on_after_backward(self, trainer):
        self.lrs.append(trainer.optimizer.param_groups[0]["lr"])


def _fit(data, mlp, scheduler, *, epochs=6, batch_size=50, val=None, **kw):
    X, y = data
    trace = LRTrace()
    trainer = ft.Trainer(mlp(), optimizer="sgd", lr=0.1, callbacks=[scheduler, trace], progress=False, **kw)
    trainer.fit((X, y), val=val, epochs=epochs, batch_size=batch_size)
    return trainer, trace.lrs  # 200 rows / 50 = 4 steps per epoch


def _reference(make, n_steps, per_step, steps_per_epoch=4, **step_kw):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1)
    sched = make(opt)
    lrs = []
    for i in range(n_steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        if per_step or (i + 1) % steps_per_epoch == 0:
            sched.step(**step_kw)
    return lrs


def test_step_and_multistep_are_per_epoch(small_clf_data, mlp_factory):
    S = torch.optim.lr_scheduler
    trainer, lrs = _fit(small_clf_data, mlp_factory, ft.LRScheduler("step", step_size=2, gamma=0.5))
    assert lrs == pytest.approx(_reference(lambda o: S.StepLR(o, 2, 0.5), 24, per_step=False))
    assert trainer.history["lr"] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])  # the epoch's lr
    _, lrs = _fit(small_clf_data, mlp_factory, ft.LRScheduler("multistep", milestones=[1, 4], gamma=0.1))
    assert lrs == pytest.approx(_reference(lambda o: S.MultiStepLR(o, [1, 4], 0.1), 24, per_step=False))


def test_cosine_with_warmup_is_per_step(small_clf_data, mlp_factory):
    _, lrs = _fit(small_clf_data, mlp_factory, ft.LRScheduler("cosine", warmup_epochs=1, min_lr=0.01))
    assert len(lrs) == 24
    assert lrs[:4] == pytest.approx([0.025, 0.05, 0.075, 0.1])  # linear warmup over the first epoch's 4 steps
    expected = [0.01 + 0.09 * 0.5 * (1 + math.cos(math.pi * (s - 4) / 20)) for s in range(4, 24)]
    assert lrs[4:] == pytest.approx(expected)


def test_onecycle_matches_torch(small_clf_data, mlp_factory):
    S = torch.optim.lr_scheduler
    _, lrs = _fit(small_clf_data, mlp_factory, ft.LRScheduler("onecycle", max_lr=0.5, pct_start=0.25))
    ref = _reference(lambda o: S.OneCycleLR(o, max_lr=0.5, total_steps=24, pct_start=0.25), 24, per_step=True)
    assert lrs == pytest.approx(ref)


def test_per_step_schedules_count_optimizer_steps_under_accumulation(small_clf_data, mlp_factory):
    _, lrs = _fit(small_clf_data, mlp_factory, ft.LRScheduler("cosine"), epochs=2, batch_size=25,
                  accumulate_steps=2)  # 8 micro-batches -> 4 optimizer steps per epoch
    assert len(lrs) == 8
    assert lrs == pytest.approx([0.05 * (1 + math.cos(math.pi * s / 8)) for s in range(8)])


def test_reduce_on_plateau_reads_the_monitored_value(small_clf_data, mlp_factory):
    X, y = small_clf_data
    sched = ft.LRScheduler("reduce_on_plateau", monitor="val_accuracy", patience=0, factor=0.5)
    trainer, _ = _fit(small_clf_data, mlp_factory, sched, epochs=8, val=(X[:20], y[:20]))
    assert sched.scheduler.mode == "max"
    acc, lr = trainer.history["val_accuracy"], trainer.history["lr"]
    best = -1.0
    for i in range(len(acc) - 1):  # patience 0: every epoch without a new best halves the next lr
        improved = acc[i] > best * (1 + 1e-4)
        best = max(best, acc[i])
        assert lr[i + 1] == pytest.approx(lr[i] if improved else lr[i] * 0.5)


def test_a_torch_scheduler_instance(small_clf_data, mlp_factory):
    X, y = small_clf_data
    model = mlp_factory()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    sched = ft.LRScheduler(torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.5))
    trainer = ft.Trainer(model, optimizer=opt, callbacks=[sched], progress=False)
    trainer.fit((X, y), epochs=3, batch_size=100)
    assert trainer.history["lr"] == pytest.approx([0.1, 0.05, 0.025])


class StopAt(Callback):
    def __init__(self, epoch):
        self.epoch = epoch

    def on_epoch_end(self, trainer, row):
        if row["epoch"] == self.epoch:
            trainer.state.should_stop = True


def test_state_dict_resumes_the_schedule(small_clf_data, mlp_factory):
    X, y = small_clf_data
    _, lrs_full = _fit(small_clf_data, mlp_factory, ft.LRScheduler("cosine", warmup_steps=3))

    first = ft.LRScheduler("cosine", warmup_steps=3)
    trainer = ft.Trainer(mlp_factory(), optimizer="sgd", lr=0.1, callbacks=[first, StopAt(3)], progress=False)
    trainer.fit((X, y), epochs=6, batch_size=50)  # stopped after 3 of 6 epochs
    saved = first.state_dict()
    assert saved["scheduler"]["last_epoch"] == 12
    # A new scheduler loaded with the saved state continues the same schedule exactly.
    again = ft.LRScheduler("cosine", warmup_steps=3)
    again.load_state_dict(saved)
    trace = LRTrace()
    trainer.callbacks = [again, trace]
    trainer.fit((X, y), epochs=3, batch_size=50)
    assert trace.lrs == pytest.approx(lrs_full[12:])


def test_bad_scheduler_arguments():
    with pytest.raises(ConfigError, match="Did you mean 'cosine'"):
        ft.LRScheduler("cosin")
    with pytest.raises(ConfigError, match="needs milestones"):
        ft.LRScheduler("multistep")
    with pytest.raises(ConfigError, match="Did you mean 'step_size'"):
        ft.LRScheduler("step", stepsize=3)
    with pytest.raises(ConfigError, match="interval"):
        ft.LRScheduler("step", interval="batch")
