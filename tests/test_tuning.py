"""`fittorch tune` end to end, in this process: trials are run folders, pruning, best.yaml, the report."""

from __future__ import annotations

import csv
import json
import weakref

import pytest
import torch
from safetensors.torch import load_file

from fittorch.cli import main

optuna = pytest.importorskip("optuna")

CONFIG = """\
name: {name}
seed: 0
data: {{source: sklearn:iris, val_split: 0.3, test_split: 0.2}}
model: {{type: mlp, hidden: [16]}}
optimizer: {{name: adam, lr: 0.01}}
train: {{epochs: {epochs}, batch_size: 16, log_every: 0}}
loggers: [csv]
search:
{search}
"""

PRUNING_SEARCH = """\
  space:
    optimizer.lr: {choice: [0.05, 0.000001]}
    seed: {choice: [0, 1, 2]}
  sampler: grid
  pruner: median
  startup_trials: 1
  seed: 3
"""


def write(tmp_path, search, name="study", epochs=4):
    path = tmp_path / f"{name}.yaml"
    path.write_text(CONFIG.format(name=name, epochs=epochs, search=search))
    return path


def rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_pruned_trials_stop_at_an_epoch_and_keep_their_history(tmp_path, capsys):
    cfg = write(tmp_path, PRUNING_SEARCH, epochs=5)
    assert main(["tune", str(cfg), "--out", str(tmp_path / "runs")]) == 0
    study_dir = tmp_path / "runs" / "study"
    summary = json.loads((study_dir / "study.json").read_text())
    states = [t["state"] for t in summary["trials"]]
    assert len(states) == 6 and set(states) <= {"COMPLETE", "PRUNED"}  # grid of 6: trials default to all
    pruned = [t for t in summary["trials"] if t["state"] == "PRUNED"]
    assert pruned, "no trial was pruned"
    assert any(t["params"]["optimizer.lr"] == 0.000001 for t in pruned)  # the hopeless learning rate
    for t in pruned:
        run_dir = study_dir / t["run_dir"]
        info = json.loads((run_dir / "run.json").read_text())
        assert info["status"] == "stopped" and info["stop_reason"].startswith("pruned by optuna at epoch")
        history = rows(run_dir / "metrics.csv")
        assert 1 <= len(history) < 5 and len(history) == info["epochs"] == t["epochs"]
        frozen = summary["trials"][t["number"]]
        assert frozen["value"] == pytest.approx(float(history[-1]["val_loss"]))  # last reported value
    assert f"{len(pruned)} pruned" in capsys.readouterr().out


