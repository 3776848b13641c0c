"""Distributed training: DDP through the real torchrun launcher, 2 CPU processes on gloo.

The torchrun runs are few and shared (module fixtures), so the file stays well under a
minute on 2 cores. Every subprocess has a timeout and runs in its own session, so a hang
fails the test instead of the suite, and leftovers can be found and killed.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

import fittorch as ft
from fittorch.data import InMemoryData, LoaderData
from fittorch.data.order import shard_order
from fittorch.cli.launch import strip_nproc
from fittorch.distributed import DistContext, ShardSampler
from fittorch.errors import CheckpointError, ConfigError

SRC = Path(__file__).resolve().parents[1] / "src"
TIMEOUT = 120

# Shared by the worker scripts and the single-process references in this file.
COMMON = """
import torch
from torch import nn

def make_data():
    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 8, generator=g)
    y = (X[:, 0] + 0.5 * X[:, 1] - X[:, 2] > 0).long() + (X[:, 3] > 1).long()  # 3 classes
    Xv = torch.randn(101, 8, generator=g)  # odd: the ranks' validation shards differ in size
    yv = (Xv[:, 0] + 0.5 * Xv[:, 1] - Xv[:, 2] > 0).long() + (Xv[:, 3] > 1).long()
    return X, y, Xv, yv

def make_model(dropout=0.0):
    torch.manual_seed(0)
    layers = [nn.Linear(8, 16), nn.ReLU()] + ([nn.Dropout(dropout)] if dropout else []) + [nn.Linear(16, 3)]
    return nn.Sequential(*layers)

import fittorch

class PenaltyStep(fittorch.Step):  # a custom compute_loss: cross-entropy plus a logit penalty
    def compute_loss(self, batch, output):
        return nn.functional.cross_entropy(output, batch[1]) + 0.05 * output.pow(2).mean()

class TwoPart(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(8, 16), nn.ReLU())
        self.head = nn.Linear(16, 3)

    def forward(self, x):
        return self.head(self.body(x))

class PartsStep(fittorch.Step):  # calls the model's parts and steps two optimizers, as a GAN step does
    def train_step(self, batch, window):
        (x,), y = batch
        feats = self.model.body(x)
        loss = nn.functional.cross_entropy(self.model.head(feats), y) + 0.01 * feats.pow(2).mean()
        self.zero_grad()
        self.backward(loss)
        self.optimizer_step("head", loss=loss)
        self.optimizer_step("body", loss=loss)
        return loss.detach()

TWO_OPTIMIZERS = {"body": {"optimizer": "sgd", "params": "body", "lr": 0.1},
                  "head": {"optimizer": "adam", "params": "head", "lr": 0.01}}
"""

WORKER = COMMON + """
import json, sys
import fittorch as ft
from fittorch.callbacks import Callback

torch.set_num_threads(1)
out = sys.argv[1]
X, y, Xv, yv = make_data()
results = {}

def weights(model):
    return {k: v.tolist() for k, v in model.state_dict().items()}

def run(name, data, batch_size, val=None, model=make_model, **kw):
    kw.setdefault("optimizer", "sgd")
    t = ft.Trainer(model(), lr=0.1, progress=False, **kw)
    t.fit(data, val=val, epochs=3, batch_size=batch_size)
    results[name] = {"weights": weights(t.model), "history": t.history.rows}
    return t

# 1. In-memory fast path, per-rank batch 16 = global batch 32, with validation.
t = run("memory", (X, y), 16, val=(Xv, yv))
results["rank"], results["world_size"] = t.dist.rank, t.dist.world_size
results["ddp"] = type(t.step.model).__name__
results["user_model"] = type(t.model).__name__
results["evaluate"] = t.evaluate((Xv, yv))
results["evaluate_one"] = t.evaluate((Xv[:1], yv[:1]))  # rank 1's shard is empty
results["predict_rank0_only"] = t.predict(Xv).tolist() if t.dist.is_main else None  # no collective: no hang
t.save(out + "/model")  # rank 0 writes, rank 1 returns
t.save(f"{out}/saved_by_rank{t.dist.rank}")  # only saved_by_rank0 may exist
print("progress-check", flush=True)
ft.Trainer(make_model(), progress=True, log_every=1).fit((X, y), epochs=2, batch_size=16)  # rank 0 prints
# 2. Gradient accumulation under DDP (no_sync on the first micro-step of each window).
run("accumulate", (X, y), 8, accumulate_steps=2)
# 2b. A custom step (its compute_loss) under DDP.
run("custom_step", (X, y), 16, step=PenaltyStep())
# 2c. A custom train_step that calls the model's parts, with two optimizers (no DDP wrapper:
#     optimizer_step averages each optimizer's gradients over the ranks).
t = run("parts_step", (X, y), 16, val=(Xv, yv), model=TwoPart, step=PartsStep(), optimizer=TWO_OPTIMIZERS)
results["parts_step"]["step_model"] = type(t.step.model).__name__
# 2d. The same step calling optimizer.step() itself (skipping the average) is refused on every rank.
from fittorch.errors import TrainingError

