"""SIGTERM a real `fittorch fit`, then `fittorch resume RUN_DIR` finishes it."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
import time

import pytest

from fittorch.cli import main

CONFIG = """\
name: longrun
seed: 0
data:
  source: sklearn:make_classification
  params: {n_samples: 2000, n_features: 20, n_informative: 10, n_classes: 3}
  val_split: 0.2
model: {type: mlp, hidden: [32]}
optimizer: {name: adam, lr: 0.001}
train: {epochs: 25, batch_size: 8, checkpoint_every_steps: 50, log_every: 1}
"""


def rows(path):
    if not path.exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow
def test_sigterm_then_resume_finishes_the_run(tmp_path, fittorch_cmd, cli_env):
    cfg = tmp_path / "long.yaml"
    cfg.write_text(CONFIG)
    run_dir = tmp_path / "runs" / "longrun"
    proc = subprocess.Popen([*fittorch_cmd, "fit", str(cfg), "--out", str(tmp_path / "runs")], env=cli_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        ckpts = run_dir / "checkpoints"
        if len(rows(run_dir / "metrics.csv")) >= 2 and ckpts.is_dir() and any(ckpts.iterdir()):
            break
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be interrupted: " + proc.communicate()[1]
    proc.send_signal(signal.SIGTERM)
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 75, err  # EXIT_INTERRUPTED: resumable
    assert f"fittorch resume {run_dir}" in err
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "interrupted" and 2 <= info["epochs"] < 25
    assert not (run_dir / "model.safetensors").exists()

    r = subprocess.run([*fittorch_cmd, "resume", str(run_dir)], env=cli_env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    info = json.loads((run_dir / "run.json").read_text())
    assert info["status"] == "finished" and info["epochs"] == 25 and len(info["resumed"]) == 1
    assert [int(row["epoch"]) for row in rows(run_dir / "metrics.csv")] == list(range(1, 26))
    assert (run_dir / "model.safetensors").exists() and info["best"]["value"] is not None

    code = main(["resume", str(run_dir)])  # nothing left to do
    assert code == 0


def test_resume_without_a_checkpoint_says_so(tmp_path, capsys):
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "config.yaml").write_text("data: {source: 'sklearn:iris'}\n")
    (run_dir / "run.json").write_text('{"status": "interrupted", "epochs": 0}')
    assert main(["resume", str(run_dir)]) == 1
    assert "has no checkpoint yet" in capsys.readouterr().err


def test_resume_needs_a_run_directory(tmp_path, capsys):
    assert main(["resume", str(tmp_path / "nope")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_a_raw_table_run_resumes_exactly(tmp_path):
    """Numeric + category-index inputs (the penguins CSV) checkpoint and resume bit for bit."""
    from pathlib import Path

    import torch
    from safetensors.torch import load_file

    config = Path(__file__).resolve().parents[1] / "examples" / "configs" / "penguins.yaml"
    common = ["--quiet", "--out", str(tmp_path)]
    assert main(["fit", str(config), "--set", "train.epochs=4", "--name", "straight", *common]) == 0
    assert main(["fit", str(config), "--set", "train.epochs=2", "--name", "split", *common]) == 0
    assert main(["resume", str(tmp_path / "split"), "--epochs", "4", "--quiet"]) == 0
    a = load_file(str(tmp_path / "straight" / "model.safetensors"))
    b = load_file(str(tmp_path / "split" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
