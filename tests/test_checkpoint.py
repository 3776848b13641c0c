"""Checkpoints in-process: the format, retention, damage, disk full, unsafe files, refusals, state_dict."""

from __future__ import annotations

import contextlib
import errno
import json
import pickle
import random
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

import fittorch as ft
from fittorch import checkpoint as ck
from fittorch.checkpoint import store
from fittorch.checkpoint.flatten import flatten, unflatten
from fittorch.errors import CheckpointError, ConfigError


def _data(n=60, seed=0):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, 4, generator=g)
    return X, (X[:, 0] - X[:, 1] > 0).long()


def _model(hidden=8):
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, hidden), torch.nn.ReLU(), torch.nn.Dropout(0.2),
                               torch.nn.Linear(hidden, 2))


class StartedAt(ft.Callback):
    """Records where fit began training: proves a resume resumed (a fresh start gives the same bits)."""

    def on_fit_start(self, trainer):
        self.position = (trainer.state.epoch, trainer.state.batch_in_epoch)


def _trainer(ckdir=None, hidden=8, **kw):
    kw.setdefault("lr", 0.02)
    kw.setdefault("device", "cpu")  # compared with weights loaded on the CPU
    kw.setdefault("callbacks", [StartedAt()])
    return ft.Trainer(_model(hidden), progress=False, metrics=[], checkpoint_dir=ckdir, **kw)


def _started(trainer):
    return next(cb for cb in trainer.callbacks if isinstance(cb, StartedAt)).position


def _same_weights(a, b) -> bool:
    return all(torch.equal(x, y) for x, y in zip(a.model.state_dict().values(), b.model.state_dict().values()))


@pytest.fixture
def run3(tmp_path):
    """A 3-epoch run with validation, checkpointing at epoch ends and every 4 steps, keeping all."""
    ckdir = tmp_path / "ck"
    trainer = _trainer(ckdir, checkpoint_every_steps=4, keep_last=100)
    trainer.fit(_data(), val=_data(30, 1), epochs=3, batch_size=8)
    return trainer, ckdir


# -- the format ------------------------------------------------------------------------------------
def test_flatten_round_trips_optimizer_rng_and_odd_types_exactly():
    model = _model()
    opt = torch.optim.Adam(model.parameters(), lr=0.1)
    model(torch.randn(3, 4)).sum().backward()
    opt.step()
    tree = {"opt": opt.state_dict(), "python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(), "scalar": np.float32(1.5), "inf": float("inf"), "t": (1, [2, None]),
            "keys": {0: "a", 1.5: "b"}, "x": 0.1 + 0.2}
    js, tensors = flatten(tree, "r")
    back = unflatten(json.loads(json.dumps(js)), tensors)
    assert back["python"] == tree["python"]
    assert back["numpy"][0] == "MT19937" and np.array_equal(back["numpy"][1], tree["numpy"][1])
    assert back["numpy"][1].dtype == tree["numpy"][1].dtype
    assert torch.equal(back["torch"], tree["torch"])
    assert back["opt"]["param_groups"] == tree["opt"]["param_groups"]  # betas stay a tuple
    assert all(torch.equal(back["opt"]["state"][0][k], v) for k, v in tree["opt"]["state"][0].items())
    assert back["scalar"] == tree["scalar"] and type(back["scalar"]) is np.float32
    assert back["keys"] == tree["keys"] and back["t"] == tree["t"] and back["x"] == tree["x"]
    with pytest.raises(CheckpointError, match="never pickle"):
        flatten({"fn": lambda x: x})