class DirectStep(PartsStep):
    def train_step(self, batch, window):
        (x,), y = batch
        loss = nn.functional.cross_entropy(self.model(x), y)
        self.zero_grad()
        self.backward(loss)
        self.optimizers["head"].step()
        return loss.detach()

try:
    run("direct_step", (X, y), 16, model=TwoPart, step=DirectStep(), optimizer=TWO_OPTIMIZERS)
except TrainingError as exc:
    results["direct_step_error"] = str(exc)
# 3. A map-style Dataset: fittorch batches it and shards the same seeded permutation.
run("dataset", torch.utils.data.TensorDataset(X, y), 16)
# 4. A ready DataLoader gets a DistributedSampler; 201 rows is uneven (padded): no hang.
X2, y2 = torch.cat([X, X[:1]]), torch.cat([y, y[:1]])
loader = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(X2, y2), batch_size=16, shuffle=True)
run("loader", loader, 16)

# 5. BatchNorm buffers: evaluation uses rank 0's statistics on every rank, and never hangs on
#    uneven validation shards (DDP's forward would broadcast buffers: a collective).
torch.manual_seed(0)
bn = nn.Sequential(nn.Linear(8, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, 3))
t = ft.Trainer(bn, optimizer="sgd", lr=0.1, progress=False)
t.fit((X, y), val=(Xv, yv), epochs=2, batch_size=16)
results["batchnorm"] = {"history": [{k: v for k, v in r.items() if k != "seconds"} for r in t.history.rows],
                        "evaluate_one": t.evaluate((Xv[:1], yv[:1])),
                        "running_mean": bn[1].running_mean.tolist(),
                        "predict_rank1_only": t.predict(Xv[:4]).tolist() if t.dist.rank == 1 else None}
t.dist.barrier()

# 6. A stop raised on one rank only (epoch end, then mid-epoch) is agreed by all.
class StopOnRank(Callback):
    def __init__(self, rank, epoch=None, batch=None):
        self.rank, self.epoch, self.batch, self.n = rank, epoch, batch, 0
    def on_epoch_end(self, trainer, row):
        if trainer.dist.rank == self.rank and self.epoch is not None and row["epoch"] == self.epoch:
            trainer.state.should_stop = True
    def on_train_batch_end(self, trainer, loss):
        self.n += 1
        if trainer.dist.rank == self.rank and self.batch is not None and self.n == self.batch:
            trainer.state.should_stop = True

t = ft.Trainer(make_model(), optimizer="sgd", progress=False, callbacks=[StopOnRank(1, epoch=2)])
t.fit((X, y), epochs=5, batch_size=16)
results["stop_epoch"] = [len(t.history), t.state.status]
t = ft.Trainer(make_model(), optimizer="sgd", progress=False, callbacks=[StopOnRank(0, batch=3)])
t.dist.stop_check_every = 2
t.fit((X, y), epochs=5, batch_size=16)
results["stop_batch"] = [len(t.history), t.state.batch_in_epoch, t.state.status]
with open(f"{out}/rank{results['rank']}.json", "w") as f:
    json.dump(results, f)
"""

CRASH = COMMON + """
import sys
import fittorch as ft
from fittorch.callbacks import Callback

class Crash(Callback):
    def on_epoch_start(self, trainer):
        if trainer.dist.rank == 1 and trainer.state.epoch == 1:
            raise RuntimeError("rank 1 exploded on purpose")

