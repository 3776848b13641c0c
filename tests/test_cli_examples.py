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


def test_penguins_raw_csv_fit_evaluate_predict(tmp_path, fittorch_cmd, cli_env):
    """The raw penguins CSV (text columns, gaps) trains, and raw rows evaluate and predict."""
    import pandas as pd

    def cli(*argv):
        return subprocess.run([*fittorch_cmd, *map(str, argv)], env=cli_env, capture_output=True, text=True,
                              timeout=300, cwd=tmp_path)

    r = cli("fit", CONFIGS / "penguins.yaml", "--out", tmp_path / "runs", "--quiet")
    assert r.returncode == 0, r.stderr
    run_dir = tmp_path / "runs" / "penguins"
    info = json.loads((run_dir / "run.json").read_text())
    assert info["test"]["accuracy"] >= 0.95, info["test"]
    meta = json.loads((run_dir / "model.json").read_text())
    assert meta["spec"]["type"] == "tabular_mlp" and meta["spec"]["column_names"] == ["island", "sex", "year"]
    assert meta["preprocessing"]["tabular"]["format"] == "fittorch.tabular/1"

    data = ROOT / "examples" / "data"
    r = cli("evaluate", run_dir, data / "penguins_labelled.csv", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["rows"] == 5 and result["unknown_categories"]["island"] == {"count": 1, "examples": ["Anvers"]}

    r = cli("predict", run_dir, data / "penguins_new.csv", "--output", tmp_path / "p.csv")
    assert r.returncode == 0, r.stderr
    assert "read as the unknown level: island: 1 row(s), e.g. 'Anvers'" in r.stderr
    preds = pd.read_csv(tmp_path / "p.csv")["prediction"].tolist()
    assert len(preds) == 5 and set(preds) <= {"Adelie", "Chinstrap", "Gentoo"}
    assert preds[0] == "Gentoo" and preds[1] == "Chinstrap"  # clear-cut rows of the example

    new = pd.read_csv(data / "penguins_new.csv")
    new.drop(columns=["sex"]).to_csv(tmp_path / "nosex.csv", index=False)
    new.assign(body_mass_g=["heavy"] * 5).to_csv(tmp_path / "text.csv", index=False)
    for path, expected in ((tmp_path / "nosex.csv", "missing column(s) 'sex', which the model uses"),
                           (tmp_path / "text.csv", "'body_mass_g' should hold numbers but holds text")):
        r = cli("predict", run_dir, path)
        assert r.returncode == 2 and expected in r.stderr, r.stderr
        assert "Traceback" not in r.stderr
