"""A run folder is untrusted input: one writer, atomic folders, planted links/FIFOs, damaged files, opt-in code."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fittorch.cli import main

CONFIG = ("name: base\ndata: {source: train.csv, target: species}\nmodel: {hidden: [8]}\n"
          "optimizer: {lr: 0.01}\ntrain: {epochs: 3, batch_size: 32, log_every: 0, checkpoint_every_steps: 4}\n")


def make_data(folder: Path, n: int = 160, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 4))
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    df["species"] = np.where(X[:, 0] + X[:, 1] > 0, "x", "y")
    df.to_csv(folder / "train.csv", index=False)
    df.drop(columns=["species"]).to_csv(folder / "new.csv", index=False)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory):
    """One real finished run (checkpoints included), trained once; tests work on copies."""
    folder = tmp_path_factory.mktemp("base")
    make_data(folder)
    (folder / "base.yaml").write_text(CONFIG)
    assert main(["fit", str(folder / "base.yaml"), "--out", str(folder / "runs"), "--quiet"]) == 0
    return folder


@pytest.fixture
def run(base_run, tmp_path):
    shutil.copytree(base_run, tmp_path / "w")
    return tmp_path / "w" / "runs" / "base"


def test_two_concurrent_fits_of_one_name_get_two_folders(tmp_path, fittorch_cmd, cli_env):
    make_data(tmp_path)
    (tmp_path / "base.yaml").write_text(CONFIG)
    cmd = [*fittorch_cmd, "fit", str(tmp_path / "base.yaml"), "--out", str(tmp_path / "runs"), "--quiet"]
    procs = [subprocess.Popen(cmd, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(2)]
    results = [p.communicate(timeout=400) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["base", "base-2"]
    ends = sorted(out.strip().rsplit("-> ", 1)[1] for out, _ in results)
    assert [Path(e).name for e in ends] == ["base", "base-2"]  # each process wrote its own folder
    for d in ("base", "base-2"):
        info = json.loads((tmp_path / "runs" / d / "run.json").read_text())
        assert info["status"] == "finished" and info["name"] == d


def test_a_second_writer_is_refused_naming_the_holder_and_a_stale_lock_is_taken_over(run, cli_env, capsys):
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time\nfrom fittorch.rundir import RunLock\n"
                               "with RunLock(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(120)\n",
                               str(run)], env=cli_env, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        assert main(["resume", str(run), "--epochs", "4"]) == 1
        err = capsys.readouterr().err
        assert f"in use by process {holder.pid}" in err and "one fit, resume or tune" in err
    finally:
        holder.kill()
        holder.wait()
    # the holder was killed: its lock file still names it, and the next writer takes over
    assert (run / ".lock").read_text().split()[0] == str(holder.pid)
    assert main(["resume", str(run), "--epochs", "4", "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"left by process {holder.pid}, which no longer runs" in err


def test_planted_symlinks_are_replaced_not_written_through(run, capsys):
    outside = run.parent.parent / "outside.txt"
    outside.write_text("precious")
    for name in ("curves.png", "report.html", "metrics.csv", "run.json.tmp", "metrics.csv.tmp"):
        target = run / name
        target.unlink(missing_ok=True)
        target.symlink_to(outside if name != "metrics.csv" else outside)
    (run / "metrics.csv").unlink()
    shutil.copy(run.parent.parent / "train.csv", run / "ignored.csv")
    (run / "metrics.csv").write_text("epoch,train_loss\n1,0.5\n")  # a real one, for report to read
    assert main(["report", str(run)]) == 0
    assert outside.read_text() == "precious"
    assert not (run / "curves.png").is_symlink() and not (run / "report.html").is_symlink()
    (run / "metrics.csv").unlink()
    (run / "metrics.csv").symlink_to(outside)
    assert main(["resume", str(run), "--epochs", "4", "--quiet"]) == 0
    assert outside.read_text() == "precious"
    assert not (run / "metrics.csv").is_symlink()


@pytest.mark.parametrize("where", ["model.safetensors", "model.json", "config.yaml", "checkpoint state.json"])
def test_a_fifo_anywhere_in_a_run_folder_is_refused_not_waited_on(run, where, capsys):
    if where.startswith("checkpoint"):
        from fittorch.checkpoint import latest

        path = latest(run / "checkpoints") / "state.json"
        args = ["evaluate", str(run), "--checkpoint", "last"]
    else:
        path = run / where
        args = ["predict", str(run), str(run.parent.parent / "new.csv")]
    path.unlink()
    os.mkfifo(path)
    started = time.monotonic()
    code = main(args)
    err = capsys.readouterr().err
    assert code in (1, 2) and "FIFO" in err, err
    assert time.monotonic() - started < 120  # it returned at all: nothing opened the FIFO


def test_dev_zero_as_the_weights_is_refused(run, capsys):
    (run / "model.safetensors").unlink()
    (run / "model.safetensors").symlink_to("/dev/zero")
    assert main(["predict", str(run), str(run.parent.parent / "new.csv")]) == 1
    assert "symlink to /dev/zero" in capsys.readouterr().err


def test_structurally_damaged_newest_manifest_falls_back_with_a_warning(run):
    import fittorch as ft
    from fittorch.checkpoint import CheckpointWarning, list_checkpoints, load_checkpoint

    found = list_checkpoints(run / "checkpoints")
    assert len(found) >= 2
    newest, previous = found[-1], found[-2]
    manifest = json.loads((newest / "manifest.json").read_text())
    manifest["files"] = list(manifest["files"])  # a list where a mapping belongs
    (newest / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ft.errors.CheckpointError, match="files"):
        load_checkpoint(newest)
    with pytest.warns(CheckpointWarning, match=f"previous good checkpoint {previous}"):
        assert main(["resume", str(run), "--epochs", "4", "--quiet"]) == 0


@pytest.mark.parametrize("name", ["../../etc/passwd", "/etc/passwd", "..", "a/b"])
def test_verify_refuses_file_names_leaving_the_checkpoint(run, name):
    from fittorch.checkpoint import latest, verify
    from fittorch.errors import CheckpointError

    newest = latest(run / "checkpoints")
    manifest = json.loads((newest / "manifest.json").read_text())
    manifest["files"][name] = {"sha256": "0" * 64, "bytes": 10}
    (newest / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(CheckpointError, match="damaged or not written by fittorch"):
        verify(newest)


def test_a_damaged_run_json_does_not_hide_the_other_runs(run, capsys):
    other = run.parent / "other"
    shutil.copytree(run, other)
    (run / "run.json").write_text('{"status": "finished", "best": {"value": "a string"}, "epochs": [1]}')
    assert main(["runs", str(run.parent)]) == 0
    rows = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[1:]}
    assert rows == {"base": "damaged", "other": "finished"}


def test_model_json_with_wrong_preprocessing_is_refused(run, capsys):
    meta = json.loads((run / "model.json").read_text())
    meta["preprocessing"]["tabular"] = None  # the plain layout: one mean and one scale per feature
    meta["preprocessing"]["mean"] = [0.0]
    (run / "model.json").write_text(json.dumps(meta))
    assert main(["predict", str(run), str(run.parent.parent / "new.csv")]) == 1
    assert "preprocessing.mean has 1 value(s) for 4 feature(s)" in capsys.readouterr().err
    meta["preprocessing"]["mean"] = [0.0] * 4
    meta["preprocessing"]["scale"] = [1.0, 0.0, 1.0, 1.0]
    (run / "model.json").write_text(json.dumps(meta))
    assert main(["predict", str(run), str(run.parent.parent / "new.csv")]) == 1
    assert "greater than 0" in capsys.readouterr().err


def test_an_edited_hidden_width_is_refused_before_the_model_is_built(run, capsys):
    text = (run / "config.yaml").read_text().replace("hidden: [8]", "hidden: [1000000, 1000000]")
    (run / "config.yaml").write_text(text)
    assert main(["predict", str(run), str(run.parent.parent / "new.csv")]) == 1  # 10^12 weights if it were built
    assert "do not fit MLP" in capsys.readouterr().err


def test_import_in_a_run_folder_config_needs_trust_code(run, tmp_path, capsys):
    import yaml

    marker = tmp_path / "PWNED"
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["model"].update(type="import", target="os:system", kwargs={"command": f"touch {marker}"})
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    for args in (["predict", str(run), str(run.parent.parent / "new.csv")], ["evaluate", str(run)],
                 ["resume", str(run), "--epochs", "4"]):
        assert main(args) == 2
        err = capsys.readouterr().err
        assert "'os:system'" in err and "--trust-code" in err
        assert not marker.exists()


def test_config_errors_exit_2_before_any_folder_is_made(tmp_path, capsys):
    make_data(tmp_path)
    (tmp_path / "bad.yaml").write_text("data: {source: train.csv, target: species}\nseed: 4294967296\n"
                                       "optimizer: {lr: .inf}\ntrain: {batch_size: 0}\n")
    assert main(["fit", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "runs")]) == 2
    err = capsys.readouterr().err
    assert "3 problems" in err and "seed" in err and "optimizer.lr" in err and "train.batch_size" in err
    assert not (tmp_path / "runs").exists()
    (tmp_path / "ok.yaml").write_text(CONFIG)
    assert main(["fit", str(tmp_path / "ok.yaml"), "--out", str(tmp_path / "runs"), "--name", "n" * 300]) == 2
    assert "not a folder name" in capsys.readouterr().err
    (tmp_path / "afile").write_text("")
    assert main(["fit", str(tmp_path / "ok.yaml"), "--out", str(tmp_path / "afile")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    (tmp_path / "latin.yaml").write_bytes("name: caf\xe9\n".encode("latin-1"))
    assert main(["fit", str(tmp_path / "latin.yaml")]) == 2
    assert "not UTF-8" in capsys.readouterr().err


def test_report_that_cannot_write_says_so_and_does_not_claim_it_wrote(run, capsys):
    (run / "report.html").unlink()
    (run / "report.html").mkdir()  # something in the way (as a read-only folder would be)
    assert main(["report", str(run)]) == 1
    out = capsys.readouterr().out
    assert "could not write" in out and "Wrote" not in out


def test_predict_output_into_a_missing_folder_is_an_output_error(run, capsys):
    (run.parent.parent / "blocker").write_text("")
    code = main(["predict", str(run), str(run.parent.parent / "new.csv"), "-o",
                 str(run.parent.parent / "blocker" / "preds.csv")])
    assert code == 2 and "Could not write" in capsys.readouterr().err
