"""The fittorch executable end to end, in real subprocesses: fit, evaluate, predict, runs, errors."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from fittorch.cli import main

ROOT = Path(__file__).resolve().parents[1]


def make_csv(path: Path, n: int, seed: int, label: bool = True) -> pd.DataFrame:
    """Three species with text labels, separable from four numeric columns."""
    rng = np.random.default_rng(seed)
    names = np.array(["adelie", "gentoo", "chinstrap"])
    k = rng.integers(0, 3, size=n)
    centers = np.array([[38.0, 18.0, 190.0, 3700.0], [47.0, 15.0, 217.0, 5000.0], [49.0, 18.5, 196.0, 3700.0]])
    X = centers[k] + rng.normal(0, 1, size=(n, 4)) * np.array([1.5, 0.6, 6.0, 250.0])
    df = pd.DataFrame(X, columns=["bill_length", "bill_depth", "flipper", "mass"])
    if label:
        df["species"] = names[k]
    df.to_csv(path, index=False)
    return df


def cli(cmd, env, *args, cwd=None, timeout=240):
    return subprocess.run([*cmd, *map(str, args)], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout)


@pytest.fixture
def penguins(tmp_path):
    make_csv(tmp_path / "train.csv", 240, seed=0)
    holdout = make_csv(tmp_path / "holdout.csv", 60, seed=1)
    new = holdout.drop(columns=["species"])
    new.to_csv(tmp_path / "new.csv", index=False)
    (tmp_path / "penguins.yaml").write_text(
        "name: penguins\n"
        "data: {source: train.csv, target: species, val_split: 0.2}\n"  # relative to this file
        "model: {type: mlp, hidden: [16]}\n"
        "optimizer: {name: adam, lr: 0.01}\n"
        "train: {epochs: 15, batch_size: 32, log_every: 5}\n")
    return tmp_path


def test_csv_with_string_labels_fit_evaluate_predict(penguins, fittorch_cmd, cli_env, tmp_path):
    work = tmp_path / "elsewhere"
    work.mkdir()
    r = cli(fittorch_cmd, cli_env, "fit", penguins / "penguins.yaml", "--out", "runs", cwd=work)
    assert r.returncode == 0, r.stderr
    run_dir = work / "runs" / "penguins"
    assert "finished after 15 epochs" in r.stdout and "Epoch 15/15" in r.stdout
    for name in ("config.yaml", "run.json", "metrics.csv", "curves.png", "model.safetensors", "model.json"):
        assert (run_dir / name).is_file(), name
    meta = json.loads((run_dir / "model.json").read_text())
    assert meta["classes"] == ["adelie", "chinstrap", "gentoo"]
    assert meta["feature_names"] == ["bill_length", "bill_depth", "flipper", "mass"]

    # evaluate on a labelled file, from another folder (the run dir is all it needs)
    r = cli(fittorch_cmd, cli_env, "evaluate", run_dir, penguins / "holdout.csv", "--json")
    assert r.returncode == 0, r.stderr
    result = json.loads(r.stdout)
    assert result["rows"] == 60 and result["accuracy"] >= 0.9

    # predict: original label names, one row per input row, probabilities that sum to 1
    r = cli(fittorch_cmd, cli_env, "predict", run_dir, penguins / "new.csv", "--proba", "--output", tmp_path / "p.csv")
    assert r.returncode == 0, r.stderr
    preds = pd.read_csv(tmp_path / "p.csv")
    truth = pd.read_csv(penguins / "holdout.csv")["species"]
    assert list(preds.columns) == ["prediction", "proba_adelie", "proba_chinstrap", "proba_gentoo"]
    assert set(preds["prediction"]) <= {"adelie", "gentoo", "chinstrap"} and len(preds) == 60
    np.testing.assert_allclose(preds.iloc[:, 1:].sum(axis=1), 1.0, rtol=1e-5)
    # the CLI's predictions agree with its own evaluation
    assert (preds["prediction"] == truth).mean() == pytest.approx(result["accuracy"], abs=1e-6)

    # a second fit of the same config does not overwrite: penguins-2 (in-process: the same code path)
    code, _ = run_main(["fit", penguins / "penguins.yaml", "--out", work / "runs", "--quiet", "--set", "train.epochs=2"])
    assert code == 0 and (work / "runs" / "penguins-2" / "model.safetensors").exists()

    code, out = run_main(["runs", work / "runs"], stream="stdout")
    lines = out.splitlines()
    assert lines[0].split()[:3] == ["NAME", "STATUS", "EPOCHS"]
    assert lines[1].split()[:3] == ["penguins", "finished", "15/15"]
    assert lines[2].split()[:3] == ["penguins-2", "finished", "2/2"]

    # evaluate/predict input errors: exit 2 and one line naming the columns
    bad = pd.read_csv(penguins / "holdout.csv")
    bad.drop(columns=["mass"]).to_csv(tmp_path / "missing.csv", index=False)
    bad.assign(extra=1.0).to_csv(tmp_path / "extra.csv", index=False)
    bad.drop(columns=["species"]).to_csv(tmp_path / "nolabel.csv", index=False)
    bad.assign(species="walrus").to_csv(tmp_path / "newlabel.csv", index=False)
    cases = [
        (["predict", run_dir, tmp_path / "missing.csv"], "missing column(s) 'mass'"),
        (["predict", run_dir, tmp_path / "extra.csv"], "not trained on: 'extra'"),
        (["evaluate", run_dir, tmp_path / "extra.csv"], "not trained on: 'extra'"),
        (["evaluate", run_dir, tmp_path / "nolabel.csv"], "no target column 'species'"),
        (["evaluate", run_dir, tmp_path / "newlabel.csv"], "never saw: walrus"),
        (["evaluate", run_dir, tmp_path / "nothere.csv"], "does not exist"),
        (["predict", tmp_path / "no-run", tmp_path / "new.csv"], "does not exist"),
    ]
    for argv, expected in cases:
        code, err = run_main(argv)
        assert code == 2, (argv, err)
        assert err.startswith("fittorch: error: ") and expected in err.splitlines()[0], err


def run_main(argv, stream="stderr"):
    import contextlib
    import io

    buf = io.StringIO()
    redirect = contextlib.redirect_stderr if stream == "stderr" else contextlib.redirect_stdout
    with redirect(buf):
        code = main([str(a) for a in argv])
    return code, buf.getvalue()


BAD_CONFIGS = [
    ("data: {source: 'sklearn:iris'}\ntrian: {epochs: 3}\n", "unknown key 'trian'. Did you mean 'train'?"),
    ("data: {source: 'sklearn:iris'}\ntrain: {epochs: ten}\n", "'train.epochs' must be an integer"),
    ("data: {source: 'sklearn:iris'}\noptimizer: {name: adamm}\n", "'optimizer.name': unknown optimizer 'adamm'. Did you mean 'adam'?"),
    ("data: {source: 'sklearn:iris'}\nloss: crossentropyy\n", "unknown loss 'crossentropyy'. Did you mean 'cross_entropy'?"),
    ("data: {source: 'sklearn:iris'}\nmetrics: [accuracyy]\n", "Unknown metric 'accuracyy'"),
    ("data: {source: 'sklearn:iris'}\nmodel: {activation: rellu}\n", "unknown activation 'rellu'. Did you mean 'relu'?"),
    ("data: {source: 'sklearn:iris'}\ndevice: cuda:7\n", "device='cuda:7'"),
    ("data: {source: 'sklearn:iris'}\nmodel: {type: import, target: 'no_such_pkg.mod:Net'}\n",
     "cannot import module 'no_such_pkg.mod'"),
    ("data: {source: missing.csv, target: y}\n", "does not exist"),
    ("data: {source: 'sklearn:iris'\n", "not valid YAML at line"),
    ("data: {source: 'sklearn:iris', val_split: 0}\ncallbacks: {early_stopping: {patience: 3}}\n",
     "no validation data"),
]


@pytest.mark.parametrize("text, expected", BAD_CONFIGS)
def test_config_errors_exit_2_with_one_line(tmp_path, text, expected):
    p = tmp_path / "bad.yaml"
    p.write_text(text)
    code, err = run_main(["fit", p, "--out", tmp_path / "runs"])
    lines = err.strip().splitlines()
    assert code == 2, err
    assert lines[0].startswith("fittorch: error: ") and expected in lines[0], lines[0]
    assert len(lines) == 2 and lines[1].startswith("hint:")
    assert not (tmp_path / "runs" / "bad").exists()  # no run directory for a config that cannot run


def test_config_errors_through_the_executable(tmp_path, fittorch_cmd, cli_env):
    p = tmp_path / "bad.yaml"
    p.write_text(BAD_CONFIGS[0][0])
    r = cli(fittorch_cmd, cli_env, "fit", p)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.splitlines()[0] == f"fittorch: error: {p}: unknown key 'trian'. Did you mean 'train'? " \
        "Valid keys at the top level: name, seed, data, model, task, loss, optimizer, scheduler, train, callbacks, " \
        "metrics, monitor, device, loggers, search."
    r = cli(fittorch_cmd, cli_env, "fit", p, "--set", "train.epochs=x", "--debug")
    assert r.returncode != 0 and "Traceback" in r.stderr  # --debug shows the traceback
    with pytest.raises(SystemExit) as info:  # argparse usage error
        main(["fit"])
    assert info.value.code == 2


def test_help_has_a_worked_example_for_each_command(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "worked example" in out and "fittorch fit iris.yaml" in out
    for command in ("fit", "resume", "evaluate", "predict", "report", "runs"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        out = capsys.readouterr().out
        assert "example:" in out and f"fittorch {command}" in out, command


def test_example_configs_are_valid():
    from fittorch.config import load_config

    configs = sorted((ROOT / "examples" / "configs").glob("*.yaml"))
    assert len(configs) >= 4
    for path in configs:
        load_config(path)


def test_an_id_like_column_warns_in_one_plain_line_and_bad_tables_exit_2(tmp_path, capsys):
    import warnings

    import numpy as np

    root = Path(__file__).resolve().parents[1]
    df = pd.read_csv(root / "examples" / "data" / "penguins.csv")
    df.assign(rowid=[f"r{i}" for i in range(len(df))]).to_csv(tmp_path / "ids.csv", index=False)
    df.assign(empty=np.nan).to_csv(tmp_path / "empty.csv", index=False)
    config = str(root / "examples" / "configs" / "penguins.yaml")
    from fittorch.cli import _plain_fittorch_warning
    from fittorch.tabular import TabularWarning

    with pytest.warns(TabularWarning, match="'rowid' is used as categorical but has"):
        code = main(["fit", config, "--set", f"data.source={tmp_path / 'ids.csv'}", "--set", "train.epochs=1",
                     "--out", str(tmp_path / "runs"), "--quiet"])
    assert code == 0
    fmt = _plain_fittorch_warning(warnings.formatwarning)  # what the CLI prints: one line, no source excerpt
    assert fmt("looks like an ID", TabularWarning, "x.py", 1) == "fittorch: warning: looks like an ID\n"
    assert "UserWarning" in fmt("other", UserWarning, "x.py", 1)
    code, err = run_main(["fit", config, "--set", f"data.source={tmp_path / 'empty.csv'}", "--out",
                          str(tmp_path / "runs")])
    assert code == 2 and "column 'empty' is entirely missing" in err.splitlines()[0]


def test_multilabel_from_a_config_fit_evaluate_predict_export(tmp_path):
    """data.target lists the 0/1 label columns: one sigmoid output per label, end to end."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 4))
    df = pd.DataFrame(X, columns=list("abcd")).assign(color=rng.choice(["red", "blue"], size=400))
    df["sports"] = (X[:, 0] > 0).astype(int)
    df["music"] = X[:, 1] > 0.5
    df["art"] = ((X[:, 2] + X[:, 3] > 0) | (df.color == "red")).astype(int)
    df.iloc[:300].to_csv(tmp_path / "train.csv", index=False)
    df.iloc[300:].to_csv(tmp_path / "hold.csv", index=False)
    df.iloc[300:].drop(columns=["sports", "music", "art"]).to_csv(tmp_path / "new.csv", index=False)
    (tmp_path / "tags.yaml").write_text(
        "data: {source: train.csv, target: [sports, music, art], val_split: 0.2}\n"
        "model: {hidden: [32]}\noptimizer: {lr: 0.01}\ntrain: {epochs: 30}\n")
    code, err = run_main(["fit", tmp_path / "tags.yaml", "--out", tmp_path / "runs", "--quiet"])
    run_dir = tmp_path / "runs" / "tags"
    assert code == 0, err
    assert read_json(run_dir / "run.json")["task"] == "multilabel"
    assert read_json(run_dir / "model.json")["preprocessing"]["target"] == ["sports", "music", "art"]

    code, out = run_main(["evaluate", run_dir, tmp_path / "hold.csv", "--json"], stream="stdout")
    result = json.loads(out)
    assert code == 0 and {"subset_accuracy", "hamming_loss", "f1_micro"} <= set(result)
    assert result["subset_accuracy"] > 0.85

    code, err = run_main(["predict", run_dir, tmp_path / "new.csv", "--proba", "-o", tmp_path / "p.csv"])
    assert code == 0, err
    preds = pd.read_csv(tmp_path / "p.csv")
    labels = ["prediction_sports", "prediction_music", "prediction_art"]
    assert list(preds.columns) == labels + ["proba_sports", "proba_music", "proba_art"]
    truth = df.iloc[300:][["sports", "music", "art"]].astype(int).to_numpy()
    assert (preds[labels].to_numpy() == truth).all(axis=1).mean() == pytest.approx(result["subset_accuracy"])
    np.testing.assert_array_equal(preds[labels].to_numpy(), (preds.iloc[:, 3:].to_numpy() >= 0.5).astype(int))

    code, err = run_main(["predict", run_dir, tmp_path / "hold.csv", "-o", tmp_path / "same.csv"])
    assert code == 0, err  # a labelled file: the label columns are skipped, as a single target is
    assert pd.read_csv(tmp_path / "same.csv").equals(preds[labels])

    pytest.importorskip("onnxruntime")
    code, err = run_main(["export", run_dir])
    assert code == 0, err
    code, err = run_main(["predict", run_dir / "model.onnx", tmp_path / "new.csv", "--proba", "-o", tmp_path / "o.csv"])
    assert code == 0, err
    onnx = pd.read_csv(tmp_path / "o.csv")
    assert list(onnx.columns) == list(preds.columns) and onnx[labels].equals(preds[labels])
    np.testing.assert_allclose(onnx.iloc[:, 3:].to_numpy(), preds.iloc[:, 3:].to_numpy(), atol=1e-5)


def read_json(path):
    return json.loads(Path(path).read_text())