X, y, _, _ = make_data()
ft.Trainer(make_model(), progress=False, callbacks=[Crash()]).fit((X, y), epochs=1000, batch_size=4)
"""

CHECKPOINT = COMMON + """
import json, sys
import fittorch as ft
from fittorch.callbacks import Callback

class StopRank1(Callback):  # rank 1 alone asks to stop in epoch 2; the ranks agree at batch 3
    n = 0
    def on_train_batch_end(self, trainer, loss):
        self.n += 1
        if trainer.dist.rank == 1 and self.n == 9:
            trainer.state.should_stop = True

def run(out, mode):
    t = ft.Trainer(make_model(dropout=0.2), optimizer="adam", lr=0.01, progress=False, accumulate_steps=2,
                   checkpoint_dir=f"{out}/{'full' if mode == 'full' else 'first'}", callbacks=[StopRank1()] if mode == "first" else [])
    t.dist.stop_check_every = 3
    t.fit((X, y), val=(Xv, yv), epochs=4, batch_size=16, resume="last" if mode == "resume" else None)
    if t.dist.is_main:
        with open(f"{out}/{mode}.json", "w") as f:
            json.dump({"weights": {k: v.tolist() for k, v in t.model.state_dict().items()},
                       "position": [t.state.epoch, t.state.batch_in_epoch, t.state.global_step],
                       "history": [{k: v for k, v in r.items() if k != "seconds"} for r in t.history.rows]}, f)

torch.set_num_threads(1)
out = sys.argv[1]
X, y, Xv, yv = make_data()
if sys.argv[2] == "resume":
    run(out, "resume")
else:  # the uninterrupted run, then the run that stops mid-epoch (two trainers, one launch)
    run(out, "full")
    run(out, "first")
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict:
    """The same environment as conftest's ``cli_env``: this checkout's src first, one thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = str(SRC) + (os.pathsep + env["PYTHONPATH"] if env.get("PYTHONPATH") else "")
    env["OMP_NUM_THREADS"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    env["CUDA_VISIBLE_DEVICES"] = ""  # 2 CPU processes on gloo, also on a 1-GPU machine
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        env.pop(key, None)
    return env


def torchrun(script: Path, *args, nproc: int = 2, timeout: float = TIMEOUT) -> subprocess.CompletedProcess:
    """``python -m torch.distributed.run`` on a free port, in its own session, with a timeout."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc_per_node", str(nproc),
           "--master_addr", "127.0.0.1", "--master_port", str(_free_port()), str(script), *map(str, args)]
    proc = subprocess.Popen(cmd, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"torchrun did not finish within {timeout} s (hung?)\nstdout:\n{out}\nstderr:\n{err[-4000:]}")
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, err)
    result.pgid = proc.pid
    return result


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(textwrap.dedent(text))
    return path


def _common():
    ns: dict = {}
    exec(COMMON, ns)  # noqa: S102 - the same data/model code the workers run
    return ns


def _weights(trainer) -> dict:
    return {k: v.tolist() for k, v in trainer.model.state_dict().items()}


def _assert_close(a: dict, b: dict, atol: float = 1e-5) -> None:
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(torch.tensor(a[k]), torch.tensor(b[k]), atol=atol, rtol=1e-5, msg=k)


# -- the shared 2-process run ----------------------------------------------------------------
@pytest.fixture(scope="module")
def ddp_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("ddp")
    res = torchrun(_write(tmp, "worker.py", WORKER), tmp)
    assert res.returncode == 0, f"torchrun failed ({res.returncode}):\n{res.stderr[-4000:]}"
    ranks = [json.loads((tmp / f"rank{r}.json").read_text()) for r in (0, 1)]
    ranks[0]["stdout"] = res.stdout
    return tmp, ranks


