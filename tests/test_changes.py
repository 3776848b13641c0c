"""Resume with safe changes (`--set optimizer.lr=...`); unsafe ones and hand edits of config.yaml refused."""

from __future__ import annotations

import json

import pytest

from fittorch.changes import diff
from fittorch.cli import main
from test_runs_trust import base_run, run  # noqa: F401 - fixtures: one real finished run


def lr_column(run) -> list[float]:
    import csv

    return [float(r["lr"]) for r in csv.DictReader((run / "metrics.csv").open())]


def test_diff_names_nested_keys():
    assert diff({"optimizer": {"lr": 1.0}, "name": "a"}, {"optimizer": {"lr": 0.5}, "name": "b"}) == {
        "optimizer.lr": (1.0, 0.5)}


def test_resume_with_a_lower_lr_applies_it_after_the_optimizer_state_and_records_it(run, capsys):
    assert main(["resume", str(run), "--set", "optimizer.lr=0.002", "--set", "train.epochs=5", "--quiet"]) == 0
    assert lr_column(run) == [0.01, 0.01, 0.01, 0.002, 0.002]
    info = json.loads((run / "run.json").read_text())
    assert info["changes"][-1]["set"] == {"optimizer.lr": [0.01, 0.002], "train.epochs": [3, 5]}
    assert "optimizer.lr 0.01 -> 0.002" in capsys.readouterr().err
    assert "lr: 0.002" in (run / "config.yaml").read_text()


@pytest.mark.parametrize("change", ["train.batch_size=8", "model.hidden=[4]", "seed=3", "data.val_split=0.3"])
def test_unsafe_changes_are_refused_naming_the_key(run, change, capsys):
    assert main(["resume", str(run), "--epochs", "4", "--set", change]) == 2
    assert change.split("=")[0] in capsys.readouterr().err
    assert json.loads((run / "run.json").read_text())["epochs"] == 3  # nothing trained


def test_hand_edits_of_config_yaml_are_checked_against_the_checkpoint(run, capsys):
    text = (run / "config.yaml").read_text()
    (run / "config.yaml").write_text(text.replace("batch_size: 32", "batch_size: 16"))
    assert main(["resume", str(run), "--epochs", "4"]) == 2
    err = capsys.readouterr().err
    assert "edited since the checkpoint" in err and "train.batch_size: 32 -> 16" in err
    (run / "config.yaml").write_text(text.replace("lr: 0.01", "lr: 0.003"))  # a safe edit: applied, not ignored
    assert main(["resume", str(run), "--epochs", "4", "--quiet"]) == 0
    assert lr_column(run)[-1] == 0.003
