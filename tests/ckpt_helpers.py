"""Shared by the checkpoint and signal tests: a tiny training script run as a real subprocess.

The script trains a dropout MLP with shuffling, an LR scheduler (torch.optim.lr_scheduler in a
callback) and a DataLoader with 2 workers, resuming with ``resume="auto"``. Test hooks come
from the environment: ``KILL_AT_STEP`` (SIGKILL itself after that optimizer step),
``SIGNAL_AT_STEP`` (``TERM:12`` / ``INT:12`` / ``TERM:12:2`` to send it twice), ``MARK_AT_STEP``
(write the process id to ``OUT/marker`` at that step), ``SLOW`` (seconds to sleep per step),
``STEP`` (``loss``: a custom ``compute_loss`` step; ``gan``: a two-optimizer GAN ``train_step``).
Steps count batches done: ``epoch * 15 + batch_in_epoch``.

Every epoch's weights go to ``OUT/epoch-N.safetensors`` and the final weights, optimizer
state and history to ``OUT/final.*``, so that runs can be compared bit for bit.
"""

from __future__ import annotations

import atexit
import json
import subprocess
import sys
from pathlib import Path

import torch

SCRIPT = r'''
import json, os, signal, sys, time
import torch
torch.set_num_threads(1)
from torch.utils.data import Dataset
import fittorch as ft
from fittorch.checkpoint.flatten import flatten
from fittorch.data import LoaderData
from safetensors.torch import save_file

ckdir, out, epochs = sys.argv[1], sys.argv[2], int(sys.argv[3])
data = os.environ.get("DATA", "loader")
accumulate = int(os.environ.get("ACCUMULATE", "1"))
os.makedirs(out, exist_ok=True)
BATCHES = 15  # 120 rows / batch_size 8

g = torch.Generator().manual_seed(0)
X = torch.randn(120, 6, generator=g)
y = (X[:, 0] + X[:, 1] * X[:, 2] > 0).long() + (X[:, 3] > 1).long()
Xv = torch.randn(40, 6, generator=g)
yv = (Xv[:, 0] + Xv[:, 1] * Xv[:, 2] > 0).long() + (Xv[:, 3] > 1).long()


step_mode = os.environ.get("STEP", "")


class Rows(Dataset):
    def __len__(self):
        return len(X)

    def __getitem__(self, i):
        return (X[i],) if step_mode == "gan" else (X[i], y[i])


class SmoothedLoss(ft.Step):
    """A custom compute_loss: label smoothing plus a penalty on large logits."""

    def compute_loss(self, batch, output):
        _, target = batch
        return torch.nn.functional.cross_entropy(output, target, label_smoothing=0.1) + 1e-3 * output.pow(2).mean()


class GAN(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.generator = torch.nn.Sequential(torch.nn.Linear(4, 16), torch.nn.ReLU(), torch.nn.Linear(16, 6))
        self.discriminator = torch.nn.Sequential(torch.nn.Linear(6, 16), torch.nn.LeakyReLU(0.2),
                                                 torch.nn.Dropout(0.2), torch.nn.Linear(16, 1))

    def forward(self, x):
        return self.discriminator(x)


class GanStep(ft.Step):
    """Two optimizers, one train_step: the discriminator's update, then the generator's."""

    def train_step(self, batch, window):
        (real,), _ = batch
        bce = torch.nn.functional.binary_cross_entropy_with_logits
        fake = self.model.generator(torch.randn(len(real), 4))  # the global RNG: restored on resume
        self.zero_grad("discriminator")
        d_real, d_fake = self.model.discriminator(real), self.model.discriminator(fake.detach())
        d_loss = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
        self.backward(d_loss)
        self.optimizer_step("discriminator", loss=d_loss)
        self.zero_grad("generator")
        g_out = self.model.discriminator(fake)
        g_loss = bce(g_out, torch.ones_like(g_out))
        self.backward(g_loss)
        self.optimizer_step("generator", loss=g_loss)
        return (d_loss + g_loss).detach()


class Schedule(ft.Callback):
    def __init__(self, optimizer):
        self.scheduler = torch.optim.lr_scheduler.StepLR(optimizer, step_size=2, gamma=0.7)

    def on_epoch_end(self, trainer, row):
        self.scheduler.step()

    def state_dict(self):
        return self.scheduler.state_dict()

    def load_state_dict(self, state):
        self.scheduler.load_state_dict(state)


def env_int(name):
    return int(os.environ[name]) if os.environ.get(name) else None


class Chaos(ft.Callback):
    kill_at, mark_at = env_int("KILL_AT_STEP"), env_int("MARK_AT_STEP")
    signal_spec = os.environ.get("SIGNAL_AT_STEP", "")
    slow = float(os.environ.get("SLOW", "0"))

    def on_fit_start(self, trainer):  # where this process starts: proves that it resumed
        s = trainer.state
        with open(os.path.join(out, "starts.jsonl"), "a") as f:
            f.write(json.dumps([s.epoch, s.batch_in_epoch, s.global_step]) + "\n")

    def on_train_batch_end(self, trainer, loss):
        step = trainer.state.epoch * BATCHES + trainer.state.batch_in_epoch  # = optimizer steps unless accumulating
        if self.slow:
            time.sleep(self.slow)
        if step == self.mark_at:
            open(os.path.join(out, "marker"), "w").write(str(os.getpid()))
        if step == self.kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        if self.signal_spec:
            name, at, *times = self.signal_spec.split(":")
            if step == int(at):
                self.signal_spec = ""
                for _ in range(int(times[0]) if times else 1):
                    os.kill(os.getpid(), getattr(signal, "SIG" + name))

    def on_epoch_end(self, trainer, row):
        save_file({k: v.contiguous() for k, v in trainer.model.state_dict().items()},
                  os.path.join(out, f"epoch-{row['epoch']}.safetensors"))


torch.manual_seed(1)
kwargs = {"loss": "cross_entropy", "step": SmoothedLoss() if step_mode == "loss" else None}
if step_mode == "gan":
    model = GAN()
    optimizer = {"generator": {"optimizer": "adam", "params": "generator", "lr": 2e-3, "betas": (0.5, 0.999)},
                 "discriminator": {"optimizer": "adam", "params": "discriminator", "lr": 2e-3}}
    kwargs = {"loss": None, "step": GanStep()}
else:
    model = torch.nn.Sequential(torch.nn.Linear(6, 32), torch.nn.ReLU(), torch.nn.Dropout(0.3),
                                torch.nn.Linear(32, 3))
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
callbacks = [Chaos()]
if step_mode == "gan":
    callbacks.append(ft.LRScheduler("step", step_size=2, gamma=0.7, optimizer="discriminator"))
    callbacks.append(ft.GradientClipping(max_norm=1.0))
else:
    callbacks.insert(0, Schedule(optimizer))
trainer = ft.Trainer(model, optimizer=optimizer, seed=5, progress=False, metrics=[],
                     callbacks=callbacks, accumulate_steps=accumulate,
                     checkpoint_dir=None if ckdir == "none" else ckdir,
                     checkpoint_every_steps=int(os.environ.get("EVERY", "7")), keep_last=2, **kwargs)
train = LoaderData(Rows(), num_workers=2) if data == "loader" else (X, y)
val = None if step_mode == "gan" else (Xv, yv)
trainer.fit(train, val=val, epochs=epochs, batch_size=8, resume=None if ckdir == "none" else "auto")

tree, tensors = flatten({k: o.state_dict() for k, o in trainer.optimizers.items()}, "opt")
tensors.update({"model/" + k: v.contiguous() for k, v in trainer.model.state_dict().items()})
save_file(tensors, os.path.join(out, "final.safetensors"))
rows = [{k: v for k, v in row.items() if k != "seconds"} for row in trainer.history]
json.dump({"optimizer": tree, "history": rows, "status": trainer.state.status,
           "global_step": trainer.state.global_step}, open(os.path.join(out, "final.json"), "w"))
print("STATUS", trainer.state.status, flush=True)
from fittorch.signals import EXIT_INTERRUPTED
sys.exit(EXIT_INTERRUPTED if trainer.state.status == "interrupted" else 0)
'''