@pytest.fixture(scope="module")
def single():
    """Single-process references: the same data and model, global batch 32 = 2 x 16."""
    ns = _common()
    X, y, Xv, yv = ns["make_data"]()
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = {}
        parts = {"model": ns["TwoPart"], "step": ns["PartsStep"](), "optimizer": ns["TWO_OPTIMIZERS"]}
        for name, data, bs, kw, val in [
            ("memory", (X, y), 32, {}, (Xv, yv)),
            ("accumulate", (X, y), 16, {"accumulate_steps": 2}, None),
            ("custom_step", (X, y), 32, {"step": ns["PenaltyStep"]()}, None),
            ("parts_step", (X, y), 32, parts, (Xv, yv)),
            ("dataset", torch.utils.data.TensorDataset(X, y), 32, {}, None),
        ]:
            kw = {"optimizer": "sgd", "model": ns["make_model"], **kw}
            t = ft.Trainer(kw.pop("model")(), lr=0.1, progress=False, device="cpu", **kw)  # as the gloo ranks
            t.fit(data, val=val, epochs=3, batch_size=bs)
            out[name] = {"weights": _weights(t), "history": t.history.rows}
    finally:
        torch.set_num_threads(prev)
    return out


@pytest.mark.parametrize("name", ["memory", "accumulate", "dataset", "custom_step", "parts_step"])
def test_two_process_weights_match_single_process(ddp_run, single, name):
    """Rank r takes rows r::2 of the epoch's permutation with batch 16; DDP averages the two
    mean gradients, which equals one process's mean over the same 32 rows."""
    _, ranks = ddp_run
    assert ranks[0]["world_size"] == 2 and ranks[0]["ddp"] == "DistributedDataParallel"
    assert ranks[0]["user_model"] == "Sequential"  # trainer.model stays the user's module
    _assert_close(ranks[0][name]["weights"], single[name]["weights"])
    assert ranks[0][name]["weights"] == ranks[1][name]["weights"]  # DDP keeps replicas bit-identical
    ddp_loss = [r["train_loss"] for r in ranks[0][name]["history"]]
    one_loss = [r["train_loss"] for r in single[name]["history"]]
    assert ddp_loss == pytest.approx(one_loss, rel=1e-5)


def test_a_step_calling_the_model_parts_runs_the_bare_module_in_step(ddp_run, single):
    """No DDP wrapper (self.model.body works); the gradient average keeps ranks bit-identical."""
    _, ranks = ddp_run
    assert ranks[0]["parts_step"]["step_model"] == "TwoPart"
    assert ranks[0]["parts_step"]["history"] == ranks[1]["parts_step"]["history"]
    ddp_val = [r["val_loss"] for r in ranks[0]["parts_step"]["history"]]
    assert ddp_val == pytest.approx([r["val_loss"] for r in single["parts_step"]["history"]], rel=1e-5)


def test_a_custom_step_calling_optimizer_step_itself_is_refused_on_every_rank(ddp_run):
    """It would train each rank on its own gradients; optimizer_step averages them first."""
    _, ranks = ddp_run
    for r in ranks:
        assert "called optimizer 'head''s step() itself" in r["direct_step_error"]
        assert "self.optimizer_step('head')" in r["direct_step_error"]


def test_every_rank_has_the_same_history(ddp_run):
    _, ranks = ddp_run
    for name in ("memory", "accumulate", "dataset", "loader"):
        assert ranks[0][name]["history"] == ranks[1][name]["history"], name
    assert ranks[0]["memory"]["history"][-1].keys() >= {"train_loss", "val_loss", "val_accuracy", "seconds"}


def test_validation_metrics_equal_single_process(ddp_run, single, tmp_path):
    """Each validation sample counted once (101 rows: shards of 51 and 50, no padding)."""
    from sklearn.metrics import accuracy_score

    tmp, ranks = ddp_run
    ns = _common()
    _, _, Xv, yv = ns["make_data"]()
    # The same weights, evaluated in one process: the 2-process numbers must match.
    model = ft.load(tmp / "model", model=ns["make_model"]())
    t = ft.Trainer(model, optimizer="sgd", progress=False).load(tmp / "model")
    expected = t.evaluate((Xv, yv))
    for r in ranks:
        assert r["evaluate"]["accuracy"] == expected["accuracy"]
        assert r["evaluate"]["loss"] == pytest.approx(expected["loss"], rel=1e-6)
        assert r["memory"]["history"][-1]["val_accuracy"] == expected["accuracy"]
        assert r["memory"]["history"][-1]["val_loss"] == pytest.approx(expected["loss"], rel=1e-6)
    preds = model(Xv).argmax(1)
    assert expected["accuracy"] == pytest.approx(accuracy_score(yv.numpy(), preds.numpy()))
    one = t.evaluate((Xv[:1], yv[:1]))
    assert ranks[0]["evaluate_one"] == ranks[1]["evaluate_one"]
    assert ranks[0]["evaluate_one"]["loss"] == pytest.approx(one["loss"], rel=1e-6)
    # And the whole-run validation curve matches single-process training's.
    for a, b in zip(ranks[0]["memory"]["history"], single["memory"]["history"]):
        assert a["val_loss"] == pytest.approx(b["val_loss"], rel=1e-5, abs=1e-6)


