"""fittorch.export: ONNX and .pt2 files with the preprocessing folded in, parity-checked."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from torch import nn

from export_helpers import ROOT, fit_run, run_blocked

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")
pytest.importorskip("onnxscript")

from fittorch import ConfigError, Trainer  # noqa: E402
from fittorch.export import ExportFailed, ParityError, export_run  # noqa: E402
from fittorch.runs import load_run  # noqa: E402


@pytest.fixture(scope="module")
def iris_run(tmp_path_factory):
    return fit_run(tmp_path_factory.mktemp("runs"), "iris_csv.yaml", "--set", "train.epochs=3")


@pytest.fixture(scope="module")
def diabetes_run(tmp_path_factory):
    return fit_run(tmp_path_factory.mktemp("runs"), "diabetes.yaml", "--set", "train.epochs=3")


def _fittorch_predict(run_dir, X_raw):
    """Labels, probabilities and logits as `fittorch predict` computes them (saved preprocessing + model)."""
    import pandas as pd

    _, prep, trainer = load_run(run_dir)
    logits = trainer.predict(prep.frame_to_X(pd.DataFrame(X_raw.astype(np.float64), columns=prep.feature_names), "X"))
    labels, proba = prep.decode(logits)
    return labels, proba, logits.numpy(), prep


def test_onnx_of_a_run_takes_raw_features_any_batch_and_carries_names(iris_run, tmp_path):
    result = export_run(iris_run, format="onnx", output=tmp_path / "iris.onnx")
    assert result.path == tmp_path / "iris.onnx" and result.parity.rows == 27  # the run's val split (20% of 135 rows)
    assert result.parity.max_abs_diff < 1e-4
    model = onnx.load(str(result.path))
    meta = {p.key: p.value for p in model.metadata_props}
    assert json.loads(meta["class_names"]) == ["setosa", "versicolor", "virginica"]
    assert json.loads(meta["feature_names"]) == ["sepal_length", "sepal_width", "petal_length", "petal_width"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    import pandas as pd

    raw = pd.read_csv(ROOT / "examples" / "data" / "iris_new.csv").to_numpy(np.float32)
    labels, proba, logits, _ = _fittorch_predict(iris_run, raw)
    session = ort.InferenceSession(str(result.path), providers=["CPUExecutionProvider"])
    for n in (1, 2, len(raw)):  # dynamic batch, including a single row
        got_logits, got_proba = session.run(["logits", "probabilities"], {"features": raw[:n]})
        np.testing.assert_allclose(got_logits, logits[:n], atol=1e-5)
        np.testing.assert_allclose(got_proba, proba[:n], atol=1e-6)
    assert [["setosa", "versicolor", "virginica"][i] for i in got_proba.argmax(1)] == labels


def test_pt2_loads_without_fittorch_or_the_model_class(iris_run, tmp_path, cli_env):
    result = export_run(iris_run, format="pt2", output=tmp_path)
    assert result.path == tmp_path / "model.pt2"
    import pandas as pd

    raw = pd.read_csv(ROOT / "examples" / "data" / "iris_new.csv").to_numpy(np.float32)
    np.save(tmp_path / "raw.npy", raw)
    code = (
        "import json, numpy as np, torch\n"
        "extra = {'fittorch.json': ''}\n"
        "program = torch.export.load('model.pt2', extra_files=extra)\n"
        "with torch.no_grad():\n"
        "    logits, proba = program.module()(torch.from_numpy(np.load('raw.npy')))\n"
        "np.save('proba.npy', proba.numpy())\n"
        "print(json.loads(extra['fittorch.json'])['classes'])\n"
        "assert 'fittorch' not in ' '.join(sys.modules)\n"
    )
    proc = run_blocked(("fittorch",), code, cli_env, tmp_path)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "['setosa', 'versicolor', 'virginica']" in proc.stdout
    _, proba, _, _ = _fittorch_predict(iris_run, raw)
    np.testing.assert_allclose(np.load(tmp_path / "proba.npy"), proba, atol=1e-6)


def test_regression_prediction_comes_back_in_target_units(diabetes_run, tmp_path):
    result = export_run(diabetes_run, format="onnx", output=tmp_path / "d.onnx", rows="sklearn:diabetes")
    assert result.parity.rows == 442 and result.contract.output_names == ["prediction"]
    from sklearn.datasets import load_diabetes

    raw = load_diabetes().data.astype(np.float32)
    values, _, _, prep = _fittorch_predict(diabetes_run, raw)
    assert prep.target_mean is not None  # the scaled target is folded back
    (got,) = ort.InferenceSession(str(result.path)).run(None, {"features": raw})
    np.testing.assert_allclose(got, values, rtol=1e-5, atol=1e-3)
    assert 50 < float(np.mean(got)) < 250  # disease progression units, not standardized ones


def test_a_checkpoint_is_exported_when_asked(iris_run, tmp_path):
    best = export_run(iris_run, format="onnx", output=tmp_path / "best.onnx", checkpoint="best")
    assert "checkpoint best" in best.contract.source
    with pytest.raises(ConfigError, match="Did you mean 'best'"):
        export_run(iris_run, format="onnx", output=tmp_path / "x.onnx", checkpoint="bets")


class _Branchy(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        if x.sum() > 0:  # control flow on tensor values
            return self.lin(x)
        return -self.lin(x)


class _FixedBatch(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        if x.shape[0] == 16:  # a Python branch on the batch size freezes it
            return self.lin(x) * 2.0
        return self.lin(x)


class _ExportsDifferently(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        out = self.lin(x)
        return out + 1.0 if torch.compiler.is_exporting() else out


def _fitted(model, n=16):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 4)).astype(np.float32)
    y = rng.integers(0, 3, size=n)
    trainer = Trainer(model, loss="cross_entropy", progress=False, seed=0)
    trainer.fit((X, y), epochs=1, batch_size=n)
    return trainer, X


def test_data_dependent_control_flow_is_named_with_its_line(tmp_path):
    trainer, X = _fitted(_Branchy())
    with pytest.raises(ExportFailed, match=r"branches on the values of a tensor at .*test_export.py:\d+ "
                                           r"`if x.sum\(\) > 0:.*torch.where"):
        trainer.export(tmp_path / "m.onnx", example=X)
    assert not list(tmp_path.iterdir())


def test_a_fixed_batch_size_is_named(tmp_path):
    trainer, X = _fitted(_FixedBatch())
    with pytest.raises(ExportFailed, match=r"fixes the batch size to 16 .*x.reshape\(x.shape\[0\]"):
        trainer.export(tmp_path / "m.pt2", format="pt2", example=X)


@pytest.mark.parametrize("fmt", ["onnx", "pt2"])
def test_parity_failure_names_the_difference_and_writes_nothing(tmp_path, fmt):
    trainer, X = _fitted(_ExportsDifferently())
    with pytest.raises(ParityError, match=r"logits: max abs difference 1 > 0.0001.*Nothing was written"):
        trainer.export(tmp_path / f"m.{fmt}", format=fmt, example=X)
    assert not list(tmp_path.iterdir())


class _DictModel(nn.Module):
    def __init__(self):
        super().__init__()
        self.a = nn.Linear(4, 2)
        self.b = nn.Linear(3, 2)

    def forward(self, num, extra):
        return self.a(num) + self.b(extra)


def test_a_model_with_named_inputs_is_exported_with_those_names(tmp_path):
    rng = np.random.default_rng(0)
    X = {"num": rng.normal(size=(32, 4)).astype(np.float32), "extra": rng.normal(size=(32, 3)).astype(np.float32)}
    y = rng.integers(0, 2, size=32)
    trainer = Trainer(_DictModel(), loss="cross_entropy", progress=False)
    trainer.fit((X, y), epochs=1, batch_size=8)
    result = trainer.export(tmp_path / "named.onnx", example=X)
    session = ort.InferenceSession(str(result.path))
    assert [i.name for i in session.get_inputs()] == ["num", "extra"]
    logits, _ = session.run(None, {k: v[:5] for k, v in X.items()})
    np.testing.assert_allclose(logits, trainer.predict({k: v[:5] for k, v in X.items()}).numpy(), atol=1e-5)
    with pytest.raises(TypeError, match="flat dict of arrays"):
        trainer.export(tmp_path / "nested.onnx", example={"num": X["num"], "extra": {"deep": X["extra"]}})


def test_trainer_export_of_a_conv_net_on_image_shaped_input(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    rng = np.random.default_rng(0)
    X = rng.normal(size=(24, 1, 8, 8)).astype(np.float32)
    trainer = Trainer(model, loss="cross_entropy", progress=False)
    trainer.fit((X, rng.integers(0, 3, size=24)), epochs=1, batch_size=8)
    result = trainer.export(tmp_path / "cnn.onnx", example=X[:1])  # one row is enough to trace
    (logits, proba) = ort.InferenceSession(str(result.path)).run(None, {"features": X})
    np.testing.assert_allclose(logits, trainer.predict(X).numpy(), atol=1e-5)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)


def test_preprocessing_export_does_not_know_is_refused_clearly(iris_run, tmp_path):
    run = tmp_path / "cat_run"
    shutil.copytree(iris_run, run)
    meta = json.loads((run / "model.json").read_text())
    meta["preprocessing"]["hashing"] = {"island": 1024}  # an encoder of some later version
    (run / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="does not know: hashing in model.json.*wrong predictions"):
        export_run(run, format="onnx")
    assert not (run / "model.onnx").exists()


def test_a_demo_folder_without_config_exports_with_its_scaler(tmp_path):
    from fittorch.demo import make_reference_data, run_demo

    run_demo(epochs=1, out=tmp_path / "demo", quiet=True)
    result = export_run(tmp_path / "demo", format="onnx")
    assert "synthetic rows" in result.parity.rows_from and result.parity.max_abs_diff < 1e-4
    _, (X_test, _), scaler = make_reference_data()
    raw = scaler.inverse_transform(X_test).astype(np.float32)
    (logits, _) = ort.InferenceSession(str(result.path)).run(None, {"features": raw})
    trainer = load_demo_trainer(tmp_path / "demo")
    np.testing.assert_allclose(logits, trainer.predict(X_test).numpy(), atol=1e-4)


def load_demo_trainer(folder):
    from fittorch.serialization import load_model

    trainer = Trainer(load_model(folder / "model.safetensors"), progress=False)
    return trainer.load(folder / "model.safetensors")


def test_gap_filling_and_missing_flags_are_folded_column_by_column(tmp_path):
    """The tabular preprocessing's numeric columns: NaN -> training median, standardize, a 0/1 flag after it."""
    from fittorch.export.api import _export, make_contract
    from fittorch.export.wrap import Fold, ServingModule

    fold = Fold(mean=[1.0, -2.0, 10.0], scale=[2.0, 0.5, 4.0], fill=[0.5, -1.0, 12.0], indicator=[True, False, True])
    torch.manual_seed(0)
    model = nn.Linear(5, 3)  # 3 values + 2 flags, interleaved: a, a_missing, b, c, c_missing
    raw = np.random.default_rng(0).normal(size=(20, 3)).astype(np.float32)
    raw[::3, 0] = np.nan
    raw[1::4, 2] = np.nan
    gaps = np.isnan(raw)
    filled = np.where(gaps, np.asarray(fold.fill, dtype=np.float32), raw)
    z = (filled - np.asarray(fold.mean, dtype=np.float32)) / np.asarray(fold.scale, dtype=np.float32)
    inputs = np.stack([z[:, 0], gaps[:, 0], z[:, 1], z[:, 2], gaps[:, 2]], axis=1).astype(np.float32)
    with torch.no_grad():
        logits = model(torch.from_numpy(inputs)).numpy()
    expected = {"logits": logits, "probabilities": torch.softmax(torch.from_numpy(logits), 1).numpy()}
    module = ServingModule(model, head="softmax", fold=fold)
    contract = make_contract("multiclass", ["features"], "softmax", ["a", "b", "c"], ["x", "y", "z"], fold, "t")
    for fmt in ("onnx", "pt2"):
        result = _export(module, raw, contract, expected, tmp_path / f"m.{fmt}", fmt, 1e-5, "rows", "m")
        assert result.parity.max_abs_diff < 1e-5
    (got, _) = ort.InferenceSession(str(tmp_path / "m.onnx")).run(None, {"features": raw[:3]})
    np.testing.assert_allclose(got, logits[:3], atol=1e-5)


