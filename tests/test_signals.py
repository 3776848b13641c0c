"""SIGTERM / SIGINT: finish the step, checkpoint, tell how to resume, return; a second one exits at once."""

from __future__ import annotations

import json
import os
import signal
import time

import pytest
import torch

import ckpt_helpers as h
import fittorch as ft
from fittorch.checkpoint import latest, list_checkpoints, load_checkpoint, position, verify
from fittorch.signals import EXIT_INTERRUPTED


def test_exit_code_is_ex_tempfail():
    assert EXIT_INTERRUPTED == 75


def test_external_sigterm_saves_at_the_current_step_and_resumes_bit_exact(tmp_path, tmp_path_factory, cli_env):
    ref = h.reference(tmp_path_factory, cli_env)
    z = h.zygote(tmp_path_factory, cli_env)
    script = h.write_script(tmp_path)
    ckdir, out = tmp_path / "checkpoints", tmp_path / "out"
    z.submit(script, ckdir, out, extra_env={"SLOW": "0.01", "MARK_AT_STEP": "20"})
    deadline = time.monotonic() + 120
    while not (out / "marker").exists() or not (out / "marker").read_text():
        assert time.monotonic() < deadline, "the training process never reached step 20"
        time.sleep(0.02)
    os.kill(int((out / "marker").read_text()), signal.SIGTERM)  # from outside, at whatever step it is in
    code, log = z.result()
    assert code == EXIT_INTERRUPTED, log
    assert "SIGTERM received" in log and "resume='last'" in log
    final = json.loads((out / "final.json").read_text())
    assert final["status"] == "interrupted"
    newest = latest(ckdir)
    manifest = verify(newest)
    assert manifest["global_step"] == final["global_step"] >= 20  # saved exactly where it stopped
    assert str(newest) in log
    code, log = z.run(script, ckdir, out)
    assert code == 0, log
    assert h.started_at(out) == position(newest)
    h.assert_same_run(out, ref)


def test_sigint_mid_epoch_checkpoints_that_exact_batch(tmp_path, tmp_path_factory, cli_env):
    ref = h.reference(tmp_path_factory, cli_env)
    z = h.zygote(tmp_path_factory, cli_env)
    script = h.write_script(tmp_path)
    ckdir, out = tmp_path / "checkpoints", tmp_path / "out"
    code, log = z.run(script, ckdir, out, extra_env={"SIGNAL_AT_STEP": "INT:40"})
    assert code == EXIT_INTERRUPTED, log
    assert "SIGINT received" in log and "KeyboardInterrupt" not in log
    assert position(latest(ckdir)) == (2, 10)  # 40 = 2 epochs of 15 + 10 batches
    code, log = z.run(script, ckdir, out)
    assert code == 0, log
    assert h.started_at(out) == (2, 10)
    h.assert_same_run(out, ref)


def test_second_signal_exits_at_once_and_leaves_the_previous_checkpoint(tmp_path, tmp_path_factory, cli_env):
    z = h.zygote(tmp_path_factory, cli_env)
    script = h.write_script(tmp_path)
    ckdir, out = tmp_path / "checkpoints", tmp_path / "out"
    code, log = z.run(script, ckdir, out, extra_env={"SIGNAL_AT_STEP": "TERM:40:2"})
    assert code == 128 + signal.SIGTERM, log
    assert "exiting at once" in log
    assert not (out / "final.json").exists()
    newest = latest(ckdir)
    assert position(newest) == (2, 5)  # the periodic save at step 35; none was started at 40
    load_checkpoint(newest)
    assert not [p for p in ckdir.iterdir() if p.name.startswith(".tmp-")]


# -- in-process ------------------------------------------------------------------------------------
class SendSignal(ft.Callback):
    def __init__(self, sig, at_batch):
        self.sig, self.at = sig, at_batch
        self.handler_during_fit = None

    def on_train_batch_end(self, trainer, loss):
        self.handler_during_fit = signal.getsignal(signal.SIGTERM)
        n = trainer.state.epoch * 7 + trainer.state.batch_in_epoch
        if self.sig is not None and n == self.at:
            os.kill(os.getpid(), self.sig)


def _data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(50, 4, generator=g)
    return X, (X.sum(1) > 0).long()


def _model():
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(4, 8), torch.nn.Tanh(), torch.nn.Dropout(0.1), torch.nn.Linear(8, 2))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_in_process_signal_returns_interrupted_and_restores_handlers(tmp_path, capsys, sig):
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    cb = SendSignal(sig, at_batch=10)
    trainer = ft.Trainer(_model(), lr=0.01, progress=False, metrics=[], callbacks=[cb], checkpoint_dir=tmp_path)
    history = trainer.fit(_data(), epochs=4, batch_size=8)  # returns: no exception for control flow
    assert trainer.state.status == "interrupted"
    assert len(history) == 1 and trainer.state.batch_in_epoch == 3  # 10 = one epoch of 7 + 3 batches
    assert position(trainer.checkpoint_path) == (1, 3)
    assert "resume='last'" in capsys.readouterr().err
    assert cb.handler_during_fit not in (before[signal.SIGTERM],)
    assert {s: signal.getsignal(s) for s in before} == before

    reference = ft.Trainer(_model(), lr=0.01, progress=False, metrics=[])
    reference.fit(_data(), epochs=4, batch_size=8)
    resumed = ft.Trainer(_model(), lr=0.01, progress=False, metrics=[], checkpoint_dir=tmp_path)
    resumed.fit(_data(), epochs=4, batch_size=8, resume="last")
    assert resumed.state.status == "finished"
    assert resumed.history["seconds"][0] == history["seconds"][0]  # epoch 1's row came from the checkpoint
    assert resumed.history["train_loss"] == reference.history["train_loss"]
    for a, b in zip(resumed.model.parameters(), reference.model.parameters()):
        assert torch.equal(a, b)


def test_without_checkpoint_dir_no_handler_is_installed():
    before = signal.getsignal(signal.SIGTERM)
    cb = SendSignal(None, at_batch=-1)
    ft.Trainer(_model(), progress=False, metrics=[], callbacks=[cb]).fit(_data(), epochs=1, batch_size=8)
    assert cb.handler_during_fit is before


def test_list_checkpoints_ignores_nothing_complete(tmp_path):
    assert list_checkpoints(tmp_path / "missing") == [] and latest(tmp_path) is None

