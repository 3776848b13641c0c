"""The CUDA paths end to end: fp16 with several optimizers, bf16, pinned Dataset batches,
exact resume, CUDA-trained weights on the CPU, and the CLI with ``device: cuda``.

Skipped on machines without a GPU (CI); run on a lent GPU (see docs/benchmarks.md).
cuda_graphs has its own tests in test_accel.py, fp16 on one optimizer in test_precision.py.
"""

from __future__ import annotations

import subprocess

import pytest
import torch
from torch import nn

import fittorch as ft
from conftest import make_mlp

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on this machine)")


class TwoPart(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(8, 32), nn.ReLU())
        self.head = nn.Linear(32, 3)

    def forward(self, x):
        return self.head(self.body(x))


class PartsStep(ft.Step):
    """Two optimizers stepped from one backward, under autocast (as a GAN step does)."""

    def train_step(self, batch, window):
        (x,), y = batch
        with self.autocast():
            feats = self.model.body(x)
            loss = nn.functional.cross_entropy(self.model.head(feats), y)
        self.zero_grad()
        self.backward(loss)
        self.optimizer_step("head", loss=loss)
        self.optimizer_step("body", loss=loss)
        return loss.detach()


TWO = {"body": {"optimizer": "adam", "params": "body", "lr": 1e-2},
       "head": {"optimizer": "adam", "params": "head", "lr": 1e-2}}


def test_fp16_with_two_optimizers_trains_and_updates_the_scale_once_per_step(small_clf_data):
    X, y = small_clf_data
    t = ft.Trainer(TwoPart(), step=PartsStep(), optimizer=TWO, precision="fp16", device="cuda",
                   progress=False)
    t.fit((X, y), val=(X, y), epochs=10, batch_size=32)
    scaler = t.step.scaler.state_dict()
    # No overflow in 70 steps at the initial scale: one update per step, not one per optimizer.
    assert scaler["_growth_tracker"] == t.state.global_step == 70
    assert scaler["scale"] == 2.0**16
    assert t.history.last["val_accuracy"] >= 0.9
    assert all(p.dtype == torch.float32 for p in t.model.parameters())


def test_fp16_overflow_skips_every_optimizer_of_the_step_and_halves_the_scale_once(small_clf_data):
    X, y = small_clf_data
    t = ft.Trainer(TwoPart(), step=PartsStep(), optimizer=TWO, precision="fp16", device="cuda",
                   progress=False)
    t.fit((X, y), epochs=1, batch_size=32)
    before = [p.detach().clone() for p in t.model.parameters()]
    scale = t.step.scaler.get_scale()
    t.step.scaler.update(new_scale=2.0**60)  # fp16 gradients overflow at this scale
    t.fit((X[:32], y[:32]), epochs=1, batch_size=32)
    assert t.step.scaler.get_scale() == 2.0**59  # one halving for one overflowing step
    assert all(torch.equal(a, b) for a, b in zip(before, t.model.parameters()))  # neither stepped
    assert scale == 2.0**16


def test_bf16_on_cuda_trains_and_predicts_float32(small_clf_data):
    X, y = small_clf_data
    t = ft.Trainer(make_mlp(), lr=1e-2, precision="bf16", device="cuda", progress=False)
    t.fit((X, y), val=(X, y), epochs=15, batch_size=32)
    assert t.history.last["val_accuracy"] >= 0.9
    out = t.predict(X[:5])
    assert out.dtype == torch.float32 and out.device.type == "cpu"


class BatchDevice(ft.Callback):
    def on_train_batch_start(self, trainer, batch):
        self.device = batch[0][0].device
        return batch


def test_a_dataset_source_pins_memory_and_moves_batches_to_the_gpu(small_clf_data):
    X, y = small_clf_data
    data = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.from_numpy(y))
    seen = BatchDevice()
    t = ft.Trainer(make_mlp(), lr=1e-2, device="cuda", progress=False, callbacks=[seen])
    t.fit(data, val=(X, y), epochs=10, batch_size=32, num_workers=2)
    assert seen.device.type == "cuda"
    assert t.history.last["val_accuracy"] >= 0.9


def test_resume_on_cuda_is_bit_identical(small_clf_data, tmp_path):
    X, y = small_clf_data

    def trainer(ckdir):
        return ft.Trainer(make_mlp(), lr=1e-2, device="cuda", progress=False, checkpoint_dir=ckdir)

    whole = trainer(tmp_path / "a")
    whole.fit((X, y), val=(X, y), epochs=4, batch_size=32)
    trainer(tmp_path / "b").fit((X, y), val=(X, y), epochs=2, batch_size=32)
    resumed = trainer(tmp_path / "b")
    resumed.fit((X, y), val=(X, y), epochs=4, batch_size=32, resume="last")
    assert all(torch.equal(a, b) for a, b in zip(whole.model.parameters(), resumed.model.parameters()))
    assert resumed.history["train_loss"] == whole.history["train_loss"]


def test_weights_trained_on_cuda_predict_the_same_on_the_cpu(small_clf_data, tmp_path):
    X, y = small_clf_data
    t = ft.Trainer(make_mlp(), lr=1e-2, device="cuda", progress=False)
    t.fit((X, y), epochs=3, batch_size=32)
    t.save(tmp_path / "model")
    cpu = ft.Trainer(make_mlp(seed=1), device="cpu", progress=False)
    cpu.load(tmp_path / "model")
    torch.testing.assert_close(cpu.predict(X), t.predict(X), rtol=1e-4, atol=1e-5)


def test_cli_fit_on_cuda_then_evaluate(tmp_path, cli_env, fittorch_cmd):
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text("name: gpu\nseed: 0\ndevice: cuda\ndata: {source: 'sklearn:iris', val_split: 0.2}\n"
                   "model: {type: mlp, hidden: [16]}\ntrain: {epochs: 30, batch_size: 16}\n")
    runs = tmp_path / "runs"

    def cli(*args):
        res = subprocess.run([*fittorch_cmd, *args], cwd=tmp_path, env=cli_env, capture_output=True,
                             text=True, timeout=300)
        assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
        return res.stdout

    out = cli("fit", str(cfg), "--out", str(runs))
    assert "cuda" in out.lower()
    run = next(p for p in runs.iterdir() if p.is_dir())
    assert "accuracy" in cli("evaluate", str(run))