def test_ddp_weights_load_for_single_process_predict(ddp_run):
    tmp, ranks = ddp_run
    ns = _common()
    _, _, Xv, _ = ns["make_data"]()
    model = ft.load(tmp / "model", model=ns["make_model"]())
    assert torch.equal(model(Xv).detach(), torch.tensor(ranks[0]["predict_rank0_only"]))
    assert ranks[1]["predict_rank0_only"] is None


def test_batchnorm_buffers_agree_and_evaluation_does_not_hang(ddp_run):
    _, ranks = ddp_run
    one, two = (dict(r["batchnorm"]) for r in ranks)
    assert two.pop("predict_rank1_only") is not None and one.pop("predict_rank1_only") is None  # no hang
    assert one == two
    assert len(ranks[0]["batchnorm"]["history"]) == 2


def test_only_rank_0_writes_and_shows_progress(ddp_run):
    tmp, ranks = ddp_run
    assert (tmp / "saved_by_rank0" / "model.safetensors").exists()
    assert not (tmp / "saved_by_rank1").exists()
    out = ranks[0]["stdout"]
    assert out.count("progress-check") == 2  # both ranks ran the progress fit ...
    assert out.count("Epoch 2/2") == 1  # ... and only rank 0 printed its log lines


def test_dataloader_is_sharded_without_hang(ddp_run):
    _, ranks = ddp_run
    assert ranks[0]["loader"]["weights"] == ranks[1]["loader"]["weights"]
    assert len(ranks[0]["loader"]["history"]) == 3


def test_stop_on_one_rank_is_agreed(ddp_run):
    _, ranks = ddp_run
    for r in ranks:
        assert r["stop_epoch"] == [2, "stopped"]
        assert r["stop_batch"] == [0, 4, "stopped"]  # raised after batch 3 on rank 0, agreed at batch 4


@pytest.mark.slow
def test_rank_crash_ends_the_job_with_a_clear_error(tmp_path):
    started = time.monotonic()
    res = torchrun(_write(tmp_path, "crash.py", CRASH), timeout=90)
    assert res.returncode != 0
    # torchrun's summary names rank 1 as the root cause, with fittorch's recorded error
    # (rank 0's "connection closed by peer" is not recorded, so it cannot mask it).
    summary = res.stderr[res.stderr.rfind("Root Cause"):]
    assert re.search(r"rank\s*:\s*1\b", summary), res.stderr[-3000:]
    assert "RuntimeError: rank 1 exploded on purpose" in summary
    assert time.monotonic() - started < 90
    # Nothing of the job is left: its whole process group is gone.
    deadline = time.monotonic() + 10
    while True:
        try:
            os.killpg(res.pgid, 0)
        except ProcessLookupError:
            break
        if time.monotonic() > deadline:
            os.killpg(res.pgid, signal.SIGKILL)
            pytest.fail("processes of the crashed job were still running 10 s after torchrun exited")
        time.sleep(0.2)


@pytest.mark.slow
@pytest.mark.skipif("checkpoint_dir" not in inspect.signature(ft.Trainer).parameters,
                    reason="needs the checkpoint module (Trainer(checkpoint_dir=...)), not merged yet")