EPOCHS = 10  # 15 batches of 8 per epoch: 150 optimizer steps
STEPS_PER_EPOCH = 15


def write_script(directory: Path) -> Path:
    path = Path(directory) / "train_script.py"
    path.write_text(SCRIPT)
    return path


# Every run of a kill test trains on the CPU, also on a GPU machine: the forked zygote children
# cannot use CUDA (the parent may have touched it), and all runs must match bit for bit.
# tests/test_cuda.py covers exact resume on a GPU.
CPU_ONLY = {"CUDA_VISIBLE_DEVICES": ""}


def run(script: Path, ckdir, out, env, *, extra_env=None, epochs=EPOCHS, check=True, timeout=240):
    proc = subprocess.run([sys.executable, str(script), str(ckdir), str(out), str(epochs)],
                          env={**env, **CPU_ONLY, **(extra_env or {})}, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode not in (0,):
        raise AssertionError(f"script failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def start(script: Path, ckdir, out, env, *, extra_env=None, epochs=EPOCHS):
    return subprocess.Popen([sys.executable, str(script), str(ckdir), str(out), str(epochs)],
                            env={**env, **CPU_ONLY, **(extra_env or {})}, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE,
                            text=True)


ZYGOTE = r'''
"""Imports torch once, then forks one fresh child per request to run the training script.

Each child is a separate process (killed for real with SIGKILL); forking from this pristine,
never-trained parent only saves the import time. Requests and replies are JSON lines.
"""
import json, os, runpy, sys, traceback
import torch, numpy, safetensors.torch, fittorch, fittorch.checkpoint, fittorch.data  # noqa: F401
import torch.utils.data

# Building an optimizer imports torch._dynamo (seconds); do it once here. No RNG is touched.
_p = torch.nn.Parameter(torch.zeros(1))
_p.grad = torch.zeros(1)
torch.optim.Adam([_p]).step()
del _p

for line in sys.stdin:
    req = json.loads(line)
    pid = os.fork()
    if pid == 0:
        log = os.open(req["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.environ.update(req["env"])
        sys.argv = req["argv"]
        code = 0
        try:
            runpy.run_path(req["argv"][0], run_name="__main__")
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    print(json.dumps({"code": os.waitstatus_to_exitcode(status)}), flush=True)
'''


class Zygote:
    """A warm parent process that forks a fresh child per training run (see ``ZYGOTE``)."""

    def __init__(self, directory: Path, env: dict):
        path = Path(directory) / "zygote.py"
        path.write_text(ZYGOTE)
        self.proc = subprocess.Popen([sys.executable, str(path)], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True)

    def submit(self, script: Path, ckdir, out, *, extra_env=None, epochs=EPOCHS) -> None:
        """Start the script in a forked child; collect it with :meth:`result`."""
        self._log = Path(out).with_suffix(".log")
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        req = {"argv": [str(script), str(ckdir), str(out), str(epochs)], "env": extra_env or {}, "log": str(self._log)}
        self.proc.stdin.write(json.dumps(req) + "\n")
        self.proc.stdin.flush()

    def result(self) -> tuple[int, str]:
        """The child's exit code (negative: killed by that signal) and its output."""
        reply = self.proc.stdout.readline()
        if not reply:
            raise AssertionError("the zygote process died")
        text = self._log.read_text() if self._log.exists() else ""
        self._log.unlink(missing_ok=True)
        return json.loads(reply)["code"], text

    def run(self, script: Path, ckdir, out, *, extra_env=None, epochs=EPOCHS) -> tuple[int, str]:
        self.submit(script, ckdir, out, extra_env=extra_env, epochs=epochs)
        return self.result()

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


_REFERENCES: dict = {}


_ZYGOTES: dict = {}


def reference(tmp_path_factory, env, step: str = "") -> Path:
    """The uninterrupted run without any checkpoint_dir (in a forked child); made once per session
    for each ``step`` mode ("": the default step, "loss", "gan")."""
    key = "loader" + step
    if key not in _REFERENCES:
        base = tmp_path_factory.mktemp("reference")
        code, log = zygote(tmp_path_factory, env).run(write_script(base), "none", base / "out",
                                                      extra_env={"STEP": step})
        assert code == 0, log
        _REFERENCES[key] = base / "out"
    return _REFERENCES[key]


def zygote(tmp_path_factory, env) -> Zygote:
    """One warm zygote per test session, closed when pytest exits."""
    if "z" not in _ZYGOTES:
        env = {**env, **CPU_ONLY}
        _ZYGOTES["z"] = Zygote(tmp_path_factory.mktemp("zygote"), env)
        atexit.register(_ZYGOTES["z"].close)
    return _ZYGOTES["z"]


def assert_same_run(out: Path, ref: Path, epochs: int = EPOCHS) -> None:
    """Final weights, optimizer state, every epoch's weights and the history: identical bits."""
    from safetensors.torch import load_file

    a, b = load_file(str(out / "final.safetensors")), load_file(str(ref / "final.safetensors"))
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, f"tensors differ from the uninterrupted run: {different}"
    ja, jb = json.loads((out / "final.json").read_text()), json.loads((ref / "final.json").read_text())
    assert ja["optimizer"] == jb["optimizer"]
    assert ja["history"] == jb["history"]  # per-epoch train/val loss, accuracy and lr, exactly
    assert ja["global_step"] == jb["global_step"]
    for e in range(1, epochs + 1):
        ea, eb = load_file(str(out / f"epoch-{e}.safetensors")), load_file(str(ref / f"epoch-{e}.safetensors"))
        assert all(torch.equal(ea[k], eb[k]) for k in eb), f"weights after epoch {e} differ"


def started_at(out: Path) -> tuple[int, int]:
    """(epochs done, batches into the next) where the newest run of the script began training."""
    lines = (Path(out) / "starts.jsonl").read_text().splitlines()
    epoch, batch, _ = json.loads(lines[-1])
    return epoch, batch


def resumes_from(ckdir: Path) -> tuple[int, int]:
    """Where a run resuming from ``ckdir`` must start: its newest checkpoint, or the beginning."""
    from fittorch.checkpoint import latest, position

    newest = latest(ckdir)
    return position(newest) if newest is not None else (0, 0)
