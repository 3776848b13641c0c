"""Atomic writes and checked reads with real files, links, FIFOs, devices, signals and memory limits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fittorch import safeio
from fittorch.errors import OutputError


def within(seconds: float, fn, *args, **kwargs):
    """Run ``fn`` in a thread; fail the test if it has not returned (or raised) after ``seconds``."""
    box = {}

    def target():
        try:
            box["value"] = fn(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - handed back to the test
            box["error"] = exc

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), f"{fn.__name__} still blocked after {seconds} s (a FIFO was opened?)"
    if "error" in box:
        raise box["error"]
    return box["value"]


def test_atomic_write_replaces_a_planted_symlink_instead_of_writing_through_it(tmp_path):
    outside = tmp_path / "outside.txt"
    outside.write_text("precious")
    run = tmp_path / "run"
    run.mkdir()
    (run / "curves.png").symlink_to(outside)
    safeio.atomic_write(run / "curves.png", b"new")
    assert outside.read_text() == "precious"
    assert not (run / "curves.png").is_symlink() and (run / "curves.png").read_bytes() == b"new"
    assert sorted(p.name for p in run.iterdir()) == ["curves.png"]  # no temporary file left


def test_atomic_writer_keeps_the_old_file_and_removes_its_temp_file_on_error(tmp_path):
    target = tmp_path / "preds.csv"
    target.write_text("old,complete\n")
    with pytest.raises(RuntimeError):
        with safeio.atomic_writer(target, text=True) as f:
            f.write("half")
            raise RuntimeError("disk full, say")
    assert target.read_text() == "old,complete\n"
    assert [p.name for p in tmp_path.iterdir()] == ["preds.csv"]


def test_atomic_write_into_a_folder_or_a_missing_folder_is_an_output_error(tmp_path):
    (tmp_path / "a_dir").mkdir()
    with pytest.raises(OutputError, match="is a folder"):
        safeio.atomic_write(tmp_path / "a_dir", b"x")
    (tmp_path / "a_file").write_text("x")
    with pytest.raises(OutputError, match="Could not write"):
        safeio.atomic_write(tmp_path / "a_file" / "preds.csv", b"x")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_dir", "a_file"]


def test_a_fifo_is_refused_within_a_second_and_never_opened(tmp_path):
    fifo = tmp_path / "model.safetensors"
    os.mkfifo(fifo)
    with pytest.raises(safeio.UnsafeFile, match="FIFO"):
        within(1.0, safeio.read_regular, fifo, max_bytes=1 << 20)
    link = tmp_path / "link.json"
    link.symlink_to(fifo)  # a link inside the folder to a FIFO: still refused
    with pytest.raises(safeio.UnsafeFile, match="FIFO"):
        within(1.0, safeio.read_regular, link, max_bytes=1 << 20, root=tmp_path)


def test_symlinks_leaving_the_folder_and_devices_are_refused(tmp_path):
    outside = tmp_path / "outside.json"
    outside.write_text("{}")
    run = tmp_path / "run"
    run.mkdir()
    (run / "run.json").symlink_to(outside)
    (run / "zero").symlink_to("/dev/zero")
    with pytest.raises(safeio.UnsafeFile, match="outside"):
        safeio.read_regular(run / "run.json", max_bytes=100, root=run)
    with pytest.raises(safeio.UnsafeFile, match="symlink to /dev/zero"):
        within(1.0, safeio.read_regular, run / "zero", max_bytes=100, root=run)
    with pytest.raises(safeio.UnsafeFile, match="a device"):
        within(1.0, safeio.read_regular, "/dev/zero", max_bytes=100)
    (run / "inside.json").write_text("{}")
    (run / "alias.json").symlink_to(run / "inside.json")  # a link that stays inside: followed
    assert safeio.read_regular(run / "alias.json", max_bytes=100, root=run) == b"{}"


def test_size_is_checked_before_reading(tmp_path):
    big = tmp_path / "state.json"
    big.write_bytes(b"x" * 1000)
    with pytest.raises(safeio.UnsafeFile, match="more than the 10 allowed"):
        safeio.read_regular(big, max_bytes=10)
    with pytest.raises(safeio.UnsafeFile, match="manifest says 999"):
        safeio.read_regular(big, max_bytes=10_000, expected=999)


BOUNDED = r'''
import os, resource, sys
import fittorch.config, fittorch.checkpoint  # noqa: F401  (imports first: the limit is on what comes after)
size = int(next(l.split()[1] for l in open("/proc/self/status") if l.startswith("VmSize"))) * 1024
resource.setrlimit(resource.RLIMIT_AS, (size + (300 << 20), size + (300 << 20)))  # 300 MB more, at most
from fittorch.errors import FittorchError
try:
    if sys.argv[1] == "config":
        fittorch.config.load_config(sys.argv[2])
    else:
        fittorch.checkpoint.verify(sys.argv[2])
except FittorchError as exc:
    print("REFUSED", type(exc).__name__, str(exc).splitlines()[0])
    sys.exit(3)
print("ACCEPTED")
'''


def _bounded(tmp_path, kind, path, cli_env):
    script = tmp_path / "bounded.py"
    script.write_text(BOUNDED)
    return subprocess.run([sys.executable, str(script), kind, str(path)], env=cli_env, capture_output=True,
                          text=True, timeout=300)


def test_billion_laughs_config_is_refused_in_bounded_memory(tmp_path, cli_env):
    lines = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, 10):
        prev, cur = chr(ord("a") + i - 1), chr(ord("a") + i)
        lines.append(f"{cur}: &{cur} [" + ",".join([f"*{prev}"] * 9) + "]")
    cfg = tmp_path / "laughs.yaml"
    cfg.write_text("data: {source: 'sklearn:iris'}\n" + "\n".join(lines) + "\n")
    assert cfg.stat().st_size < 2000
    r = _bounded(tmp_path, "config", cfg, cli_env)
    assert r.returncode == 3, r.stdout + r.stderr
    assert "REFUSED ConfigError" in r.stdout and "alias" in r.stdout


def test_dev_zero_in_a_checkpoint_is_refused_in_bounded_memory(tmp_path, cli_env):
    import hashlib
    import json

    ckpt = tmp_path / "ckpt-e000001-b0000000"
    ckpt.mkdir()
    (ckpt / "state.json").symlink_to("/dev/zero")
    digest = hashlib.sha256(b"{}").hexdigest()
    (ckpt / "manifest.json").write_text(json.dumps({"format": "fittorch-checkpoint", "version": 1,
                                                    "files": {"state.json": {"sha256": digest, "bytes": 2}}}))
    r = _bounded(tmp_path, "verify", ckpt, cli_env)
    assert r.returncode == 3 and "REFUSED CheckpointError" in r.stdout, r.stdout + r.stderr
    assert "/dev/zero" in r.stdout


KILL_PREDICT_ROWS = 400_000


def test_kill_9_during_predict_output_leaves_the_old_or_the_new_complete_file(tmp_path, fittorch_cmd, cli_env):
    import numpy as np
    import pandas as pd

    from fittorch.cli import main

    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 3))
    pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "y": (X[:, 0] > 0).astype(int)}).to_csv(
        tmp_path / "train.csv", index=False)
    (tmp_path / "c.yaml").write_text("data: {source: train.csv, target: y}\nmodel: {hidden: [4]}\n"
                                     "train: {epochs: 1, log_every: 0}\n")
    assert main(["fit", str(tmp_path / "c.yaml"), "--out", str(tmp_path / "runs"), "--quiet"]) == 0
    big = rng.normal(size=(KILL_PREDICT_ROWS, 3))
    pd.DataFrame(big, columns=["a", "b", "c"]).to_csv(tmp_path / "new.csv", index=False)
    out = tmp_path / "preds.csv"
    old = "prediction\nold-and-complete\n"
    out.write_text(old)
    proc = subprocess.Popen([*fittorch_cmd, "predict", str(tmp_path / "runs" / "c"), str(tmp_path / "new.csv"),
                             "--proba", "-o", str(out)], env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 240
    # kill as soon as writing has begun: a temporary file appears (or, without atomic writes, the
    # target itself is truncated and refilled)
    while not list(tmp_path.glob(".preds.csv.tmp-*")) and out.stat().st_size == len(old) and proc.poll() is None:
        assert time.monotonic() < deadline, "predict never started writing"
        time.sleep(0.002)
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)
    text = out.read_text()
    complete_new = text.startswith("prediction,proba_0,proba_1\n") and text.count("\n") == KILL_PREDICT_ROWS + 1
    assert text == old or complete_new, f"a partial file: {text.count(chr(10))} lines"
    Path(next(iter(tmp_path.glob(".preds.csv.tmp-*")), tmp_path / "none")).unlink(missing_ok=True)
