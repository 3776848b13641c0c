"""The train step's fast path and its opt-in hook (the step order itself is tested in test_loop.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import fittorch as ft
from fittorch.callbacks import Callback

from conftest import make_mlp

SYNCS = ("item", "tolist", "__float__", "__int__", "__bool__", "cpu", "numpy")


def _count_host_syncs(monkeypatch) -> dict:
    counts = {name: 0 for name in SYNCS}
    for name in SYNCS:
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _name=name, _original=original, **kwargs):
            counts[_name] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    return counts


def _fit_counting(monkeypatch, n_rows: int, **kwargs) -> dict:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_rows, 8)).astype(np.float32)
    y = rng.integers(0, 3, size=n_rows)
    trainer = ft.Trainer(make_mlp(), device="cpu", progress=False, **kwargs)
    trainer.fit((X, y), epochs=1, batch_size=8)  # warm: lazy imports and first-call paths
    counts = _count_host_syncs(monkeypatch)
    trainer.fit((X, y), epochs=2, batch_size=8)
    monkeypatch.undo()
    return counts


@pytest.mark.parametrize("kwargs", [{}, {"accumulate_steps": 2}, {"precision": "bf16"}])
def test_no_host_sync_per_step(monkeypatch, kwargs):
    """Host syncs per fit must not grow with the number of batches: 2 vs 40 batches per epoch."""
    few = _fit_counting(monkeypatch, 16, **kwargs)
    many = _fit_counting(monkeypatch, 320, **kwargs)
    assert many == few, f"host syncs grew with the batch count: {few} -> {many}"
    assert sum(few.values()) > 0  # the counter works: the epoch's loss is read once per epoch


def test_zero_grad_frees_gradients_instead_of_writing_zeros(small_clf_data):
    X, y = small_clf_data
    trainer = ft.Trainer(make_mlp(), device="cpu", progress=False)
    trainer.fit((X, y), epochs=1, batch_size=32)
    before = [p.grad for p in trainer.model.parameters()]
    x, t = torch.from_numpy(X[:32]), torch.from_numpy(y[:32])
    trainer.step.train_step(((x,), t))
    after = [p.grad for p in trainer.model.parameters()]
    assert all(a is not None for a in after)
    assert all(a is not b for a, b in zip(after, before))  # new tensors: set_to_none, not zero_()


class _Graphed:
    """A stand-in for accel.CudaGraphStep that records its calls."""

    def __init__(self, result):
        self.result, self.calls = result, 0

    def step(self, step, batch):
        self.calls += 1
        return self.result


@pytest.mark.parametrize("replayed", [True, False])
def test_a_graphed_step_replaces_the_eager_step_only_when_it_ran(small_clf_data, replayed):
    X, y = small_clf_data
    trainer = ft.Trainer(make_mlp(), device="cpu", progress=False)
    trainer.fit((X, y), epochs=1, batch_size=32)
    sentinel = torch.tensor(1.25)
    trainer.step.graphed = _Graphed(sentinel if replayed else None)
    weights = [p.detach().clone() for p in trainer.model.parameters()]
    loss = trainer.step.train_step(((torch.from_numpy(X[:32]),), torch.from_numpy(y[:32])))
    unchanged = all(torch.equal(a, b) for a, b in zip(weights, trainer.model.parameters()))
    assert trainer.step.graphed.calls == 1
    assert (loss is sentinel) == replayed
    assert unchanged == replayed  # None from the graph: the eager step ran and moved the weights


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd"])
def test_named_optimizers_use_the_fused_cpu_kernel(name):
    trainer = ft.Trainer(make_mlp(), optimizer=name, device="cpu", progress=False)
    assert trainer.optimizer.param_groups[0]["fused"] is True


def test_auto_threads_use_one_thread_for_a_small_model_and_restore_the_setting(small_clf_data):
    X, y = small_clf_data
    seen = []

    class Spy(Callback):
        def on_epoch_end(self, trainer, row):
            seen.append(torch.get_num_threads())

    torch.set_num_threads(2)
    ft.Trainer(make_mlp(), device="cpu", progress=False, callbacks=[Spy()]).fit((X, y), epochs=1)
    assert seen == [1]
    assert torch.get_num_threads() == 2
    ft.Trainer(make_mlp(), device="cpu", progress=False, num_threads=None, callbacks=[Spy()]).fit((X, y), epochs=1)
    assert seen == [1, 2]  # num_threads=None leaves torch's setting alone


def test_fast_zero_grad_clears_every_group_and_respects_a_custom_zero_grad(small_clf_data):
    from fittorch.step import Step

    model = make_mlp()
    groups = [{"params": model[0].parameters()}, {"params": model[2].parameters(), "lr": 1e-4}]
    opt = torch.optim.Adam(groups, lr=1e-3)
    for p in model.parameters():
        p.grad = torch.ones_like(p)
    Step().bind(model=model, loss_fn=None, optimizers={"default": opt}).zero_grad()
    assert all(p.grad is None for p in model.parameters())

    class Recording(torch.optim.SGD):
        calls = []

        def zero_grad(self, set_to_none=True):
            self.calls.append(set_to_none)
            super().zero_grad(set_to_none=set_to_none)

    X, y = small_clf_data
    ft.Trainer(make_mlp(), optimizer=Recording, lr=0.1, device="cpu", progress=False).fit((X, y), epochs=1,
                                                                                         batch_size=50)
    assert Recording.calls == [True] * 4  # one per step, through the optimizer's own method


# -- the replaceable step -----------------------------------------------------------------------
def _blobs(n=240, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 8, generator=g)
    y = (X[:, 0] + X[:, 1] > 0).long() + (X[:, 2] > 0.5).long()
    return X, y


def test_default_step_equals_a_hand_written_step_subclass_bit_for_bit():
    """Level (c): a train_step written out by hand with the helpers gives the default step's bits."""
    class HandWritten(ft.Step):
        def train_step(self, batch, window):
            with self.autocast():
                output = self.forward(batch)
                loss = self.compute_loss(batch, output)
            self.zero_grad()
            self.backward(loss)
            self.optimizer_step(loss=loss)
            return loss.detach()

    X, y = _blobs()
    runs = []
    for step in (None, HandWritten()):
        t = ft.Trainer(make_mlp(), step=step, seed=1, progress=False, metrics=[])
        t.fit((X, y), epochs=2, batch_size=32)
        runs.append(t)
    assert runs[0].history["train_loss"] == runs[1].history["train_loss"]
    assert all(torch.equal(a, b) for a, b in zip(runs[0].model.parameters(), runs[1].model.parameters()))


