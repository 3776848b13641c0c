"""Run directories: naming, run.json, the model bundle, and the runs table."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from test_cli_resume import CONFIG as RESUME_CONFIG

from fittorch.config import save_config, validate
from fittorch.errors import ConfigError
from fittorch.experiment import build_experiment
from fittorch.runs import (execute, format_runs, list_runs, load_run, next_run_dir, plainly_valid_run_json,
                           read_run_json, write_run_json)


def test_run_dirs_auto_increment(tmp_path):
    assert next_run_dir(tmp_path, "exp") == tmp_path / "exp"
    (tmp_path / "exp").mkdir()
    assert next_run_dir(tmp_path, "exp") == tmp_path / "exp-2"
    (tmp_path / "exp-2").mkdir()
    assert next_run_dir(tmp_path, "exp") == tmp_path / "exp-3"
    with pytest.raises(ConfigError):
        next_run_dir(tmp_path, "a/b")


def test_run_json_is_written_atomically(tmp_path):
    write_run_json(tmp_path, {"status": "running", "x": np.float32(1.5)})
    assert read_run_json(tmp_path) == {"status": "running", "x": 1.5}
    assert not list(tmp_path.glob("*.tmp"))


def small_run(tmp_path, **extra):
    cfg = validate({"name": "iris", "data": {"source": "sklearn:iris", "test_split": 0.2},
                    "train": {"epochs": 5, "batch_size": 16}, "optimizer": {"lr": 0.01}, **extra})
    run_dir = next_run_dir(tmp_path, cfg.name)
    exp = build_experiment(cfg, run_dir, quiet=True)
    run_dir.mkdir(parents=True)
    save_config(cfg, run_dir / "config.yaml")
    return exp, run_dir


def test_execute_writes_a_complete_run_directory(tmp_path):
    exp, run_dir = small_run(tmp_path)
    assert execute(exp, run_dir, quiet=True) == 0
    for name in ("config.yaml", "run.json", "metrics.csv", "curves.png", "model.safetensors", "model.json"):
        assert (run_dir / name).is_file(), name
    info = read_run_json(run_dir)
    assert info["status"] == "finished" and info["epochs"] == 5 and info["max_epochs"] == 5
    assert info["versions"]["torch"] == torch.__version__ and info["command"][0] == "fittorch"
    assert info["started"] <= info["ended"] and info["seconds"] > 0 and "pid" not in info
    assert set(info["test"]) == {"loss", "accuracy"} and info["best"]["monitor"] == "val_loss"
    meta = json.loads((run_dir / "model.json").read_text())
    assert meta["classes"] == ["setosa", "versicolor", "virginica"]
    assert meta["feature_names"][0] == "sepal length (cm)"
    assert len(meta["preprocessing"]["tabular"]["numeric"]) == 4 and meta["spec"]["type"] == "mlp"
    assert len((run_dir / "metrics.csv").read_text().splitlines()) == 6

    # the bundle rebuilds model + preprocessing: same outputs, same test metrics
    cfg, prep, trainer = load_run(run_dir)
    X_test, y_test = exp.splits.test
    assert torch.equal(trainer.predict(X_test), exp.trainer.predict(X_test))
    assert trainer.evaluate((X_test, y_test)) == info["test"]
    assert prep.classes == meta["classes"]


def test_failed_run_is_recorded(tmp_path):
    exp, run_dir = small_run(tmp_path)
    exp.splits.train = (exp.splits.train[0][:, :2], exp.splits.train[1])  # wrong width -> ModelError
    with pytest.raises(Exception):
        execute(exp, run_dir, quiet=True)
    info = read_run_json(run_dir)
    assert info["status"] == "failed" and "error" in info and info["ended"]
    page = (run_dir / "report.html").read_text()  # a failed run's report says so, with the error
    assert "This run did not finish" in page and "failed" in page and info["error"].split(":")[0] in page


def test_runs_table(tmp_path):
    exp, run_dir = small_run(tmp_path)
    execute(exp, run_dir, quiet=True)
    dead = tmp_path / "dead"
    dead.mkdir()
    (dead / "config.yaml").write_text("data: {source: 'sklearn:iris'}\n")
    write_run_json(dead, {"status": "running", "pid": 2**22 + 12345, "started": "2099-01-01T00:00:00+00:00"})
    (tmp_path / "not-a-run").mkdir()
    rows = list_runs(tmp_path)
    assert [r["name"] for r in rows] == ["iris", "dead"]
    assert rows[0]["status"] == "finished" and rows[1]["status"] == "died"
    table = format_runs(rows)
    lines = table.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "EPOCHS", "BEST", "TEST", "TIME", "STARTED"]
    assert lines[1].startswith("iris") and "5/5" in lines[1] and "accuracy" in lines[1]
    with pytest.raises(ConfigError, match="does not exist"):
        list_runs(tmp_path / "nope")


def test_only_rank_0_writes_files(tmp_path, monkeypatch):
    exp, run_dir = small_run(tmp_path)
    monkeypatch.setenv("RANK", "1")
    assert execute(exp, run_dir, quiet=True) == 0
    written = {p.name for p in run_dir.iterdir()}
    # (metrics.csv comes from the csv logger, which asks trainer.dist; without a process group it is rank 0)
    assert not written & {"run.json", "model.safetensors", "model.json", "curves.png"}, written


def test_fit_into_an_exact_run_dir(tmp_path, capsys):
    from fittorch.cli import main

    cfg = tmp_path / "c.yaml"
    cfg.write_text("data: {source: 'sklearn:iris'}\ntrain: {epochs: 2}\n")
    target = tmp_path / "given"
    assert main(["fit", str(cfg), "--run-dir", str(target), "--quiet"]) == 0
    assert (target / "model.safetensors").exists() and not (tmp_path / "runs").exists()
    assert main(["fit", str(cfg), "--run-dir", str(target)]) == 2
    assert "already holds a run" in capsys.readouterr().err


def test_runs_shows_the_epochs_a_died_run_checkpointed(tmp_path):
    """A second signal (os._exit) leaves run.json at "running"; the checkpoints know how far it got."""
    import subprocess
    import sys

    exp, run_dir = small_run(tmp_path, train={"epochs": 4, "batch_size": 16})
    assert execute(exp, run_dir, quiet=True) == 0
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    info = read_run_json(run_dir)
    info.update({"status": "running", "pid": dead.pid, "epochs": None, "max_epochs": 300, "seconds": 0.0})
    write_run_json(run_dir, info)
    (row,) = list_runs(tmp_path)
    assert row["status"] == "died" and row["epochs"] == 4 and row["seconds"] is None
    line = format_runs([row]).splitlines()[1]
    assert "4/300" in line and "0.0s" not in line


def test_a_second_signal_after_the_save_exits_quietly(tmp_path):
    """No "Exception ignored in atexit callback ... KeyboardInterrupt" when Ctrl-C comes during shutdown."""
    import os
    import signal
    import subprocess
    import sys

    script = (
        "import atexit, os, signal, time\n"
        "from fittorch.runs import exit_at_once_on_signal\n"
        "def slow_shutdown():\n"
        "    os.kill(os.getpid(), signal.SIGINT)\n"
        "    time.sleep(2)\n"
        "atexit.register(slow_shutdown)\n"
        f"if {{'fix': True, 'bare': False}}[os.environ['MODE']]:\n"
        "    exit_at_once_on_signal()\n"
    )
    bare = subprocess.run([sys.executable, "-c", script], env={**os.environ, "MODE": "bare"},
                          capture_output=True, text=True, timeout=120)
    assert "Exception ignored in atexit callback" in bare.stderr  # the broken setup, reproduced
    fixed = subprocess.run([sys.executable, "-c", script], env={**os.environ, "MODE": "fix"},
                           capture_output=True, text=True, timeout=120)
    assert fixed.returncode == 128 + signal.SIGINT and "Exception ignored" not in fixed.stderr, fixed.stderr


LONG = RESUME_CONFIG.replace("epochs: 25,", "epochs: 300,")  # test_cli_resume's long run, longer


@pytest.mark.slow
def test_ctrl_c_twice_on_a_real_run(tmp_path, fittorch_cmd, cli_env):
    """Ctrl-C, the save, Ctrl-C again while the process ends: exit 75 quietly; `runs` and `report` read it."""
    import signal
    import subprocess
    import threading
    import time

    (tmp_path / "long.yaml").write_text(LONG)
    run_dir = tmp_path / "runs" / "longrun"
    proc = subprocess.Popen([*fittorch_cmd, "fit", str(tmp_path / "long.yaml"), "--out", str(tmp_path / "runs")],
                            env=cli_env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    err: list[str] = []
    threading.Thread(target=lambda: err.extend(iter(proc.stderr.readline, "")), daemon=True).start()
    deadline = time.monotonic() + 240
    metrics = run_dir / "metrics.csv"
    while time.monotonic() < deadline and proc.poll() is None:
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 3:
            break
        time.sleep(0.1)
    proc.send_signal(signal.SIGINT)
    while time.monotonic() < deadline and proc.poll() is None and not any("Continue with" in ln for ln in err):
        time.sleep(0.005)
    proc.send_signal(signal.SIGINT)  # the second Ctrl-C, as the process winds down
    proc.wait(timeout=120)
    time.sleep(0.2)
    text = "".join(err)
    assert proc.returncode == 75, text
    assert "Exception ignored" not in text and "Traceback" not in text and "KeyboardInterrupt" not in text
    (row,) = list_runs(tmp_path / "runs")
    assert row["status"] in ("interrupted", "died") and row["epochs"] >= 2  # from run.json or the checkpoints
    r = subprocess.run([*fittorch_cmd, "report", str(run_dir)], env=cli_env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    page = (run_dir / "report.html").read_text()
    assert "This run did not finish" in page and " of 300" in page and 'class="status running"' not in page


# -- run.json without pydantic -------------------------------------------------------------
_EDGES = [None, True, False, 0, -1, 3, 1 << 53, (1 << 53) + 1, 1 << 62, (1 << 62) + 1, 1 << 70, 1.5, -2.0, 1e308,
          float("nan"), float("inf"), "", "x", "x" * 4096, "x" * 4097, "3", [1], {}]
_edge = st.sampled_from(_EDGES)
_text_keys = st.sampled_from(["acc", "", "x" * 4096, "x" * 4097])
_run_fields = ["name", "status", "started", "epochs", "max_epochs", "seconds", "pid", "best", "test", "final"]
_run_json = st.fixed_dictionaries({}, optional={
    **{k: _edge for k in _run_fields},
    "best": _edge | st.fixed_dictionaries({}, optional={"monitor": _edge, "value": _edge, "epoch": _edge, "x": _edge}),
    "test": _edge | st.dictionaries(_text_keys, _edge, max_size=2),
    "final": _edge | st.dictionaries(_text_keys, _edge, max_size=2),
    "other": _edge})


@settings(max_examples=1500, deadline=None, derandomize=True)
@given(raw=_run_json)
def test_a_plainly_valid_run_json_is_one_that_the_schema_accepts(raw):
    """The fast check that spares `fittorch runs` importing pydantic never accepts what RunJson refuses."""
    from pydantic import ValidationError

    from fittorch import schemas

    try:
        schemas.RunJson.model_validate(raw)
        accepted = True
    except ValidationError:
        accepted = False
    assert not plainly_valid_run_json(raw) or accepted, raw


def test_the_fast_run_json_check_knows_every_field_and_passes_real_files(tmp_path):
    from fittorch import schemas

    assert set(schemas.RunJson.model_fields) == {"name", "status", "started", "epochs", "max_epochs", "seconds",
                                                  "pid", "best", "test", "final"}  # a new field: teach the check
    exp, run_dir = small_run(tmp_path)
    execute(exp, run_dir, quiet=True)
    assert plainly_valid_run_json(json.loads((run_dir / "run.json").read_text()))
    for bad in ({"epochs": "3"}, {"seconds": float("nan")}, {"best": {"epoch": -1}}, {"test": {"acc": "0.9"}},
                {"status": True}, {"pid": 1 << 63}, []):
        assert not plainly_valid_run_json(bad), bad
    (run_dir / "run.json").write_text('{"status": "finished", "epochs": "3"}')  # pydantic (lax) takes "3"
    assert read_run_json(run_dir) == {"status": "finished", "epochs": "3"}
    (run_dir / "run.json").write_text('{"status": "finished", "epochs": [3]}')
    assert read_run_json(run_dir)["status"] == "damaged"


# -- run folders written by fittorch 0.1/0.2 name the task "classification" ----------------------
def _rewrite_task(run_dir, old: str, new: str) -> None:
    """Make ``run_dir`` look as 0.2 wrote it: every stored task name ``old`` becomes ``new``."""
    import hashlib

    cfg = run_dir / "config.yaml"
    cfg.write_text(cfg.read_text().replace(f"task: {old}", f"task: {new}"))
    (run_dir / "split.safetensors").unlink(missing_ok=True)  # 0.2 recorded no split: it is made again
    for name, paths in (("run.json", [("task",)]), ("model.json", [("task",), ("preprocessing", "task")])):
        data = json.loads((run_dir / name).read_text())
        for path in paths:
            node = data
            for key in path[:-1]:
                node = node[key]
            assert node[path[-1]] == old, (name, path)
            node[path[-1]] = new
        (run_dir / name).write_text(json.dumps(data))
    for ckpt in (run_dir / "checkpoints").iterdir():  # the config each checkpoint was trained with
        state = json.loads((ckpt / "state.json").read_text())
        assert state["config"]["run_config"]["task"] in (old, new)  # new: kept from an earlier rewrite
        state["config"]["run_config"]["task"] = new
        data = json.dumps(state).encode()
        (ckpt / "state.json").write_bytes(data)
        manifest = json.loads((ckpt / "manifest.json").read_text())
        manifest["files"]["state.json"] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
        (ckpt / "manifest.json").write_text(json.dumps(manifest))


@pytest.mark.filterwarnings("ignore::fittorch.task.LegacyTaskWarning")
@pytest.mark.parametrize("task, loss", [("multiclass", None), ("binary", "bce_with_logits")])
def test_a_run_folder_of_0_2_naming_the_task_classification_still_works(tmp_path, task, loss):
    import contextlib
    import io

    import pandas as pd

    from fittorch.cli import main

    def cli(*argv):
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main([str(a) for a in argv])
        assert code == 0, (argv, err.getvalue())
        return out.getvalue()

    source = "sklearn:iris" if task == "multiclass" else "sklearn:breast_cancer"
    (tmp_path / "old.yaml").write_text(
        f"name: old\ndata: {{source: '{source}', val_split: 0.2}}\ntask: {task}\n"
        + (f"loss: {loss}\n" if loss else "") + "train: {epochs: 2, batch_size: 32}\noptimizer: {lr: 0.01}\n")
    cli("fit", tmp_path / "old.yaml", "--out", tmp_path / "runs", "--quiet")
    run_dir = tmp_path / "runs" / "old"
    before = json.loads(cli("evaluate", run_dir, source, "--json"))
    own_split = json.loads(cli("evaluate", run_dir, "--json"))  # its val rows, from split.safetensors
    cli("predict", run_dir, source, "--proba", "--output", tmp_path / "before.csv")
    _rewrite_task(run_dir, task, "classification")

    with pytest.warns(FutureWarning, match=f"task 'classification' is the old name; it is read as task: {task}"):
        assert json.loads(cli("evaluate", run_dir, source, "--json")) == before
    assert json.loads(cli("evaluate", run_dir, "--json")) == own_split  # split again from the seed
    cli("predict", run_dir, source, "--proba", "--output", tmp_path / "after.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "after.csv"), pd.read_csv(tmp_path / "before.csv"))
    cli("report", run_dir)
    assert "old" in cli("runs", tmp_path / "runs")
    _, prep, _ = load_run(run_dir)
    assert prep.task == task

    cli("resume", run_dir, "--epochs", "3", "--quiet")  # the checkpoint's "classification" is no change
    assert read_run_json(run_dir)["epochs"] == 3
    assert f"task: {task}" in (run_dir / "config.yaml").read_text()  # written with today's name
    assert json.loads((run_dir / "model.json").read_text())["preprocessing"]["task"] == task
    assert read_run_json(run_dir)["task"] == task

    pytest.importorskip("onnxruntime")
    _rewrite_task(run_dir, task, "classification")  # and an export of the old folder names the task anew
    from fittorch.serving import OnnxModel

    cli("export", run_dir)
    assert OnnxModel(run_dir / "model.onnx").task == task
