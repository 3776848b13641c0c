"""Predictions without torch: fittorch.serving, `fittorch predict MODEL.onnx`, examples/serve_onnx.py."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from export_helpers import ROOT, fit_run, run_blocked

pytest.importorskip("onnxruntime")
pytest.importorskip("onnx")
pytest.importorskip("onnxscript")

from fittorch import DataError  # noqa: E402
from fittorch.cli import main  # noqa: E402
from fittorch.serving import OnnxModel  # noqa: E402

NEW = ROOT / "examples" / "data" / "iris_new.csv"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """An iris run and its model.onnx."""
    run = fit_run(tmp_path_factory.mktemp("runs"), "iris_csv.yaml", "--set", "train.epochs=3")
    assert main(["export", str(run)]) == 0
    return run, run / "model.onnx"


def test_predict_on_the_onnx_file_matches_predict_on_the_run(exported, tmp_path):
    run, onnx_file = exported
    assert main(["predict", str(run), str(NEW), "--proba", "-o", str(tmp_path / "a.csv")]) == 0
    assert main(["predict", str(onnx_file), str(NEW), "--proba", "-o", str(tmp_path / "b.csv")]) == 0
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert list(a.columns) == list(b.columns) == ["prediction", "proba_setosa", "proba_versicolor", "proba_virginica"]
    assert a["prediction"].tolist() == b["prediction"].tolist()
    np.testing.assert_allclose(a.iloc[:, 1:].to_numpy(), b.iloc[:, 1:].to_numpy(), atol=1e-6)


def test_predict_on_onnx_checks_columns_by_name(exported, tmp_path):
    _, onnx_file = exported
    df = pd.read_csv(NEW)
    shuffled = df[df.columns[::-1]].assign(species="ignored")  # any column order; the target is ignored
    shuffled.to_csv(tmp_path / "shuffled.csv", index=False)
    model = OnnxModel(onnx_file)
    same = model.predict_frame(pd.read_csv(tmp_path / "shuffled.csv"), "shuffled.csv")
    assert same["prediction"].tolist() == model.predict_frame(df, "new")["prediction"].tolist()
    with pytest.raises(DataError, match="missing column.*'petal_width'"):
        model.predict_frame(df.drop(columns=["petal_width"]), "short.csv")


def test_a_file_that_is_not_onnx_or_not_from_fittorch_is_refused(tmp_path):
    (tmp_path / "junk.onnx").write_bytes(b"not a protobuf")
    with pytest.raises(DataError, match="could not be loaded by onnxruntime"):
        OnnxModel(tmp_path / "junk.onnx")
    import onnx
    from onnx import TensorProto, helper

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 2])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), str(tmp_path / "plain.onnx"))
    with pytest.raises(DataError, match="not written by fittorch export"):
        OnnxModel(tmp_path / "plain.onnx")


def test_the_serving_example_runs_with_torch_blocked(exported, cli_env, tmp_path):
    run, onnx_file = exported
    script = ROOT / "examples" / "serve_onnx.py"
    assert len([l for l in script.read_text().splitlines() if l.strip()]) <= 25
    code = (f"import runpy\nsys.argv = ['serve_onnx.py', {str(onnx_file)!r}, {str(NEW)!r}]\n"
            f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
            "assert not [m for m in sys.modules if m.split('.')[0] in ('torch', 'fittorch')]\n")
    proc = run_blocked(("torch", "fittorch"), code, cli_env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert main(["predict", str(run), str(NEW), "--proba", "-o", str(tmp_path / "ref.csv")]) == 0
    ref = pd.read_csv(tmp_path / "ref.csv")
    lines = proc.stdout.split("\n")[:-1]
    assert [line.split()[0] for line in lines] == ref["prediction"].tolist()
    assert [float(line.split()[1]) for line in lines] == pytest.approx(ref.iloc[:, 1:].max(axis=1).tolist(), abs=1e-3)
    # the snippet in docs/export.md is this file
    assert script.read_text().split('"""', 2)[2].strip() in (ROOT / "docs" / "export.md").read_text()


def test_the_blocker_really_blocks_torch(cli_env, tmp_path):
    proc = run_blocked(("torch",), "import torch\n", cli_env, tmp_path)
    assert proc.returncode != 0 and "torch is blocked in this test" in proc.stderr


