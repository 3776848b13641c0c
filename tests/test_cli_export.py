"""`fittorch export`: what it prints, and a clear error for each kind of bad input."""

from __future__ import annotations

import os
import shutil
import textwrap

import pytest

from export_helpers import ROOT, fit_run

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from fittorch.cli import main  # noqa: E402


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    return fit_run(tmp_path_factory.mktemp("runs"), "iris_csv.yaml", "--set", "train.epochs=3")


def test_export_prints_where_and_the_parity_figure(iris_run, tmp_path, capsys):
    assert main(["export", str(iris_run), "--format", "pt2", "-o", str(tmp_path / "iris.pt2"),
                 "--rows", str(ROOT / "examples" / "data" / "iris_holdout.csv")]) == 0
    out = capsys.readouterr().out
    assert f"Wrote {tmp_path / 'iris.pt2'}" in out
    assert "parity on 15 rows (first 15 of" in out and "max |exported - fittorch predict| = " in out
    assert (tmp_path / "iris.pt2").is_file() and [p.name for p in tmp_path.iterdir()] == ["iris.pt2"]


@pytest.mark.parametrize("args, code, message", [
    (["--format", "onxx"], 2, "Unknown export format 'onxx'. Did you mean 'onnx'?"),
    (["-o", "{tmp}/no/such/folder/m.onnx"], 2, "output folder '{tmp}/no/such/folder' does not exist"),
    (["-o", "{tmp}/m.pt2"], 2, "ends in '.pt2', but the format is onnx"),
    (["-o", "{tmp}/exports/"], 2, "output folder '{tmp}/exports' does not exist"),
    (["--checkpoint", "first"], 2, "Unknown checkpoint 'first'"),
])
def test_bad_arguments_are_refused_before_any_work(iris_run, tmp_path, capsys, args, code, message):
    args = [a.format(tmp=tmp_path) for a in args]
    assert main(["export", str(iris_run), *args]) == code
    err = capsys.readouterr().err
    assert message.format(tmp=tmp_path) in err and "Traceback" not in err
    assert not (iris_run / "model.onnx").exists()


def test_a_run_without_weights_says_how_to_get_them(iris_run, tmp_path, capsys):
    run = tmp_path / "unfinished"
    shutil.copytree(iris_run, run)
    (run / "model.safetensors").unlink()
    assert main(["export", str(run)]) == 1
    err = capsys.readouterr().err
    assert "has no trained weights (model.safetensors is missing" in err
    assert f"It has checkpoints: finish it with fittorch resume {run}, then export" in err
    assert main(["export", str(run), "--checkpoint", "last"]) == 1  # a checkpoint needs the run's model.json too
    assert not (run / "model.onnx").exists()


def test_an_imported_model_that_cannot_be_traced_names_its_line(tmp_path, capsys, monkeypatch):
    (tmp_path / "branchy_models.py").write_text(textwrap.dedent("""
        from torch import nn

        class Branchy(nn.Module):
            def __init__(self, in_features, out_features):
                super().__init__()
                self.lin = nn.Linear(in_features, out_features)

            def forward(self, x):
                out = self.lin(x)
                if out.max() > 100:  # a decision on tensor values
                    out = out / 100
                return out
    """))
    monkeypatch.syspath_prepend(str(tmp_path))
    (tmp_path / "cfg.yaml").write_text(textwrap.dedent(f"""
        name: branchy
        data: {{source: sklearn:iris, test_split: 0.2}}
        model: {{type: import, target: "branchy_models:Branchy"}}
        train: {{epochs: 1}}
    """))
    assert main(["fit", str(tmp_path / "cfg.yaml"), "--quiet", "--out", str(tmp_path / "runs")]) == 0
    capsys.readouterr()
    assert main(["export", str(tmp_path / "runs" / "branchy")]) == 2  # imports code: needs the opt-in
    assert "--trust-code" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "runs" / "branchy"), "--trust-code"]) == 2
    err = capsys.readouterr().err
    assert "(Branchy) cannot be exported: its forward branches on the values of a tensor at " in err
    assert "branchy_models.py:11 `if out.max() > 100:" in err and "torch.where" in err