def test_compute_loss_sees_the_inputs_and_forward_chooses_the_keys():
    """Level (a): a loss that needs the inputs (per-sample weights); level (b): keys for the model."""
    seen = {}

    class Weighted(ft.Step):
        def forward(self, batch):
            inputs, _ = batch
            return self.model(inputs["x"])  # "weight" is not a model input

        def compute_loss(self, batch, output):
            inputs, target = batch
            seen["keys"] = sorted(inputs)
            per_sample = torch.nn.functional.cross_entropy(output, target, reduction="none")
            return (per_sample * inputs["weight"]).sum() / inputs["weight"].sum()

    X, y = _blobs()
    w = torch.ones(len(y))
    t = ft.Trainer(make_mlp(), step=Weighted(), task="multiclass", lr=1e-2, progress=False)
    h = t.fit(({"x": X, "weight": w}, y), val=({"x": X, "weight": w}, y), epochs=10, batch_size=32)
    assert seen["keys"] == ["weight", "x"]
    assert h[-1]["val_accuracy"] > 0.75  # "accuracy": the task was given, although the loss is custom
    assert h[-1]["train_loss"] < h[0]["train_loss"]


def test_a_step_class_instead_of_an_instance_is_refused():
    with pytest.raises(ft.ConfigError, match=r"step=.* is a type; expected an instance .*Pass an instance: step=MyStep\(\)"):
        ft.Trainer(make_mlp(), step=ft.Step, progress=False)
    with pytest.raises(ft.ConfigError, match=r"is a function; expected an instance of a fittorch.Step subclass"):
        ft.Trainer(make_mlp(), step=lambda batch: batch, progress=False)