def test_ddp_checkpoint_resume_is_bit_identical(tmp_path):
    script = _write(tmp_path, "ckpt.py", CHECKPOINT)
    for mode in ("full+first", "resume"):
        res = torchrun(script, tmp_path, mode)
        assert res.returncode == 0, f"{mode}: {res.stderr[-4000:]}"
    a = json.loads((tmp_path / "full.json").read_text())
    b = json.loads((tmp_path / "resume.json").read_text())
    # Stopped mid-epoch 2, after batch 3 of 7: inside an accumulation window (k=2), with dropout
    # (each rank's own RNG stream) and Adam, so every part of each rank's state must come back.
    assert json.loads((tmp_path / "first.json").read_text())["position"] == [1, 3, 5]
    assert a["history"] == b["history"]
    assert a["weights"] == b["weights"]  # bit-identical, not just close
    # The DDP checkpoint's weights load in one process for inference ...
    ns = _common()
    files = sorted((tmp_path / "first").rglob("model.safetensors"), key=lambda p: p.stat().st_mtime)
    assert files, "no model.safetensors in the checkpoint directory"
    model = ft.load(files[-1], model=ns["make_model"](dropout=0.2))
    assert {k: v.tolist() for k, v in model.state_dict().items()} == b["weights"]
    # ... and a resume with another world size is refused clearly.
    X, y, _, _ = ns["make_data"]()
    t = ft.Trainer(ns["make_model"](dropout=0.2), optimizer="adam", progress=False, checkpoint_dir=tmp_path / "first")
    with pytest.raises(CheckpointError, match=r"world.size"):
        t.fit((X, y), epochs=6, batch_size=16, resume="last")


# -- in-process units -------------------------------------------------------------------------
@pytest.mark.parametrize("n", [200, 201, 7, 1])
@pytest.mark.parametrize("source", ["memory", "dataset"])
def test_shards_cover_every_sample(n, source):
    """Shards are equal in size; every sample is used once per epoch, plus a wrap-around
    pad of at most world_size - 1 samples when n is not a multiple of world_size."""
    X, y = torch.arange(n).float().unsqueeze(1), torch.zeros(n)
    src = InMemoryData(X, y) if source == "memory" else LoaderData(torch.utils.data.TensorDataset(X, y))
    for world in (2, 3):
        for epoch in (0, 1):
            shards = [src.epoch_order(5, epoch, True, rank=r, world_size=world) for r in range(world)]
            assert len({len(s) for s in shards}) == 1  # same number of steps on every rank
            used = torch.cat(shards)
            counts = torch.bincount(used, minlength=n)
            assert (counts >= 1).all()
            assert int(counts.sum()) == n + (-n) % world
            assert 0 <= len(shards[0]) * world - n < world  # pad < world
    assert torch.equal(shard_order(torch.arange(n), 0, 1), torch.arange(n))  # one process: untouched


def test_single_process_context_is_identity():
    ctx = DistContext()
    total = torch.tensor(3.0)
    assert ctx.reduce_sum(total, 4) == (total, 4)
    assert ctx.mean_of(torch.tensor([1.0, 2.0])) == 1.5
    assert ctx.max_value(2.5) == 2.5 and ctx.any_true(True) and not ctx.any_true(False)
    assert ctx.all_gather_object({"a": 1}) == [{"a": 1}] and ctx.broadcast_object(3) == 3
    assert ctx.is_main and not ctx.enabled and ctx.rank_seed(7) == 7
    ctx.barrier()


def test_single_process_trainer_is_not_wrapped(small_clf_data, mlp_factory):
    X, y = small_clf_data
    t = ft.Trainer(mlp_factory(), progress=False)
    t.fit((X, y), epochs=1)
    assert t.step.model is t.model and t.step.no_sync is None and not t.dist.enabled


def test_world_size_mismatch_is_refused():
    with pytest.raises(CheckpointError, match=r"world size 4.*world size 2.*--nproc_per_node 4"):
        DistContext(rank=0, world_size=2).check_world_size(4)
    DistContext(rank=0, world_size=2).check_world_size(2)


def test_setup_needs_rank_with_world_size(monkeypatch):
    from fittorch.distributed import setup

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.delenv("RANK", raising=False)
    with pytest.raises(ConfigError, match="RANK is not"):
        setup(torch.device("cpu"))
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not setup(torch.device("cpu")).enabled


def test_more_cuda_processes_than_gpus_is_refused_naming_both_ways_out(monkeypatch):
    """Two ranks on a 1-GPU machine: nccl can't share a GPU, so say so before any collective."""
    from fittorch.distributed import _rank_device

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert _rank_device(torch.device("cuda"), 0, 2) == torch.device("cuda", 0)
    with pytest.raises(ConfigError, match=r"LOCAL_RANK=1, but this node has 1 visible GPU\(s\).*--nproc N.*"
                                          r"device='cpu' \(config: device: cpu\)"):
        _rank_device(torch.device("cuda"), 1, 2)