def test_checkpoint_files_manifest_and_weights_load_with_ft_load(run3):
    trainer, ckdir = run3
    names = [p.name for p in ck.list_checkpoints(ckdir)]
    # steps 4, 8 (epoch 1 has 8 batches), epoch ends, ... named by (epochs done, batches into the next)
    assert "ckpt-e000001-b0000000" in names and "ckpt-e000001-b0000004" in names and names == sorted(names)
    last = ck.latest(ckdir)
    assert last.name == "ckpt-e000003-b0000000"
    files = sorted(p.name for p in last.iterdir())
    assert files == ["manifest.json", "model.json", "model.safetensors", "state.json", "state.safetensors"]
    manifest = ck.verify(last)
    assert set(manifest["files"]) == set(files) - {"manifest.json"}
    assert all(len(f["sha256"]) == 64 for f in manifest["files"].values())
    assert manifest["monitor"]["name"] == "val_loss" and manifest["global_step"] == 24
    for f in last.iterdir():
        assert not f.read_bytes().startswith(b"\x80"), f"{f.name} looks like a pickle"
    state = json.loads((last / "state.json").read_text())
    assert state["config"]["batch_size"] == 8 and state["config"]["num_threads"] == torch.get_num_threads()
    model = ft.load(last, model=_model())
    assert all(torch.equal(a, b) for a, b in zip(model.parameters(), trainer.model.parameters()))
    loaded = ck.load_checkpoint(last)
    assert loaded.state["train_state"]["epoch"] == 3
    assert [r["train_loss"] for r in loaded.state["train_state"]["history"]["rows"]] == trainer.history["train_loss"]


def test_resume_from_every_checkpoint_matches_the_uninterrupted_run(run3):
    trainer, ckdir = run3
    for path in ck.list_checkpoints(ckdir):
        resumed = _trainer(tmp := ckdir.parent / f"re-{path.name}")
        resumed.fit(_data(), val=_data(30, 1), epochs=3, batch_size=8, resume=path)
        assert _started(resumed) == ck.position(path)
        assert _same_weights(resumed, trainer), path.name
        assert resumed.history["train_loss"] == trainer.history["train_loss"], path.name
        assert resumed.history["val_loss"] == trainer.history["val_loss"]
        assert ck.latest(tmp) is not None or path.name.startswith("ckpt-e000003")


def test_training_longer_is_a_normal_resume(tmp_path):
    a = _trainer(tmp_path / "a")
    a.fit(_data(), epochs=4, batch_size=8)
    b = _trainer(tmp_path / "b")
    b.fit(_data(), epochs=2, batch_size=8)
    b2 = _trainer(tmp_path / "b")
    b2.fit(_data(), epochs=4, batch_size=8, resume="last")
    assert _started(b2) == (2, 0)
    assert _same_weights(a, b2) and b2.history["train_loss"] == a.history["train_loss"]


def test_retention_keeps_the_newest_and_the_best(tmp_path):
    ckdir = tmp_path / "ck"
    # mode="max" on train_loss makes the first epoch the "best", so it must survive pruning.
    trainer = ft.Trainer(_model(), lr=0.02, progress=False, metrics=[], device="cpu",
                         callbacks=[ft.callbacks.ModelCheckpoint(ckdir, keep_last=2, monitor="train_loss", mode="max")])
    assert trainer.checkpoint_dir == str(ckdir)
    trainer.fit(_data(), epochs=5, batch_size=8)
    names = [p.name for p in ck.list_checkpoints(ckdir)]
    assert names == ["ckpt-e000001-b0000000", "ckpt-e000004-b0000000", "ckpt-e000005-b0000000"]
    assert ck.best_by(ckdir).name == "ckpt-e000001-b0000000"
    best = _trainer(ckdir)
    best.fit(_data(), epochs=5, batch_size=8, resume="best")
    assert _started(best) == (1, 0)
    assert _same_weights(best, trainer)  # resumed at epoch 1, trained on to 5, bit-exact


def test_trainer_state_dict_round_trip_continues_exactly(tmp_path):
    a = _trainer()
    a.fit(_data(), epochs=2, batch_size=8)
    saved = a.state_dict()
    a.fit(_data(), epochs=2, batch_size=8)  # 2 more
    b = _trainer()
    b.load_state_dict(saved)
    b.fit(_data(), epochs=2, batch_size=8)
    assert _started(b) == (2, 0)
    assert _same_weights(a, b) and b.history["train_loss"] == a.history["train_loss"]