def test_fittorch_predict_on_onnx_imports_no_torch(exported, cli_env, tmp_path):
    _, onnx_file = exported
    probe = run_blocked(("torch",), "import fittorch.cli\n", cli_env, tmp_path)
    if probe.returncode != 0:
        pytest.skip("this build's fittorch package imports torch when imported (the CLI's lazy imports are issue 15)")
    code = (f"from fittorch.cli import main\n"
            f"code = main(['predict', {str(onnx_file)!r}, {str(NEW)!r}, '-o', 'out.csv'])\n"
            "assert code == 0, code\n"
            "assert 'torch' not in sys.modules\n")
    proc = run_blocked(("torch",), code, cli_env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(pd.read_csv(tmp_path / "out.csv")) == len(pd.read_csv(NEW))


def test_predict_on_onnx_sends_empty_cells_to_the_graph_that_fills_them(exported, tmp_path):
    run, onnx_file = exported
    if not OnnxModel(onnx_file).contract.get("fill"):
        pytest.skip("this run's preprocessing fills no gaps (runs before the tabular preprocessing)")
    df = pd.read_csv(NEW)
    df.iloc[0, 0] = np.nan
    df.iloc[2, 3] = np.nan
    df.to_csv(tmp_path / "gaps.csv", index=False)
    assert main(["predict", str(run), str(tmp_path / "gaps.csv"), "--proba", "-o", str(tmp_path / "a.csv")]) == 0
    assert main(["predict", str(onnx_file), str(tmp_path / "gaps.csv"), "--proba", "-o", str(tmp_path / "b.csv")]) == 0
    a, b = pd.read_csv(tmp_path / "a.csv"), pd.read_csv(tmp_path / "b.csv")
    assert a["prediction"].tolist() == b["prediction"].tolist()
    np.testing.assert_allclose(a.iloc[:, 1:].to_numpy(), b.iloc[:, 1:].to_numpy(), atol=1e-6)


def test_the_onnx_predict_path_imports_no_torch_even_where_the_package_init_does(exported, cli_env, tmp_path):
    """fittorch/__init__ may import torch (until the CLI is lazy); the .onnx path itself must not.

    The package is stubbed so that only the modules on `predict MODEL.onnx` run, with torch blocked.
    """
    _, onnx_file = exported
    src = ROOT / "src" / "fittorch"
    code = (
        "import argparse, types\n"
        f"pkg = types.ModuleType('fittorch'); pkg.__path__ = [{str(src)!r}]; sys.modules['fittorch'] = pkg\n"
        "from fittorch.cli import predict\n"
        f"args = argparse.Namespace(run_dir={str(onnx_file)!r}, data={str(NEW)!r}, output='out.csv', proba=True,\n"
        "                           batch_size=1024)\n"
        "assert predict.run(args) == 0\n"
        "assert not [m for m in sys.modules if m.split('.')[0] == 'torch']\n"
    )
    proc = run_blocked(("torch",), code, cli_env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = pd.read_csv(tmp_path / "out.csv")
    assert len(out) == len(pd.read_csv(NEW)) and list(out.columns)[:2] == ["prediction", "proba_setosa"]


def test_the_contract_uses_the_task_names_and_a_0_2_file_saying_classification_still_predicts(exported, tmp_path):
    import json

    import onnx

    _, onnx_file = exported
    model = OnnxModel(onnx_file)
    assert model.task == "multiclass" and model.is_classifier
    proto = onnx.load(str(onnx_file))
    for entry in proto.metadata_props:  # as fittorch 0.2's export wrote it
        if entry.key == "fittorch":
            entry.value = json.dumps({**json.loads(entry.value), "task": "classification"})
        if entry.key == "task":
            entry.value = "classification"
    onnx.save(proto, str(tmp_path / "old.onnx"))
    old = OnnxModel(tmp_path / "old.onnx")
    assert old.task == "classification" and old.is_classifier
    df = pd.read_csv(NEW)
    pd.testing.assert_frame_equal(old.predict_frame(df, "new", proba=True), model.predict_frame(df, "new", proba=True))


def test_a_multilabel_export_predicts_one_0_1_column_per_label(tmp_path):
    import torch
    from torch import nn

    import fittorch as ft

    torch.manual_seed(0)
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(300, 4)).astype(np.float32), columns=list("abcd"))
    Y = np.stack([X["a"] > 0, X["b"] > 0.5, X["c"] + X["d"] > 0], axis=1).astype(np.float32)
    trainer = ft.Trainer(nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3)), loss="bce_with_logits",
                         lr=0.02, progress=False)
    trainer.fit((X, Y), epochs=20)
    trainer.export(tmp_path / "ml.onnx", example=X.to_numpy()[:8].copy())
    model = OnnxModel(tmp_path / "ml.onnx")
    assert model.task == "multilabel" and model.is_classifier
    frame = model.predict_frame(X, "X", proba=True)
    labels = [c for c in frame.columns if c.startswith("prediction_")]
    assert len(labels) == 3 and len(frame.columns) == 6
    expected = np.asarray(trainer.predict(X, labels=True))
    np.testing.assert_array_equal(frame[labels].to_numpy(), expected)
    assert (frame[labels].to_numpy() == Y).mean() > 0.9