def test_export_is_listed_in_help_and_its_module_imports_no_torch(capsys):
    import subprocess
    import sys

    with pytest.raises(SystemExit):
        main(["--help"])
    assert "export" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        main(["export", "--help"])
    out = capsys.readouterr().out
    assert "example:" in out and "fittorch export runs/digits" in out
    proc = subprocess.run([sys.executable, "-c", "import sys, importlib, fittorch.cli as c; before = set(sys.modules); "
                           "importlib.import_module('fittorch.cli.export'); "
                           "print(sorted(m for m in set(sys.modules) - before "
                           "if m.split('.')[0] in ('torch', 'onnx', 'onnxruntime', 'onnxscript')))"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stderr


def test_the_python_snippets_in_docs_export_run(iris_run, tmp_path, monkeypatch, capsys):
    import re

    monkeypatch.chdir(tmp_path)
    (tmp_path / "runs").mkdir()
    shutil.copytree(iris_run, tmp_path / "runs" / "iris_csv")
    assert main(["export", "runs/iris_csv", "--format", "pt2"]) == 0
    blocks = re.findall(r"```python\n(.*?)```", (ROOT / "docs" / "export.md").read_text(), flags=re.S)
    runnable = [b for b in blocks if "sys.argv" not in b]  # the serving script runs in tests/test_serving.py
    assert len(blocks) == 3 and len(runnable) == 2
    for block in runnable:
        exec(compile(block, "docs/export.md", "exec"), {})
    out = capsys.readouterr().out
    assert "parity on 256 rows (the example rows)" in out and "virginica" in out


def test_the_imported_digits_cnn_exports_to_both_formats(tmp_path, capsys, monkeypatch):
    import onnxruntime as ort
    from sklearn.datasets import load_digits

    from fittorch.runs import load_run

    monkeypatch.syspath_prepend(str(ROOT / "examples"))  # model.target: custom_models:DigitsCNN
    run = fit_run(tmp_path, "digits_cnn.yaml", "--set", "train.epochs=1")
    for fmt in ("onnx", "pt2"):
        assert main(["export", str(run), "--format", fmt, "--rows", "sklearn:digits", "--trust-code"]) == 0
        assert "parity on 1000 rows (first 1000 of sklearn:digits)" in capsys.readouterr().out
    X = load_digits().data[:50].astype("float32")
    import pandas as pd

    _, prep, trainer = load_run(run, trust_code=True)
    labels, _ = prep.decode(trainer.predict(prep.frame_to_X(pd.DataFrame(X, columns=prep.feature_names), "X")))
    (_, proba) = ort.InferenceSession(str(run / "model.onnx")).run(None, {"features": X})
    assert [prep.classes[i] for i in proba.argmax(1)] == labels
    # the .pt2 program runs with neither fittorch nor the model's own module importable
    import numpy as np

    from export_helpers import run_blocked

    np.save(tmp_path / "X.npy", X)
    code = ("import numpy as np, torch\n"
            f"program = torch.export.load({str(run / 'model.pt2')!r})\n"
            "with torch.no_grad():\n"
            "    _, proba = program.module()(torch.from_numpy(np.load('X.npy')))\n"
            "np.save('proba.npy', proba.numpy())\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = run_blocked(("fittorch", "custom_models"), code, env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    np.testing.assert_allclose(np.load(tmp_path / "proba.npy"), proba, atol=1e-5)


def test_a_run_with_categorical_columns_ships_its_vocabulary_beside_the_graph(tmp_path, capsys):
    """Text columns: the graph takes category codes; model.vocab.json maps text to codes (docs/export.md)."""
    import json

    import numpy as np
    import onnxruntime as ort
    import pandas as pd

    pytest.importorskip("fittorch.tabular")
    if not (ROOT / "examples" / "configs" / "penguins.yaml").exists():
        pytest.skip("no categorical example config in this build")
    run = fit_run(tmp_path, "penguins.yaml", "--set", "train.epochs=3")
    assert main(["export", str(run)]) == 0
    assert "parity on" in capsys.readouterr().out
    vocab = json.loads((run / "model.vocab.json").read_text())
    assert vocab["format"] == "fittorch.vocabulary/1" and vocab["unknown"] == 0 and vocab["missing"] == 1
    assert "island" in [c["name"] for c in vocab["columns"]]
    session = ort.InferenceSession(str(run / "model.onnx"))
    assert [i.name for i in session.get_inputs()] == ["numeric", "categorical"]
    new = ROOT / "examples" / "data" / "penguins_new.csv"  # gaps and an island never seen in training
    assert main(["predict", str(run), str(new), "--proba", "-o", str(tmp_path / "a.csv")]) == 0
    assert main(["predict", str(run / "model.onnx"), str(new), "--proba", "-o", str(tmp_path / "b.csv")]) == 0
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert a["prediction"].tolist() == b["prediction"].tolist()
    np.testing.assert_allclose(a.iloc[:, 1:].to_numpy(), b.iloc[:, 1:].to_numpy(), atol=1e-5)
    assert main(["export", str(run), "--format", "pt2"]) == 0


def test_a_bf16_run_is_checked_against_float32_predict(tmp_path, capsys):
    run = fit_run(tmp_path, "iris_csv.yaml", "--set", "train.epochs=2", "--set", "train.precision=bf16")
    assert main(["export", str(run)]) == 0
    out = capsys.readouterr().out
    assert "predict in float32, the run trained in bf16" in out
    assert float(out.split("max |exported - fittorch predict| = ")[1].split()[0]) < 1e-4
