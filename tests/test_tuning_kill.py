"""`fittorch tune` killed with SIGKILL mid-trial, then run again: nothing lost, nothing repeated.

Also SIGTERM (exit 75, then the same command finishes) and two workers on one journal file.
Real processes, real signals; trials are tiny (600 rows, a few epochs).
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import time

import pytest
import torch
from safetensors.torch import load_file

pytest.importorskip("optuna")

CONFIG = """\
name: {name}
seed: 0
data:
  source: sklearn:make_classification
  params: {{n_samples: 600, n_features: 10, n_informative: 6, n_classes: 3}}
  val_split: 0.25
model: {{type: mlp, hidden: [16], dropout: 0.1}}
optimizer: {{name: adam, lr: 0.01}}
train: {{epochs: {epochs}, batch_size: 16, checkpoint_every_steps: 5, log_every: 0}}
search:
  space:
    optimizer.lr: {{loguniform: [0.001, 0.05]}}
    model.hidden: {{choice: [[8], [16, 8]]}}
    train.batch_size: {{choice: [16, 32]}}
  trials: {trials}
  sampler: random
  pruner: none
  seed: 0
"""


def write_config(tmp_path, name="kill", epochs=8, trials=3):
    path = tmp_path / f"{name}.yaml"
    path.write_text(CONFIG.format(name=name, epochs=epochs, trials=trials))
    return path


def study_json(study_dir):
    return json.loads((study_dir / "study.json").read_text())


def run_json(run_dir):
    path = run_dir / "run.json"
    try:
        return json.loads(path.read_text()) if path.exists() else {}
    except json.JSONDecodeError:
        return {}


def same_weights(a, b):
    ta, tb = load_file(str(a)), load_file(str(b))
    return ta.keys() == tb.keys() and all(torch.equal(ta[k], tb[k]) for k in ta)


def wait_for(predicate, proc, what, timeout=300):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert proc.poll() is None, f"tune ended before {what}: " + proc.communicate()[0]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def test_sigkill_mid_trial_then_rerun_resumes_that_trial_bit_exact(tmp_path, fittorch_cmd, cli_env):
    cfg = write_config(tmp_path)
    out = tmp_path / "runs"
    study = out / "kill"
    cmd = [*fittorch_cmd, "tune", str(cfg), "--out", str(out)]
    proc = subprocess.Popen(cmd, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = study / "trials" / "trial-0001"

    def mid_trial():  # trial 0 done, trial 1 training with at least one checkpoint written
        ck = victim / "checkpoints"
        return ck.is_dir() and any(p.name.startswith("ckpt-") for p in ck.iterdir()) \
            and run_json(victim).get("status") == "running"

    wait_for(mid_trial, proc, "trial 1's first checkpoint")
    time.sleep(random.Random(7).uniform(0.0, 0.3))
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL
    assert run_json(victim)["status"] == "running"  # died without a word: no chance to record anything
    assert not (victim / "model.safetensors").exists()

    rerun = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "trial 1: resuming" in rerun.stdout
    summary = study_json(study)
    assert [t["number"] for t in summary["trials"]] == [0, 1, 2]  # no trial lost, none repeated
    assert summary["counts"]["COMPLETE"] + summary["counts"]["PRUNED"] == 3
    assert summary["counts"]["FAIL"] == 0 and summary["counts"]["RUNNING"] == 0
    info = run_json(victim)
    assert info["status"] == "finished" and len(info["resumed"]) == 1  # continued, not started over
    rows = (victim / "metrics.csv").read_text().splitlines()[1:]
    assert [int(r.split(",")[0]) for r in rows] == list(range(1, 9))

    # The same trial's config, trained once without interruption: the same bits.
    ref = tmp_path / "ref"
    fit = subprocess.run([*fittorch_cmd, "fit", str(victim / "config.yaml"), "--run-dir", str(ref), "--quiet"],
                         env=cli_env, capture_output=True, text=True, timeout=300)
    assert fit.returncode == 0, fit.stderr
    assert same_weights(victim / "model.safetensors", ref / "model.safetensors")


def test_sigterm_saves_exits_75_and_the_same_command_finishes(tmp_path, fittorch_cmd, cli_env):
    cfg = write_config(tmp_path, name="term", trials=2)
    out = tmp_path / "runs"
    cmd = [*fittorch_cmd, "tune", str(cfg), "--out", str(out)]
    proc = subprocess.Popen(cmd, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    victim = out / "term" / "trials" / "trial-0000"
    wait_for(lambda: (victim / "checkpoints").is_dir() and any((victim / "checkpoints").iterdir()), proc,
             "the first checkpoint")
    proc.send_signal(signal.SIGTERM)
    log, _ = proc.communicate(timeout=300)
    assert proc.returncode == 75, log
    assert "same command" in log
    assert run_json(victim)["status"] == "interrupted"

    rerun = subprocess.run(cmd, env=cli_env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    assert "trial 0: resuming" in rerun.stdout
    summary = study_json(out / "term")
    assert [t["state"] for t in summary["trials"]] == ["COMPLETE", "COMPLETE"]
    assert len(run_json(victim)["resumed"]) == 1


def test_two_workers_share_one_study_without_duplicates(tmp_path, fittorch_cmd, cli_env):
    cfg = write_config(tmp_path, name="pair", epochs=2, trials=6)
    out = tmp_path / "runs"
    cmd = [*fittorch_cmd, "tune", str(cfg), "--out", str(out)]
    workers = [subprocess.Popen(cmd, env=cli_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
               for _ in range(2)]
    logs = [w.communicate(timeout=600)[0] for w in workers]
    assert [w.returncode for w in workers] == [0, 0], logs
    started = [line.split(":")[0] for log in logs for line in log.splitlines() if ": starting " in line]
    assert sorted(started) == [f"trial {n}" for n in range(6)]  # each trial trained by exactly one worker
    assert all(": starting " in log for log in logs), "one worker did all the work"
    assert not any(": resuming " in log for log in logs), "a worker took over a trial whose owner was alive"
    summary = study_json(out / "pair")
    assert [t["number"] for t in summary["trials"]] == list(range(6))
    assert summary["counts"]["COMPLETE"] == 6 and summary["counts"]["FAIL"] == 0
    assert sorted(p.name for p in (out / "pair" / "trials").iterdir()) == [f"trial-{n:04d}" for n in range(6)]
