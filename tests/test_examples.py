"""The examples in examples/ run as pasted."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_reference_experiment_example_runs(tmp_path, cli_env):
    proc = subprocess.run([sys.executable, str(ROOT / "examples" / "reference_experiment.py")], cwd=tmp_path,
                          env=cli_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    final = float(proc.stdout.split("Final test accuracy: ")[1].split()[0])
    reloaded = float(proc.stdout.split("Reloaded model accuracy: ")[1].split()[0])
    assert final == reloaded and final > 0.75
    assert (tmp_path / "runs" / "example" / "curves.png").exists()
