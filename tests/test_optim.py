"""Several optimizers by name: building, refusals, a custom step using them, checkpoints."""

from __future__ import annotations

import pytest
import torch
from torch import nn

import fittorch as ft


class Pair(nn.Module):
    def __init__(self):
        super().__init__()
        self.encoder = nn.Linear(4, 8)
        self.head = nn.Linear(8, 2)

    def forward(self, x):
        return self.head(torch.relu(self.encoder(x)))


def _data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 4, generator=g)
    return X, (X[:, 0] > 0).long()


def test_optimizers_by_name_from_specs_and_instances():
    m = Pair()
    head_opt = torch.optim.SGD(m.head.parameters(), lr=0.5)
    t = ft.Trainer(m, optimizer={"encoder": {"optimizer": "adamw", "params": "encoder", "lr": 1e-3,
                                             "weight_decay": 0.1},
                                 "head": head_opt}, progress=False)
    assert list(t.optimizers) == ["encoder", "head"] and t.optimizers["head"] is head_opt
    assert isinstance(t.optimizers["encoder"], torch.optim.AdamW)
    assert t.optimizers["encoder"].param_groups[0]["weight_decay"] == 0.1
    assert t.optimizer is t.optimizers["encoder"]  # the first
    X, y = _data()
    h = t.fit((X, y), epochs=2, batch_size=16)  # the default step steps the first optimizer only
    assert h[-1]["lr_encoder"] == 1e-3 and h[-1]["lr_head"] == 0.5


def test_an_unknown_submodule_and_shared_parameters_are_refused():
    with pytest.raises(ft.ConfigError, match=r"optimizer\['enc'\] params='enc': the model has no submodule of that "
                                            r"name. Did you mean 'encoder'\?"):
        ft.Trainer(Pair(), optimizer={"enc": {"params": "enc"}}, progress=False)
    m = Pair()
    with pytest.raises(ft.ConfigError, match=r"Parameter encoder.weight is in both optimizer 'a' and 'b'"):
        ft.Trainer(m, optimizer={"a": torch.optim.SGD(m.parameters(), lr=0.1),
                                 "b": torch.optim.SGD(m.encoder.parameters(), lr=0.1)}, progress=False)
    with pytest.raises(ft.ConfigError, match=r"optimizer\['a'\] is a str; expected an optimizer instance or a spec"):
        ft.Trainer(m, optimizer={"a": "adam"}, progress=False)


class AlternatingStep(ft.Step):
    """Steps the encoder on even global steps and the head on odd ones."""

    def train_step(self, batch, window):
        output = self.forward(batch)
        loss = self.compute_loss(batch, output)
        self.zero_grad()
        self.backward(loss)
        self.optimizer_step("encoder" if self.host.state.global_step % 2 == 0 else "head", loss=loss)
        return loss.detach()


def _gan_trainer(tmp_path=None, clip=False):
    torch.manual_seed(0)
    m = Pair()
    callbacks = [ft.GradientClipping(max_norm=0.01)] if clip else []
    return ft.Trainer(m, step=AlternatingStep(), callbacks=callbacks, progress=False, metrics=[],
                      optimizer={"encoder": {"params": "encoder", "lr": 1e-2},
                                 "head": {"params": "head", "optimizer": "sgd", "lr": 0.1}},
                      checkpoint_dir=tmp_path, seed=3)


def test_a_custom_step_uses_each_optimizer_and_checkpoints_restore_both(tmp_path):
    X, y = _data()
    ref = _gan_trainer()
    ref.fit((X, y), epochs=4, batch_size=16)
    assert ref.optimizers["encoder"].state and ref.optimizers["head"].state

    first = _gan_trainer(tmp_path / "ck")
    first.fit((X, y), epochs=2, batch_size=16)
    resumed = _gan_trainer(tmp_path / "ck")
    resumed.fit((X, y), epochs=4, batch_size=16, resume="last")
    assert resumed.history["train_loss"] == ref.history["train_loss"]
    for a, b in zip(resumed.model.parameters(), ref.model.parameters()):
        assert torch.equal(a, b)
    for name in ("encoder", "head"):
        sa, sb = resumed.optimizers[name].state_dict()["state"], ref.optimizers[name].state_dict()["state"]
        assert all(torch.equal(sa[k][f], sb[k][f]) for k in sb for f in sb[k] if torch.is_tensor(sb[k][f]))


def test_resuming_with_other_optimizer_names_is_refused(tmp_path):
    X, y = _data()
    _gan_trainer(tmp_path / "ck").fit((X, y), epochs=1, batch_size=16)
    other = ft.Trainer(Pair(), progress=False, metrics=[], checkpoint_dir=tmp_path / "ck")
    with pytest.raises(ft.CheckpointError, match=r"optimizer \{'encoder': 'Adam', 'head': 'SGD'\} -> 'Adam'"):
        other.fit((X, y), epochs=2, batch_size=16, resume="last")


def test_clipping_applies_per_optimizer():
    X, y = _data()
    seen = []

    class Spy(ft.Callback):
        order = -40  # after the clipping callback

        def on_after_backward(self, trainer):
            opt = trainer.step.stepping
            grads = [p.grad for g in opt.param_groups for p in g["params"]]
            seen.append(float(torch.nn.utils.get_total_norm(grads)))

    t = _gan_trainer(clip=True)
    t.callbacks.append(Spy())
    t.fit((X, y), epochs=1, batch_size=16)
    assert len(seen) == 4 and max(seen) <= 0.01 + 1e-6


def test_more_refusals_name_the_fix():
    with pytest.raises(ft.ConfigError, match=r"optimizer=\{\} names no optimizer"):
        ft.Trainer(Pair(), optimizer={}, progress=False)
    with pytest.raises(ft.ConfigError, match=r"optimizer names must be identifiers such as 'generator'; got 'my opt'"):
        ft.Trainer(Pair(), optimizer={"my opt": {"params": "encoder"}}, progress=False)

    class Typo(ft.Step):
        def train_step(self, batch, window):
            self.zero_grad("encodr")

    X, y = _data()
    t = ft.Trainer(Pair(), step=Typo(), optimizer={"encoder": {"params": "encoder"}, "head": {"params": "head"}},
                   progress=False)
    with pytest.raises(ft.ConfigError, match=r"Typo asked for optimizer 'encodr', but the trainer has \['encoder', "
                                            r"'head'\]. Did you mean 'encoder'\?"):
        t.fit((X, y), epochs=1)
    t = ft.Trainer(Pair(), optimizer={"encoder": {"params": "encoder"}, "head": {"params": "head"}},
                   callbacks=[ft.LRScheduler("step", optimizer="heads")], progress=False)
    with pytest.raises(ft.ConfigError, match=r"LRScheduler\(optimizer='heads'\): the trainer has no optimizer of that "
                                            r"name. Did you mean 'head'\? Optimizers: encoder, head"):
        t.fit((X, y), epochs=1)


def test_predict_labels_and_structure_together_is_refused():
    X, y = _data()
    t = ft.Trainer(Pair(), progress=False)
    t.fit((X, y), epochs=1)
    with pytest.raises(ft.ConfigError, match=r"predict\(labels=True, structure=True\): choose one"):
        t.predict(X, labels=True, structure=True)
