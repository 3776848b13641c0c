"""The example configs reach their targets through the real executable, and `runs` lists them."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "examples" / "configs"

# config, metric in run.json's "test" entry, minimum (the targets)
TARGETS = [("digits", "accuracy", 0.95), ("breast_cancer", "accuracy", 0.95), ("diabetes", "r2", 0.40)]


@pytest.mark.slow
def test_example_configs_reach_their_targets_and_runs_lists_them(tmp_path, fittorch_cmd, cli_env):
    runs = tmp_path / "runs"
    for name, metric, minimum in TARGETS:
        r = subprocess.run([*fittorch_cmd, "fit", str(CONFIGS / f"{name}.yaml"), "--out", str(runs), "--quiet"],
                           env=cli_env, capture_output=True, text=True, timeout=300)
        assert r.returncode == 0, r.stderr
        info = json.loads((runs / name / "run.json").read_text())
        assert info["status"] == "finished"
        assert info["test"][metric] >= minimum, (name, info["test"])
        assert f"test {metric} {info['test'][metric]:.4f}" in r.stdout

    r = subprocess.run([*fittorch_cmd, "runs", str(runs)], env=cli_env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:]}
    assert set(rows) == {name for name, _, _ in TARGETS}
    for name, metric, _ in TARGETS:
        assert " finished " in rows[name] and f"{metric} " in rows[name]