class _Histogram(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(4, 3)

    def forward(self, x):
        return self.lin(x) + 0.0 * torch.histc(x.detach(), bins=3)  # an op without an ONNX translation


def test_an_op_without_onnx_translation_is_named_and_pt2_still_works(tmp_path):
    trainer, X = _fitted(_Histogram())
    with pytest.raises(ExportFailed, match=r"could not convert it \(op: aten.*histc.*Export to pt2 instead"):
        trainer.export(tmp_path / "m.onnx", example=X)
    assert not list(tmp_path.iterdir())
    assert trainer.export(tmp_path / "m.pt2", format="pt2", example=X).parity.max_abs_diff < 1e-5


def test_a_binary_logit_run_exports_sigmoid_probabilities(tmp_path):
    run = fit_run(tmp_path, "breast_cancer.yaml", "--set", "train.epochs=2", "--set", "loss=bce_with_logits")
    result = export_run(run, format="onnx")
    from sklearn.datasets import load_breast_cancer

    raw = load_breast_cancer().data[:40].astype(np.float32)
    labels, proba, logits, prep = _fittorch_predict(run, raw)
    assert prep.binary_output and logits.shape == (40, 1)
    got_logits, got_proba = ort.InferenceSession(str(result.path)).run(None, {"features": raw})
    np.testing.assert_allclose(got_proba, proba, atol=1e-6)
    assert [prep.classes[i] for i in got_proba.argmax(1)] == labels


def test_trainer_export_needs_a_fit_and_without_example_uses_random_rows(tmp_path):
    from fittorch import NotFittedError

    with pytest.raises(NotFittedError, match=r"export\(\) was called before fit\(\)"):
        Trainer(nn.Linear(4, 3), progress=False).export(tmp_path / "m.onnx")
    trainer, _ = _fitted(nn.Linear(4, 3))
    result = trainer.export(tmp_path / "m.onnx")
    assert result.parity.rows == 64 and result.contract.input_names == ["features"]


def test_a_moved_data_source_points_to_rows(iris_run, tmp_path):
    run = tmp_path / "moved"
    shutil.copytree(iris_run, run)
    cfg = (run / "config.yaml").read_text()
    import re

    (run / "config.yaml").write_text(re.sub(r"source: .*", "source: /nonexistent/iris.csv", cfg, count=1))
    with pytest.raises(ValueError, match="pass --rows FILE"):
        export_run(run, format="onnx")
    result = export_run(run, format="onnx", rows=str(ROOT / "examples" / "data" / "iris_holdout.csv"))
    assert result.parity.rows == 15


def test_trainer_export_of_a_regression_model_gives_its_raw_outputs(tmp_path, small_reg_data):
    X, y = small_reg_data
    torch.manual_seed(0)
    trainer = Trainer(nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 1)), loss="mse", progress=False)
    trainer.fit((X, y.reshape(-1, 1)), epochs=1, batch_size=50)
    result = trainer.export(tmp_path / "reg.pt2", format="pt2", example=X)
    assert result.contract.task == "regression" and result.contract.output_names == ["prediction"]
    with torch.no_grad():
        (got,) = torch.export.load(str(result.path)).module()(torch.from_numpy(X[:7]))
    np.testing.assert_allclose(got.numpy(), trainer.predict(X[:7]).numpy(), atol=1e-6)
