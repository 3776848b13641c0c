"""``fittorch demo`` end to end, as a user runs it: a real subprocess."""

from __future__ import annotations

import csv
import json
import subprocess


def test_demo_runs_end_to_end(tmp_path, cli_env, fittorch_cmd):
    out = tmp_path / "demo"
    proc = subprocess.run([*fittorch_cmd, "demo", "--epochs", "12", "--out", str(out)], env=cli_env,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    text = proc.stdout
    assert "Using device: cpu" in text or "Using device: cuda" in text
    assert "Train: X (800, 20), y (800,) | Test: X (200, 20), y (200,)" in text
    assert "Epoch 10/12" in text and "Epoch 12/12" in text  # a log line every 10 epochs and the last
    assert "(identical)" in text
    with open(out / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == 12
    assert list(rows[0]) == ["epoch", "train_loss", "val_loss", "val_accuracy", "lr", "seconds"]
    assert float(rows[-1]["val_accuracy"]) > 0.75
    assert (out / "curves.png").read_bytes()[:4] == b"\x89PNG"
    assert (out / "confusion_matrix.png").read_bytes()[:4] == b"\x89PNG"
    assert "Reference experiment" in (out / "report.html").read_text()
    meta = json.loads((out / "model.json").read_text())
    assert meta["spec"]["hidden"] == [64] and "standardize" in meta["preprocessing"]


def test_demo_quiet_prints_one_line(tmp_path, cli_env, fittorch_cmd):
    proc = subprocess.run([*fittorch_cmd, "demo", "--epochs", "2", "--quiet", "--out", str(tmp_path)],
                          env=cli_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip().count("\n") == 0 and proc.stdout.startswith("test accuracy")


def test_demo_bad_argument_exits_2(tmp_path, cli_env, fittorch_cmd):
    proc = subprocess.run([*fittorch_cmd, "demo", "--batch-size", "0", "--out", str(tmp_path)],
                          env=cli_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2
    assert "--batch-size: 0 is out of range" in proc.stderr and "Traceback" not in proc.stderr


def test_demo_shuffle_off_matches_the_lesson_accuracy():
    """Shuffle off is the lesson's loop; it reaches the lesson's ~0.80 test accuracy."""
    from fittorch.demo import run_demo

    result = run_demo(quiet=True, shuffle=False, out=__import__("tempfile").mkdtemp())
    assert 0.75 <= result.accuracy <= 0.9
    assert result.accuracy == result.reloaded_accuracy