def test_a_train_step_without_the_window_argument_is_refused_with_the_signature():
    class OneArg(ft.Step):
        def train_step(self, batch):
            return torch.zeros(())

    with pytest.raises(ft.ConfigError, match=r"OneArg.train_step takes 1 argument\(s\).*def train_step\(self, batch, window\)"):
        ft.Trainer(make_mlp(), step=OneArg(), progress=False)


def test_a_failing_custom_loss_is_caught_by_the_dry_run_naming_the_output():
    X, y = _blobs()
    t = ft.Trainer(make_mlp(), loss=lambda out, y: out["logits"].sum(), progress=False)
    with pytest.raises(ft.ModelError, match=r"The loss failed on a sample batch \(the model returned a tensor of "
                                            r"shape \(2, 3\); target of shape \(2,\).*IndexError"):
        t.fit((X, y), epochs=1)


def test_the_trainer_binds_the_step_once_with_every_part():
    """No component patches the step: what it holds comes from the Trainer's one bind."""
    from fittorch.callbacks import GradientClipping

    clip = GradientClipping(max_norm=1.0)
    t = ft.Trainer(make_mlp(), callbacks=[clip], nonfinite="skip", progress=False)
    X, y = _blobs()
    t.fit((X, y), epochs=1)
    s = t.step
    assert s.model is t.model and s.optimizers == {"default": t.optimizer} and s.host is t
    assert s.after_backward == (clip,)
    assert s.skip_step.__self__ is next(cb for cb in t.callbacks if isinstance(cb, ft.NonFiniteGuard))


def test_the_loss_scale_is_updated_once_per_step_with_two_optimizers():
    """fp16's GradScaler.update() runs once per train step (the loop calls Step.update_scale),
    after both optimizers stepped: its growth counter counts steps. (A CPU GradScaler stands in
    for CUDA's here; tests/test_cuda.py runs the real fp16 path.)"""
    class TwoPart(torch.nn.Module):
        def __init__(self):
            super().__init__()
            torch.manual_seed(0)
            self.body, self.head = torch.nn.Linear(8, 16), torch.nn.Linear(16, 3)

        def forward(self, x):
            return self.head(torch.relu(self.body(x)))

    class PartsStep(ft.Step):
        def train_step(self, batch, window):
            (x,), y = batch
            loss = torch.nn.functional.cross_entropy(self.model(x), y)
            self.zero_grad()
            self.backward(loss)
            self.optimizer_step("head", loss=loss)
            self.optimizer_step("body", loss=loss)
            return loss.detach()

    X, y = _blobs()
    t = ft.Trainer(TwoPart(), step=PartsStep(), progress=False, metrics=[],
                   optimizer={"body": {"optimizer": "sgd", "params": "body"},
                              "head": {"optimizer": "sgd", "params": "head"}})
    t.scaler = torch.amp.GradScaler("cpu", growth_interval=5)
    t.fit((X, y), epochs=1, batch_size=32)
    steps = t.state.global_step
    assert steps > 5 and t.step.scaler is t.scaler and not t.step.scale_pending
    assert t.scaler.state_dict()["_growth_tracker"] == steps % 5
    assert t.scaler.get_scale() == 2.0**16 * 2 ** (steps // 5)


def test_with_grad_sync_an_optimizer_stepped_around_optimizer_step_is_refused():
    """Under DDP a custom step's optimizer_step averages the gradients (grad_sync) before it steps;
    an optimizer.step() called directly would skip that, so its step-pre-hook refuses it. The
    DDP case itself runs in test_distributed.py; here a recording grad_sync stands in."""
    from fittorch.errors import TrainingError
    from fittorch.step import Step

    model = make_mlp()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    synced = []
    step = Step().bind(model=model, loss_fn=torch.nn.functional.cross_entropy, optimizers={"main": opt},
                       grad_sync=lambda params: synced.append(len(params)))
    x, y = torch.randn(4, 8), torch.tensor([0, 1, 2, 0])
    step.backward(step.compute_loss(((x,), y), model(x)))
    assert step.optimizer_step() and synced == [4]  # through optimizer_step: averaged, then stepped
    with pytest.raises(TrainingError, match=r"called optimizer 'main''s step\(\) itself.*optimizer_step\('main'\)"):
        opt.step()
    # bound again without grad_sync (one process): the hook is gone, a direct step is fine
    step.bind(model=model, loss_fn=None, optimizers={"main": opt})
    opt.step()
