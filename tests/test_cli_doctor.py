"""``fittorch doctor`` on the command line: output, --json, exit codes.

"doctor" is registered in ``fittorch.cli.COMMANDS`` by the lead when the branches merge; until
then these tests register it themselves (in-process via monkeypatch, in a subprocess via -c).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

import pytest

import fittorch.cli as cli
from fittorch.cli import doctor as cli_doctor

# Runs the real CLI entry point in a fresh interpreter, with "doctor" registered if it is not yet.
RUN_CLI = ("import sys; from fittorch import cli; "
           "'doctor' in cli.COMMANDS or cli.COMMANDS.append('doctor'); sys.exit(cli.main(sys.argv[1:]))")
QUICK = "data,init_loss,grad_flow,mode"


@pytest.fixture
def registered(monkeypatch):
    if "doctor" not in cli.COMMANDS:
        monkeypatch.setattr(cli, "COMMANDS", [*cli.COMMANDS, "doctor"])


def _parse(argv):
    parser = argparse.ArgumentParser(prog="fittorch")
    cli_doctor.add_parser(parser.add_subparsers(dest="command"))
    return parser.parse_args(["doctor", *argv])


def test_demo_json_is_machine_readable(tmp_path, capsys):
    args = _parse(["--demo", "--json", "--out", str(tmp_path), "--checks", f"{QUICK},lr_range"])
    assert cli_doctor.run(args) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["counts"]["fail"] == 0
    ids = [c["id"] for c in data["checks"]]
    assert "lr_range" in ids and "overfit_batch" not in ids
    assert data["checks"][ids.index("lr_range")]["evidence"]["plot"] == str(tmp_path / "lr_range.png")
    assert (tmp_path / "lr_range.png").stat().st_size > 5000


def test_failing_check_exits_1_and_strict_fails_on_warnings(tmp_path, capsys, monkeypatch):
    healthy = cli_doctor.demo_setup

    monkeypatch.setattr(cli_doctor, "demo_setup", lambda: {**healthy(), "lr": 10.0})
    args = _parse(["--demo", "--out", str(tmp_path), "--checks", "lr_range"])
    assert cli_doctor.run(args) == 1
    out = capsys.readouterr().out
    assert "FAIL  LR range test" in out and "fix: Use a learning rate near" in out
    assert "FAILED:" in out

    def unscaled():
        setup = healthy()
        X, y = setup["train"]
        return {**setup, "train": (X * 1000.0, y), "standardize": False}

    monkeypatch.setattr(cli_doctor, "demo_setup", unscaled)
    assert cli_doctor.run(_parse(["--demo", "--checks", "data.scale"])) == 0  # a warning alone passes
    assert cli_doctor.run(_parse(["--demo", "--checks", "data.scale", "--strict"])) == 1
    assert "WARN  feature scales" in capsys.readouterr().out


def test_usage_errors_exit_2(registered, capsys, tmp_path):
    assert cli.main(["doctor"]) == 2
    assert "needs either a CONFIG.yaml or --demo" in capsys.readouterr().err
    assert cli.main(["doctor", "--demo", "--checks", "overfit"]) == 2
    assert "Unknown doctor check 'overfit'" in capsys.readouterr().err
    assert cli.main(["doctor", str(tmp_path / "missing.yaml")]) == 2
    err = capsys.readouterr().err
    assert "config loader" in err or "does not exist" in err


def test_subprocess_checklist_and_exit_code(cli_env, tmp_path):
    cmd = [sys.executable, "-c", RUN_CLI, "doctor", "--demo", "--checks", QUICK, "--out", str(tmp_path)]
    proc = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert "PASS  initial loss" in proc.stdout and "PASS  gradient flow" in proc.stdout
    assert "\033[" not in proc.stdout  # not a terminal: no colour


def test_python_m_fittorch_doctor_when_registered(cli_env, fittorch_cmd, tmp_path):
    if "doctor" not in cli.COMMANDS:
        pytest.skip("'doctor' is not registered in fittorch.cli.COMMANDS on this branch (the lead adds it)")
    proc = subprocess.run([*fittorch_cmd, "doctor", "--demo", "--json", "--checks", QUICK, "--out", str(tmp_path)],
                          env=cli_env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["ok"] is True


def test_config_file_when_the_loader_exists(registered, tmp_path, capsys):
    pytest.importorskip("fittorch.experiment")
    cfg = tmp_path / "exp.yaml"
    cfg.write_text("seed: 0\n"
                   "data:\n  source: sklearn:make_classification\n"
                   "  params: {n_samples: 400, n_features: 20, random_state: 0}\n"
                   "model:\n  hidden: [32]\n"
                   "optimizer:\n  lr: 0.001\n"
                   "train:\n  batch_size: 32\n")
    out = tmp_path / "out"
    assert cli.main(["doctor", str(cfg), "--json", "--out", str(out), "--checks", f"{QUICK},lr_range"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["ok"] is True and data["setup"]["lr"] == 0.001
    assert cli.main(["doctor", str(cfg), "--set", "optimizer.lr=10", "--checks", "lr_range", "--out", str(out)]) == 1