# -- damage ------------------------------------------------------------------------------------------
def _flip_byte(path: Path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", ["corrupt_byte", "truncate"])
def test_damaged_newest_checkpoint_is_named_and_last_falls_back(run3, damage):
    trainer, ckdir = run3
    newest, previous = ck.list_checkpoints(ckdir)[-1], ck.list_checkpoints(ckdir)[-2]
    target = newest / ("model.safetensors" if damage == "corrupt_byte" else "state.safetensors")
    expected = ck.read_manifest(newest)["files"][target.name]["sha256"]
    if damage == "corrupt_byte":
        _flip_byte(target, target.stat().st_size - 3)  # a weight's bits: still parses, hash catches it
    else:
        target.write_bytes(target.read_bytes()[: target.stat().st_size // 2])
    with pytest.raises(CheckpointError) as info:
        ck.load_checkpoint(newest)
    msg = str(info.value)
    assert str(target) in msg and expected in msg and previous.name in msg
    assert ("truncated" in msg or "corrupted" in msg)
    with pytest.raises(CheckpointError):  # an explicit path gets no silent fallback
        _trainer(ckdir).fit(_data(), val=_data(30, 1), epochs=3, batch_size=8, resume=newest)
    fallback = _trainer(ckdir)
    with pytest.warns(ck.CheckpointWarning, match="previous good checkpoint"):
        fallback.fit(_data(), val=_data(30, 1), epochs=3, batch_size=8, resume="last")
    assert _started(fallback) == ck.position(previous)
    assert _same_weights(fallback, trainer)  # redid the last steps from the previous checkpoint, same bits


def test_disk_full_during_a_save_raises_clearly_and_keeps_the_previous(tmp_path, monkeypatch):
    ckdir = tmp_path / "ck"
    trainer = _trainer(ckdir)
    trainer.fit(_data(), epochs=1, batch_size=8)
    before = ck.latest(ckdir)
    real_write = store.write_bytes

    def full_disk(path, data):  # writes part of the file, then the disk is full
        real_write(path, data[: len(data) // 3])
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(store, "write_bytes", full_disk)
    with pytest.raises(CheckpointError, match="disk is full") as info:
        trainer.fit(_data(), epochs=1, batch_size=8)
    assert str(before) in str(info.value)
    assert ck.latest(ckdir) == before
    ck.verify(before)
    assert [p.name for p in ckdir.iterdir()] == [before.name]  # no temporary directory left behind


def test_leftover_temporary_directories_are_ignored_and_cleaned(run3):
    trainer, ckdir = run3
    junk = ckdir / ".tmp-ckpt-e000009-b0000000-1-2"
    junk.mkdir()
    (junk / "model.safetensors").write_bytes(b"half")
    assert junk not in ck.list_checkpoints(ckdir)
    _trainer(ckdir).fit(_data(), val=_data(30, 1), epochs=4, batch_size=8, resume="last")
    assert not junk.exists()


# -- nothing can run code --------------------------------------------------------------------------
class _Evil:
    def __init__(self, sentinel):
        self.sentinel = sentinel

    def __reduce__(self):
        return (open, (str(self.sentinel), "w"))


def test_planted_malicious_pickle_is_never_executed(run3, tmp_path):
    trainer, ckdir = run3
    sentinel = tmp_path / "pwned"
    payload = pickle.dumps(_Evil(sentinel))
    pickle.loads(payload)  # prove the payload works: unpickling it creates the sentinel...
    assert sentinel.exists()
    sentinel.unlink()

    newest = ck.latest(ckdir)
    for name in ("optimizer.pt", "trainer_state.pkl", "rng_state.pth", "scheduler.bin"):
        (newest / name).write_bytes(payload)  # files a pickle-based trainer would load
    _trainer(ckdir).fit(_data(), val=_data(30, 1), epochs=4, batch_size=8, resume="last")

    # Replace the weights with the pickle and even fix up the manifest so the hash matches.
    victim = ck.list_checkpoints(ckdir)[0]
    (victim / "model.safetensors").write_bytes(payload)
    manifest = json.loads((victim / "manifest.json").read_text())
    import hashlib

    manifest["files"]["model.safetensors"] = {"sha256": hashlib.sha256(payload).hexdigest(), "bytes": len(payload)}
    (victim / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="not written by fittorch"):
        ck.load_checkpoint(victim)
    with pytest.raises(CheckpointError):
        ft.load(victim, model=_model())
    assert not sentinel.exists()


# -- refusals and warnings ---------------------------------------------------------------------------
def test_resume_refuses_a_different_model_shape_or_batch_size(run3):
    _, ckdir = run3
    with pytest.raises(CheckpointError, match=r"model shape \(0.weight: \[8, 4\] -> \[16, 4\]"):
        _trainer(ckdir, hidden=16).fit(_data(), val=_data(30, 1), epochs=4, batch_size=8, resume="last")
    with pytest.raises(CheckpointError, match="batch_size 8 -> 16"):
        _trainer(ckdir).fit(_data(), val=_data(30, 1), epochs=4, batch_size=16, resume="last")
    other = _trainer(ckdir)
    other.dist.world_size = 2  # pretend: the refusal comes before any collective is needed
    # No process group in this single process: a stand-in for the DDP wrapper.
    other.dist.wrap_model = lambda model: SimpleNamespace(no_sync=contextlib.nullcontext)
    with pytest.raises(CheckpointError, match="world_size 1 -> 2"):
        other.fit(_data(), val=_data(30, 1), epochs=4, batch_size=8, resume="last")


def test_resume_warns_on_a_changed_thread_count(run3):
    _, ckdir = run3
    with pytest.warns(ck.CheckpointWarning, match="num_threads 1 -> 2.*bits may differ"):
        _trainer(ckdir, num_threads=2).fit(_data(), val=_data(30, 1), epochs=3, batch_size=8, resume="last")


def test_missing_checkpoint_errors_for_last_and_starts_fresh_for_auto(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint in .* resume='auto'"):
        _trainer(tmp_path / "empty").fit(_data(), epochs=1, batch_size=8, resume="last")
    with pytest.raises(ConfigError, match="checkpoint_dir"):
        _trainer().fit(_data(), epochs=1, batch_size=8, resume="last")
    auto, plain = _trainer(tmp_path / "auto"), _trainer()
    auto.fit(_data(), epochs=2, batch_size=8, resume="auto")
    plain.fit(_data(), epochs=2, batch_size=8)
    assert _same_weights(auto, plain)


def test_a_fresh_run_refuses_a_directory_with_another_runs_checkpoints(run3):
    _, ckdir = run3
    with pytest.raises(CheckpointError, match="already holds checkpoints"):
        _trainer(ckdir).fit(_data(), epochs=1, batch_size=8)


def test_bad_checkpoint_arguments_are_config_errors(tmp_path):
    with pytest.raises(ConfigError, match="keep_last"):
        _trainer(tmp_path, keep_last=0)
    with pytest.raises(ConfigError, match="checkpoint_every_steps"):
        _trainer(tmp_path, checkpoint_every_steps=-1)
    with pytest.raises(ConfigError, match="not both"):
        ft.Trainer(_model(), checkpoint_dir=tmp_path, callbacks=[ft.callbacks.ModelCheckpoint(tmp_path)])


class _Poison(ft.Callback):
    def on_epoch_start(self, trainer):
        if trainer.state.epoch == 2:
            with torch.no_grad():
                trainer.model[0].weight.fill_(float("nan"))


def test_non_finite_weights_are_never_saved(tmp_path):
    ckdir = tmp_path / "ck"
    trainer = _trainer(ckdir, nonfinite="ignore", callbacks=[_Poison()])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(_data(), epochs=3, batch_size=8)
    assert any("not finite" in str(w.message) for w in caught)
    assert [p.name for p in ck.list_checkpoints(ckdir)] == ["ckpt-e000001-b0000000", "ckpt-e000002-b0000000"]
    loaded = ck.load_checkpoint(ck.latest(ckdir))
    assert all(torch.isfinite(t).all() for t in loaded.model_state.values())


def test_checkpoint_weights_load_for_inference_with_checks(tmp_path):
    ckdir = tmp_path / "ck"
    trainer = ft.Trainer(ft.MLP(4, [8], 2), lr=0.02, progress=False, metrics=[], checkpoint_dir=ckdir,
                         device="cpu")  # compared with the weights ft.load gives, on the CPU
    trainer.fit(_data(), epochs=1, batch_size=8)
    rebuilt = ft.load(ck.latest(ckdir))  # a built-in model is rebuilt from model.json's spec
    assert all(torch.equal(a, b) for a, b in zip(rebuilt.parameters(), trainer.model.parameters()))
    with pytest.raises(CheckpointError, match=r"shape mismatch: 0.weight: file \(8, 4\) vs model \(16, 4\)"):
        ft.load(ck.latest(ckdir), model=ft.MLP(4, [16], 2))


def test_an_interrupted_replacement_is_restored_on_the_next_start(run3):
    _, ckdir = run3
    newest = ck.latest(ckdir)
    moved = ckdir / f".old-{newest.name}-4242"
    newest.rename(moved)  # killed between moving the old copy aside and renaming the new one in
    assert ck.latest(ckdir) != newest
    ck.clean_partial(ckdir)
    assert ck.latest(ckdir) == newest and not moved.exists()
    ck.verify(newest)


class _Explode(ft.Callback):
    def on_epoch_start(self, trainer):
        if trainer.state.epoch == 2:
            trainer.optimizer.param_groups[0]["lr"] = 1e30


def test_a_diverged_run_names_the_last_good_checkpoint(tmp_path):
    from fittorch.errors import TrainingError

    ckdir = tmp_path / "ck"
    with pytest.raises(TrainingError, match=r"last good checkpoint is .*ckpt-e000002-b0000000"):
        ft.Trainer(_model(), optimizer="sgd", lr=0.05, progress=False, metrics=[], checkpoint_dir=ckdir,
                   callbacks=[_Explode()]).fit(_data(), epochs=4, batch_size=8)
    assert ck.latest(ckdir).name == "ckpt-e000002-b0000000"


def test_no_checkpoint_after_a_nonfinite_step_and_the_hint_names_a_good_one(tmp_path):
    """Step 5's loss overflows while the weights stay finite (as with weights of 1e20): saving every
    step, no checkpoint after it is written, and the error names the last checkpoint before it."""
    import re

    import fittorch as ft
    from fittorch.errors import TrainingError

    class OverflowAt(ft.Callback):  # the loss of one step is inf, its weights are untouched
        order = -300

        def on_train_batch_end(self, trainer, loss):
            if trainer.state.global_step == 5:
                trainer.epoch_losses[-1] = torch.full_like(trainer.epoch_losses[-1], float("inf"))

    g = torch.Generator().manual_seed(0)
    X = torch.randn(64, 4, generator=g)
    y = (X[:, 0] > 0).long()
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
    trainer = ft.Trainer(model, progress=False, metrics=[], callbacks=[OverflowAt()],
                         checkpoint_dir=tmp_path / "ck", checkpoint_every_steps=1, keep_last=100)
    with pytest.warns(ck.CheckpointWarning, match="not finite"):
        with pytest.raises(TrainingError) as info:
            trainer.fit((X, y), epochs=3, batch_size=8, shuffle=False)
    saved = ck.list_checkpoints(tmp_path / "ck")
    assert [ck.position(p) for p in saved] == [(0, 1), (0, 2), (0, 3), (0, 4)]
    for path in saved:
        c = ck.load_checkpoint(path)
        assert all(torch.isfinite(v).all() for v in c.model_state.values()), path
        assert torch.isfinite(c.state["epoch_losses"]).all(), f"{path} holds non-finite epoch losses"
    named = re.search(r"last good checkpoint is (\S+?);", str(info.value))
    assert named and named.group(1) == str(saved[-1]), str(info.value)