def test_trials_are_run_folders_and_best_yaml_trains_the_best_trial_again(tmp_path, capsys):
    search = """\
  space:
    optimizer.lr: {loguniform: [0.003, 0.1]}
    model.hidden: {choice: [[8], [16, 8]]}
    train.batch_size: {int: [16, 32], step: 16}
  metric: val_accuracy
  trials: 3
  sampler: random
  pruner: none
  seed: 0
"""
    cfg = write(tmp_path, search, epochs=3)
    out = tmp_path / "runs"
    built = []  # weak references to each trial's model, to see that a trial's memory is freed

    import fittorch.tuning.trial as trial_mod

    real_build = trial_mod.build_trainer

    def spy(*args, **kwargs):
        trainer = real_build(*args, **kwargs)
        built.append((weakref.ref(trainer.model), [ref() is None for ref, _ in built]))
        return trainer

    trial_mod.build_trainer = spy
    try:
        assert main(["tune", str(cfg), "--out", str(out)]) == 0
    finally:
        trial_mod.build_trainer = real_build
    assert len(built) == 3
    assert all(all(freed) for _, freed in built)  # every earlier trial's model was gone before the next began

    study_dir = out / "study"
    summary = json.loads((study_dir / "study.json").read_text())
    assert summary["metric"] == "val_accuracy" and summary["direction"] == "maximize"
    trial_dirs = sorted((study_dir / "trials").iterdir())
    assert [p.name for p in trial_dirs] == ["trial-0000", "trial-0001", "trial-0002"]
    for t, run_dir in zip(summary["trials"], trial_dirs):
        for name in ("config.yaml", "run.json", "metrics.csv", "model.safetensors", "model.json", "report.html"):
            assert (run_dir / name).exists(), name
        saved = (run_dir / "config.yaml").read_text()
        assert "search" not in saved and f"batch_size: {t['params']['train.batch_size']}" in saved
        best_acc = max(float(r["val_accuracy"]) for r in rows(run_dir / "metrics.csv"))
        assert t["value"] == pytest.approx(best_acc)
    capsys.readouterr()

    # evaluate, predict and runs take a trial folder as any run folder.
    assert main(["evaluate", str(trial_dirs[0]), "--json"]) == 0
    assert "accuracy" in json.loads(capsys.readouterr().out)
    assert main(["runs", str(study_dir / "trials")]) == 0
    assert "trial-0002" in capsys.readouterr().out

    # best.yaml: a plain config; fit trains the best trial again, to the same weights.
    best = summary["best"]
    assert best["value"] == max(t["value"] for t in summary["trials"])
    text = (study_dir / "best.yaml").read_text()
    assert "search" not in text
    assert main(["fit", str(study_dir / "best.yaml"), "--run-dir", str(tmp_path / "again"), "--quiet"]) == 0
    a = load_file(str(study_dir / best["run_dir"] / "model.safetensors"))
    b = load_file(str(tmp_path / "again" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)

    # The study report is one self-contained page with the history, importances and slices.
    page = (study_dir / "report.html").read_text()
    for key in ("history", "importances", "slices"):
        assert f"id='{key}'" in page
    assert "data:image/png;base64," in page and "http" not in page.replace("http-equiv", "")

    # Running the finished study again does nothing new; more trials continue it.
    assert main(["tune", str(cfg), "--out", str(out)]) == 0
    assert len(json.loads((study_dir / "study.json").read_text())["trials"]) == 3
    assert main(["tune", str(cfg), "--out", str(out), "--trials", "4"]) == 0
    assert [t["number"] for t in json.loads((study_dir / "study.json").read_text())["trials"]] == [0, 1, 2, 3]


def test_optuna_pruning_callback_in_your_own_optuna_loop():
    import fittorch as ft

    g = torch.Generator().manual_seed(0)
    X = torch.randn(200, 5, generator=g)
    y = (X[:, 0] > 0).long()

    def objective(trial):
        lr = trial.suggest_float("lr", 1e-6, 1e-1, log=True)
        model = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.ReLU(), torch.nn.Linear(8, 2))
        pruning = ft.OptunaPruning(trial, monitor="val_loss")
        trainer = ft.Trainer(model, lr=lr, callbacks=[pruning], progress=False, metrics=[])
        history = trainer.fit((X[:150], y[:150]), val=(X[150:], y[150:]), epochs=4, batch_size=32)
        if pruning.pruned:
            assert trainer.state.status == "stopped" and len(history) < 4
            raise optuna.TrialPruned()
        return min(r["val_loss"] for r in history)

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0),
                                pruner=optuna.pruners.MedianPruner(n_startup_trials=2))
    study.enqueue_trial({"lr": 0.05})
    study.enqueue_trial({"lr": 0.05})
    study.enqueue_trial({"lr": 1e-6})
    study.optimize(objective, n_trials=3)
    states = [t.state.name for t in study.trials]
    assert states == ["COMPLETE", "COMPLETE", "PRUNED"]
    assert study.trials[2].intermediate_values == {1: pytest.approx(study.trials[2].intermediate_values[1])}


def test_optuna_pruning_names_a_missing_column():
    import fittorch as ft

    class Trial:
        def report(self, value, step):
            pass

        def should_prune(self):
            return False

    model = torch.nn.Linear(3, 2)
    trainer = ft.Trainer(model, callbacks=[ft.OptunaPruning(Trial(), monitor="val_accuracy")], progress=False)
    with pytest.raises(ft.ConfigError, match="val_accuracy.*train_loss"):
        trainer.fit((torch.randn(20, 3), torch.randint(0, 2, (20,))), epochs=1)


def test_python_api_matches_the_cli(tmp_path):
    import fittorch as ft

    search = """\
  space:
    optimizer.lr: {choice: [0.01, 0.05]}
  trials: 2
  sampler: grid
  pruner: none
"""
    result = ft.tune(write(tmp_path, search, name="api", epochs=2), out=tmp_path / "runs", log=lambda *a: None)
    assert result.exit_code == 0
    assert result.study_dir == tmp_path / "runs" / "api"
    assert sorted(t.params["optimizer.lr"] for t in result.study.trials) == [0.01, 0.05]
    assert result.best_value == min(t.value for t in result.study.trials)
    assert (result.study_dir / "best.yaml").exists()


def test_docs_tune_md_python_snippets_run(tmp_path, monkeypatch, capsys):
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "examples").symlink_to(root / "examples")
    blocks = re.findall(r"```python\n(.*?)```", (root / "docs" / "tune.md").read_text(), flags=re.S)
    assert len(blocks) == 2
    for block in blocks:
        exec(compile(block, "docs/tune.md", "exec"), {})
    out = capsys.readouterr().out
    assert "best.yaml" in out and (tmp_path / "runs" / "digits_quick" / "report.html").exists()