def test_ready_dataloader_gets_a_distributed_sampler():
    from torch.utils.data import DataLoader, TensorDataset
    from torch.utils.data.distributed import DistributedSampler

    ds = TensorDataset(torch.arange(11).float(), torch.zeros(11))
    loader = DataLoader(ds, batch_size=2, shuffle=True)
    seen_train, seen_eval = [], []
    for rank in (0, 1):
        ctx = DistContext(rank=rank, world_size=2)
        train = ctx.prepare_source(LoaderData(loader), role="train", seed=0).loader
        assert isinstance(train.sampler, DistributedSampler) and train.sampler.shuffle and len(train.sampler) == 6
        seen_train += list(train.sampler)
        ev = ctx.prepare_source(LoaderData(loader), role="val", seed=0).loader
        assert isinstance(ev.sampler, ShardSampler)
        seen_eval += list(ev.sampler)
    assert sorted(seen_eval) == list(range(11))  # evaluation: each sample exactly once
    assert set(seen_train) == set(range(11)) and len(seen_train) == 12  # training: padded to equal shards
    custom = DataLoader(ds, batch_sampler=[[0, 1], [2, 3]])
    with pytest.raises(ConfigError, match="batch_sampler"):
        DistContext(rank=0, world_size=2).prepare_source(LoaderData(custom), role="train", seed=0)


def test_strip_nproc_and_launch_checks():
    from fittorch.cli.launch import launch

    assert strip_nproc(["fit", "c.yaml", "--nproc", "2", "--epochs", "3"]) == ["fit", "c.yaml", "--epochs", "3"]
    assert strip_nproc(["fit", "--nproc=4", "c.yaml"]) == ["fit", "c.yaml"]
    with pytest.raises(ConfigError, match="positive"):
        launch(["fit"], 0)


def test_launch_runs_fittorch_under_torchrun(monkeypatch, capfd):
    """``fittorch.distributed.launch`` (behind ``fittorch fit --nproc N``) starts N processes."""
    from fittorch.cli.launch import launch

    for key, value in _env().items():
        monkeypatch.setenv(key, value)
    assert launch(["--nproc", "2", "--version"], 2) == 0
    out = capfd.readouterr().out
    assert out.count(f"fittorch {ft.__version__}") == 2  # one line per process


def _cli_has_nproc() -> bool:
    try:
        from fittorch.cli import build_parser

        parser = build_parser()
        parser.parse_args(["fit", "x.yaml", "--nproc", "2"])
        return True
    except SystemExit:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _cli_has_nproc(), reason="`fittorch fit --nproc N` is not wired into the CLI yet")
def test_cli_fit_nproc_makes_one_run_directory(tmp_path, cli_env, fittorch_cmd):
    """``fittorch fit CONFIG --nproc 2``: two processes, one run directory, written by rank 0."""
    config = tmp_path / "bc.yaml"
    config.write_text(textwrap.dedent("""
        name: bc
        seed: 0
        data: {source: "sklearn:breast_cancer", val_split: 0.15, test_split: 0.2}
        model: {type: mlp, hidden: [16]}
        optimizer: {name: adam, lr: 0.001}
        train: {epochs: 2, batch_size: 32}
        metrics: [accuracy]
    """))
    for key in ("RANK", "LOCAL_RANK", "WORLD_SIZE"):
        cli_env.pop(key, None)
    cli_env["CUDA_VISIBLE_DEVICES"] = ""  # gloo on the CPU, also on a 1-GPU machine
    proc = subprocess.run([*fittorch_cmd, "fit", str(config), "--nproc", "2", "--out", str(tmp_path / "runs"),
                           "--quiet"], env=cli_env, capture_output=True, text=True, timeout=TIMEOUT,
                          start_new_session=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    runs = [p for p in (tmp_path / "runs").iterdir() if p.is_dir()]
    assert [p.name for p in runs] == ["bc"], runs  # not bc and bc-2: the ranks agree on one directory
    assert (runs[0] / "model.safetensors").exists()
