"""The training loop: step order, train/eval modes, shuffling, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

import fittorch as ft


class RecordingOptimizer(torch.optim.SGD):
    def __init__(self, params, log):
        super().__init__(params, lr=0.1)
        self.log = log

    def zero_grad(self, set_to_none: bool = True):
        self.log.append(("zero_grad", set_to_none))
        super().zero_grad(set_to_none=set_to_none)

    def step(self, closure=None):
        self.log.append("step")
        return super().step(closure)


class RecordingModel(nn.Module):
    def __init__(self, log):
        super().__init__()
        self.fc = nn.Linear(4, 2)
        self.log = log
        self.fc.weight.register_hook(lambda g: self.log.append("backward") or g)

    def forward(self, x):
        self.log.append(("forward", self.training, torch.is_grad_enabled()))
        return self.fc(x)


def test_each_step_is_forward_loss_zero_grad_backward_step():
    log = []
    model = RecordingModel(log)
    ce = nn.CrossEntropyLoss()

    def loss(out, y):
        log.append("loss")
        return ce(out, y)

    trainer = ft.Trainer(model, loss=loss, optimizer=RecordingOptimizer(model.parameters(), log),
                         metrics=[], progress=False)
    X = torch.randn(10, 4)
    y = torch.randint(0, 2, (10,))
    trainer.fit((X, y), epochs=1, batch_size=4)
    # first the dry run in eval mode without grad: forward and the custom loss, checked once
    assert log[:2] == [("forward", False, False), "loss"]
    train_calls = log[2:]
    one_step = [("forward", True, True), "loss", ("zero_grad", True), "backward", "step"]
    assert train_calls == one_step * 3


def test_validation_runs_in_eval_mode_without_grad_and_mode_is_restored():
    log = []
    model = RecordingModel(log)
    trainer = ft.Trainer(model, loss="cross_entropy", optimizer="sgd", lr=0.1, progress=False)
    X = torch.randn(12, 4)
    y = torch.randint(0, 2, (12,))
    model.train()
    trainer.fit((X, y), val=(X, y), epochs=2, batch_size=6)
    forwards = [c for c in log if isinstance(c, tuple) and c[0] == "forward"]
    train_f = [f for f in forwards if f[1]]
    eval_f = [f for f in forwards if not f[1]]
    assert all(grad for _, _, grad in train_f) and len(train_f) == 4
    assert eval_f and not any(grad for _, _, grad in eval_f)
    assert model.training  # left as the user had it
    model.eval()
    trainer.fit((X, y), epochs=1, batch_size=6)
    assert not model.training
    trainer.predict(X)
    assert not model.training


def test_dropout_is_active_in_training_and_off_in_evaluation():
    model = nn.Sequential(nn.Linear(4, 64), nn.Dropout(0.5), nn.Linear(64, 2))
    trainer = ft.Trainer(model, optimizer="sgd", lr=0.0, progress=False)
    X = torch.randn(16, 4)
    y = torch.randint(0, 2, (16,))
    trainer.fit((X, y), epochs=1, batch_size=16)
    a, b = trainer.predict(X), trainer.predict(X)
    assert torch.equal(a, b)  # eval mode: deterministic


def _train(seed, shuffle=True, epochs=3, data=None):
    X, y = data
    ft.seed_everything(seed)
    model = nn.Sequential(nn.Linear(X.shape[1], 16), nn.ReLU(), nn.Dropout(0.2), nn.Linear(16, 3))
    trainer = ft.Trainer(model, lr=1e-2, seed=seed, progress=False)
    trainer.fit((X, y), val=(X[:50], y[:50]), epochs=epochs, batch_size=16, shuffle=shuffle)
    return trainer


def test_same_seed_gives_bit_identical_weights(small_clf_data):
    a = _train(3, data=small_clf_data).model.state_dict()
    b = _train(3, data=small_clf_data).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    c = _train(4, data=small_clf_data).model.state_dict()
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_shuffle_false_reproduces_the_plain_in_order_loop(small_clf_data):
    X, y = small_clf_data
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    reference = nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3))
    reference.load_state_dict(model.state_dict())

    Xt, yt = torch.from_numpy(X), torch.from_numpy(y).long()
    opt = torch.optim.Adam(reference.parameters(), lr=1e-3)
    crit = nn.CrossEntropyLoss()
    losses = []
    for _ in range(2):
        epoch_loss = []
        reference.train()
        for i in range(0, len(Xt), 32):
            out = reference(Xt[i:i + 32])
            loss = crit(out, yt[i:i + 32])
            opt.zero_grad()
            loss.backward()
            opt.step()
            epoch_loss.append(loss.item())
        losses.append(float(np.mean(epoch_loss)))

    trainer = ft.Trainer(model, optimizer=lambda p, **kw: torch.optim.Adam(p, lr=1e-3), progress=False,
                         device="cpu")  # the reference loop above runs on the CPU
    history = trainer.fit((X, y), epochs=2, batch_size=32, shuffle=False)
    for k, v in reference.state_dict().items():
        assert torch.equal(model.state_dict()[k], v), k
    assert history["train_loss"] == pytest.approx(losses, rel=1e-6)


def test_shuffle_changes_order_every_epoch_and_keeps_every_sample():
    from fittorch.data import InMemoryData

    data = InMemoryData(torch.arange(10).float().unsqueeze(1), torch.arange(10))
    seen = []
    for epoch in range(3):
        order = data.epoch_order(seed=0, epoch=epoch, shuffle=True)
        rows = torch.cat([t for _, t in data.batches(3, order)])
        seen.append(rows.tolist())
        assert sorted(rows.tolist()) == list(range(10))
    assert seen[0] != seen[1] != seen[2]
    # rebuilt exactly from (seed, epoch): what resume relies on
    assert torch.equal(data.epoch_order(0, 1, True), data.epoch_order(0, 1, True))


def test_last_partial_batch_is_kept_unless_drop_last(small_clf_data):
    X, y = small_clf_data  # 200 rows
    trainer = ft.Trainer(nn.Linear(8, 3), progress=False)
    trainer.fit((X, y), epochs=1, batch_size=64)
    assert trainer.state.global_step == 4
    trainer = ft.Trainer(nn.Linear(8, 3), progress=False)
    trainer.fit((X, y), epochs=1, batch_size=64, drop_last=True)
    assert trainer.state.global_step == 3


def test_fit_again_continues_training(small_clf_data):
    X, y = small_clf_data
    trainer = ft.Trainer(nn.Linear(8, 3), progress=False)
    trainer.fit((X, y), epochs=2, batch_size=50)
    trainer.fit((X, y), epochs=3, batch_size=50)
    assert [r["epoch"] for r in trainer.history] == [1, 2, 3, 4, 5]
    assert trainer.state.global_step == 20


def test_callback_stops_with_a_flag(small_clf_data):
    X, y = small_clf_data

    class StopAfterTwo(ft.Callback):
        def on_epoch_end(self, trainer, row):
            if row["epoch"] == 2:
                trainer.state.should_stop = True
                trainer.state.stop_reason = "enough"

    trainer = ft.Trainer(nn.Linear(8, 3), callbacks=[StopAfterTwo()], progress=False)
    trainer.fit((X, y), epochs=10, batch_size=50)
    assert len(trainer.history) == 2
    assert trainer.state.status == "stopped" and trainer.state.stop_reason == "enough"


def test_nonfinite_loss_stops_with_a_message_naming_the_step():
    X = torch.randn(20, 4)
    y = torch.randint(0, 2, (20,))
    model = nn.Linear(4, 2)
    trainer = ft.Trainer(model, optimizer="sgd", lr=1e30, progress=False)
    with pytest.raises(ft.TrainingError, match=r"non-finite .* epoch \d+, batch \d+ \(global step \d+\)"):
        trainer.fit((X * 1e20, y), epochs=3, batch_size=5)
    assert trainer.state.status == "failed"


def test_long_epochs_fold_batch_losses_into_chunks_without_changing_the_mean():
    from fittorch.loop import _LOSS_CHUNK, stack_losses

    seen = {}

    class Peek(ft.Callback):
        def on_train_batch_end(self, trainer, loss):
            seen["losses"] = [t.detach().clone() for t in trainer.epoch_losses]

    n_batches = 2 * _LOSS_CHUNK + 7
    X = torch.randn(n_batches * 2, 4)
    y = torch.randint(0, 2, (n_batches * 2,))
    trainer = ft.Trainer(nn.Linear(4, 2), metrics=[], callbacks=[Peek()], progress=False)
    history = trainer.fit((X, y), epochs=1, batch_size=2)
    shapes = [tuple(t.shape) for t in seen["losses"]]
    assert shapes == [(_LOSS_CHUNK,), (_LOSS_CHUNK,)] + [()] * 7
    assert history[-1]["train_loss"] == float(stack_losses(seen["losses"]).mean())


# -- the loop with a fake step: it depends on the LoopContext only ------------------------------
class FakeModel:
    def __init__(self):
        self.training = False
        self.modes = []

    def train(self, mode=True):
        self.training = mode
        self.modes.append(mode)

    def eval(self):
        self.train(False)


class FakeStep:
    """No torch model at all: records what the loop asks of a step."""

    def __init__(self):
        self.model = FakeModel()
        self.calls = []
        self.last_output = None
        self.scaler = None  # fp32: the loop never asks for a loss-scale update

    def train_step(self, batch, window):
        self.calls.append((batch[1].tolist(), window))
        self.last_output = batch[0][0] * 2
        return torch.tensor(float(len(self.calls)))

    def eval_step(self, batch):
        return batch[0][0], torch.tensor(0.5)

    def eval_view(self, model):
        return self

    def lrs(self):
        return {"lr": 0.1}


def _ctx(step, callbacks=(), **kw):
    from fittorch.distributed import DistContext
    from fittorch.loop import LoopContext
    from fittorch.metrics import MetricSet
    from fittorch.state import TrainState
    from fittorch.task import OutputKind

    state = TrainState(max_epochs=kw.pop("epochs", 1))
    return LoopContext(step=step, state=state, callbacks=list(callbacks), dist=DistContext(),
                       metrics=MetricSet({}, OutputKind("regression")), host="HOST", **kw)


def test_fit_loop_runs_a_fake_step_with_accumulation_windows_and_hooks():
    from fittorch.data import InMemoryData
    from fittorch.loop import fit_loop
    from fittorch.step import Window

    events = []

    class Spy(ft.Callback):
        def on_train_batch_end(self, trainer, loss, batch, output):
            events.append((trainer, float(loss), batch[1].tolist(), output.reshape(-1).tolist()))

    step = FakeStep()
    data = InMemoryData(torch.arange(5).float().unsqueeze(1), torch.arange(5))
    ctx = _ctx(step, [Spy()], accumulate_steps=2)
    fit_loop(ctx, data, data, batch_size=2, shuffle=False, drop_last=False)
    assert step.calls == [([0, 1], Window(True, False, 2 / 4)), ([2, 3], Window(False, True, 2 / 4)),
                          ([4], Window(True, True, 1.0))]
    assert [e[0] for e in events] == ["HOST"] * 3 and events[2][2:] == ([4], [8.0])
    state = ctx.state
    assert state.global_step == 2 and state.epoch == 1 and state.status == "finished"
    assert state.history[-1]["train_loss"] == 2.0 and state.history[-1]["val_loss"] == 0.5
    assert state.history[-1]["lr"] == 0.1
    assert step.model.modes[0] is True  # train mode for the epoch, eval for validation after it


def test_a_batch_start_hook_replaces_or_skips_batches():
    from fittorch.callbacks import SKIP_BATCH
    from fittorch.data import InMemoryData
    from fittorch.loop import fit_loop

    class Edit(ft.Callback):
        def on_train_batch_start(self, trainer, batch):
            inputs, target = batch
            if int(target[0]) == 2:
                return SKIP_BATCH
            return inputs, target + 100

    step = FakeStep()
    data = InMemoryData(torch.arange(6).float().unsqueeze(1), torch.arange(6))
    ctx = _ctx(step, [Edit()])
    fit_loop(ctx, data, None, batch_size=2, shuffle=False, drop_last=False)
    assert [c[0] for c in step.calls] == [[100, 101], [104, 105]]
    assert ctx.state.global_step == 2 and ctx.state.history[-1]["train_loss"] == 1.5


def test_val_every_steps_validates_inside_the_epoch():
    from fittorch.data import InMemoryData
    from fittorch.loop import fit_loop

    step = FakeStep()
    data = InMemoryData(torch.arange(8).float().unsqueeze(1), torch.arange(8))
    ctx = _ctx(step, val_every_steps=2, epochs=2)
    fit_loop(ctx, data, data, batch_size=2, shuffle=False, drop_last=False)
    assert [(v["global_step"], v["epoch"], v["batch"]) for v in ctx.state.step_validations] == [
        (2, 1, 2), (4, 1, 4), (6, 2, 2), (8, 2, 4)]
    assert all(v["val_loss"] == 0.5 for v in ctx.state.step_validations)


def test_val_every_steps_must_be_a_non_negative_integer():
    with pytest.raises(ft.ConfigError, match=r"val_every_steps=-1; expected an integer >= 0"):
        ft.Trainer(nn.Linear(4, 2), progress=False).fit((torch.randn(8, 4), torch.randint(0, 2, (8,))),
                                                        val_every_steps=-1)


def test_hooks_see_the_batch_and_outputs_and_add_history_columns():
    X = torch.randn(40, 4)
    y = torch.randint(0, 2, (40,))
    seen = []

    class Watch(ft.Callback):
        def on_train_batch_end(self, trainer, loss, batch, output):
            seen.append((tuple(batch[0][0].shape), tuple(output.shape)))

        def on_epoch_end(self, trainer, row):
            trainer.add_to_history(row, batches_seen=len(seen))

    class OldStyle(ft.Callback):  # the two-argument form still works
        def on_train_batch_end(self, trainer, loss):
            seen.append("old")

    trainer = ft.Trainer(nn.Linear(4, 2), callbacks=[Watch(), OldStyle()], progress=False)
    history = trainer.fit((X, y), epochs=1, batch_size=16)
    assert seen == [((16, 4), (16, 2)), "old", ((16, 4), (16, 2)), "old", ((8, 4), (8, 2)), "old"]
    assert history[-1]["batches_seen"] == 6
