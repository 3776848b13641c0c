"""Building a run from a config: sources, splits, standardization on train only, labels, models."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from fittorch.config import validate
from fittorch.errors import ConfigError, DataError
from fittorch.experiment import Preprocessing, build_experiment, build_model, prepare_data


def csv_file(tmp_path, n=60, name="train.csv", seed=0):
    rng = np.random.default_rng(seed)
    labels = np.array(["cat", "dog", "eel"])[rng.integers(0, 3, size=n)]
    df = pd.DataFrame({"a": rng.normal(5, 2, n), "b": rng.normal(-3, 10, n), "kind": labels})
    df.loc[df.kind == "dog", "a"] += 4
    p = tmp_path / name
    df.to_csv(p, index=False)
    return p, df


def test_sklearn_source_splits_and_label_names():
    cfg = validate({"data": {"source": "sklearn:breast_cancer", "val_split": 0.2, "test_split": 0.1}, "seed": 3})
    prep, splits = prepare_data(cfg)
    assert prep.task == "classification" and prep.classes == ["malignant", "benign"]
    assert len(prep.feature_names) == 30 and prep.feature_names[0] == "mean radius"
    assert splits.sizes == {"train": 398, "val": 114, "test": 57}
    X, y = splits.train
    assert X.dtype == np.float32 and y.dtype == np.int64
    # standardization is fitted on the training rows only
    np.testing.assert_allclose(X.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(X.std(axis=0), 1, atol=1e-4)
    assert np.abs(splits.val[0].mean(axis=0)).max() > 1e-3
    # same seed, same split
    _, again = prepare_data(cfg)
    np.testing.assert_array_equal(again.test[0], splits.test[0])


def test_generators_take_params_and_seed():
    cfg = validate({"data": {"source": "sklearn:make_moons", "params": {"n_samples": 100, "noise": 0.1}}})
    prep, splits = prepare_data(cfg)
    assert prep.task == "classification" and prep.classes == [0, 1] and sum(splits.sizes.values()) == 100
    cfg = validate({"data": {"source": "sklearn:make_regression", "params": {"n_samples": 50, "n_features": 3}}})
    prep, splits = prepare_data(cfg)
    assert prep.task == "regression" and splits.train[1].shape == (40, 1)
    assert prep.target_mean is not None
    with pytest.raises(ConfigError, match="data.params for sklearn:make_moons"):
        prepare_data(validate({"data": {"source": "sklearn:make_moons", "params": {"n_sample": 10}}}))


def test_csv_with_string_labels(tmp_path):
    path, df = csv_file(tmp_path)
    cfg = validate({"data": {"source": str(path), "target": "kind", "val_split": 0.25}})
    prep, splits = prepare_data(cfg)
    assert prep.task == "classification" and prep.classes == ["cat", "dog", "eel"]
    assert prep.feature_names == ["a", "b"] and prep.target == "kind"
    train_mean = np.asarray(prep.mean)
    assert not np.allclose(train_mean, df[["a", "b"]].mean().to_numpy())  # fitted on 45 rows, not all 60
    labels, _ = prep.decode(torch.nn.functional.one_hot(torch.tensor([2, 0, 1]), 3).float() * 5)
    assert labels == ["eel", "cat", "dog"]


def test_task_inference_and_regression_target(tmp_path):
    df = pd.DataFrame({"x": np.arange(30.0), "price": np.arange(30.0) * 2.5 + 1})
    df.to_csv(tmp_path / "r.csv", index=False)
    prep, splits = prepare_data(validate({"data": {"source": str(tmp_path / "r.csv"), "target": "price"}}))
    assert prep.task == "regression" and prep.classes is None
    values, proba = prep.decode(torch.tensor(splits.train[1]))
    assert proba is None
    # scaled targets decode back to the original units
    np.testing.assert_allclose(sorted(values)[:2], [1.0, 3.5], rtol=1e-5)


@pytest.mark.parametrize("frame, match", [
    (pd.DataFrame({"a": [1.0, 2.0], "kind": ["x", "y"]}), "missing column"),
    (pd.DataFrame({"a": [1.0], "b": [2.0], "c": [3.0]}), "not trained on: 'c'"),
    (pd.DataFrame({"a": ["x"], "b": [2.0]}), "hold text"),
    (pd.DataFrame({"a": [np.nan], "b": [2.0]}), "missing or infinite"),
])
def test_column_checks(frame, match):
    prep = Preprocessing(task="classification", feature_names=["a", "b"], target="kind", classes=["x", "y"])
    with pytest.raises(DataError, match=match):
        prep.frame_to_X(frame.drop(columns=["kind"], errors="ignore"), "new.csv")


def test_columns_are_reordered_by_name():
    prep = Preprocessing(task="regression", feature_names=["a", "b"], mean=[1.0, 10.0], scale=[1.0, 2.0])
    X = prep.frame_to_X(pd.DataFrame({"b": [12.0], "a": [3.0]}), "x")
    np.testing.assert_allclose(X, [[2.0, 1.0]])


def test_unknown_label_is_an_error():
    prep = Preprocessing(task="classification", feature_names=["a"], classes=["cat", "dog"])
    with pytest.raises(DataError, match="never saw: bird"):
        prep.encode(np.array(["cat", "bird"]), "eval.csv")


def test_file_errors(tmp_path):
    path, _ = csv_file(tmp_path)
    with pytest.raises(ConfigError, match="data.target is not set"):
        prepare_data(validate({"data": {"source": str(path)}}))
    with pytest.raises(DataError, match=r"'kinds' is not in .*'kind'"):
        prepare_data(validate({"data": {"source": str(path), "target": "kinds"}}))
    with pytest.raises(DataError, match="does not exist"):
        prepare_data(validate({"data": {"source": str(tmp_path / "nope.csv"), "target": "y"}}))
    pd.DataFrame({"a": [1, 2, 3], "kind": ["x", "x", "x"]}).to_csv(tmp_path / "one.csv", index=False)
    with pytest.raises(DataError, match="single value"):
        prepare_data(validate({"data": {"source": str(tmp_path / "one.csv"), "target": "kind"}}))


def test_separate_val_file(tmp_path):
    path, _ = csv_file(tmp_path)
    val, _ = csv_file(tmp_path, n=20, name="val.csv", seed=1)
    prep, splits = prepare_data(validate({"data": {"source": str(path), "target": "kind", "val": str(val)}}))
    assert splits.sizes == {"train": 60, "val": 20, "test": 0}


def test_import_model_is_built_with_in_and_out_features(tmp_path, monkeypatch):
    (tmp_path / "usermodels.py").write_text(
        "import torch\n"
        "def make(in_features, out_features, width=4):\n"
        "    return torch.nn.Sequential(torch.nn.Linear(in_features, width), torch.nn.Linear(width, out_features))\n"
        "def not_a_model(**kw):\n    return 3\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cfg = validate({"data": {"source": "sklearn:iris"},
                    "model": {"type": "import", "target": "usermodels:make", "kwargs": {"width": 7}}})
    model = build_model(cfg, 4, 3)
    assert model[0].in_features == 4 and model[0].out_features == 7 and model[1].out_features == 3
    cfg.model.target = "usermodels:mak"
    with pytest.raises(ConfigError, match="Did you mean 'make'"):
        build_model(cfg, 4, 3)
    cfg.model.target = "usermodels:not_a_model"
    with pytest.raises(Exception, match="expected a torch nn.Module"):
        build_model(cfg, 4, 3)


def test_build_experiment_trains(tmp_path):
    cfg = validate({"data": {"source": "sklearn:iris", "test_split": 0.2}, "train": {"epochs": 30, "batch_size": 16},
                    "optimizer": {"lr": 0.01}, "model": {"hidden": [16]}})
    exp = build_experiment(cfg, quiet=True)
    exp.trainer.fit(exp.splits.train, exp.splits.val, **exp.fit_kwargs())
    assert exp.trainer.evaluate(exp.splits.test)["accuracy"] >= 0.85


def test_early_stopping_on_val_needs_val_data():
    cfg = validate({"data": {"source": "sklearn:iris", "val_split": 0.0},
                    "callbacks": {"early_stopping": {"monitor": "val_loss"}}})
    with pytest.raises(ConfigError, match="no validation data"):
        build_experiment(cfg, quiet=True)
