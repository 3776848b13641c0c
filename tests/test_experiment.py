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
    assert prep.task == "multiclass" and prep.classes == ["malignant", "benign"]
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
    assert prep.task == "multiclass" and prep.classes == [0, 1] and sum(splits.sizes.values()) == 100
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
    assert prep.task == "multiclass" and prep.classes == ["cat", "dog", "eel"]
    assert prep.feature_names == ["a", "b"] and prep.target == "kind"
    train_mean = np.asarray([c["mean"] for c in prep.tabular["numeric"]])
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
    prep = Preprocessing(task="multiclass", feature_names=["a", "b"], target="kind", classes=["x", "y"])
    with pytest.raises(DataError, match=match):
        prep.frame_to_X(frame.drop(columns=["kind"], errors="ignore"), "new.csv")


def test_columns_are_reordered_by_name():
    prep = Preprocessing(task="regression", feature_names=["a", "b"], mean=[1.0, 10.0], scale=[1.0, 2.0])
    X = prep.frame_to_X(pd.DataFrame({"b": [12.0], "a": [3.0]}), "x")
    np.testing.assert_allclose(X, [[2.0, 1.0]])


def test_unknown_label_is_an_error():
    prep = Preprocessing(task="multiclass", feature_names=["a"], classes=["cat", "dog"])
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


# -- raw tables (issue 14) -----------------------------------------------------------------

def raw_table(tmp_path, n=80, seed=0):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({"island": rng.choice(["Biscoe", "Dream"], n), "mass": rng.normal(4000, 500, n),
                       "notes": ["free text"] * n, "year": rng.choice([2007, 2008], n)})
    df.loc[::7, "mass"] = np.nan
    df["species"] = np.where(df["island"] == "Biscoe", "Gentoo", "Adelie")
    p = tmp_path / "raw.csv"
    df.to_csv(p, index=False)
    return p, df


def test_raw_csv_with_text_and_gaps_prepares_tabular_inputs(tmp_path):
    path, _ = raw_table(tmp_path)
    cfg = validate({"data": {"source": str(path), "target": "species", "categorical": ["year"],
                             "ignore": ["notes"], "missing_indicator": True}})
    prep, splits = prepare_data(cfg)
    X, y = splits.train
    assert set(X) == {"numeric", "categorical"} and X["numeric"].shape[1] == 2  # mass + its gap flag
    assert prep.feature_names == ["island", "mass", "year"] and prep.tabular["ignored"] == ["notes"]
    model = build_model(cfg, prep.n_inputs, prep.n_outputs, prep)
    assert model.spec["type"] == "tabular_mlp" and model.spec["embedding_dims"] == [0, 0]
    assert model(**{k: torch.as_tensor(v[:3]) for k, v in X.items()}).shape == (3, 2)


def test_unselected_columns_are_never_inspected(tmp_path):
    path, df = raw_table(tmp_path)
    df.assign(empty=np.nan, mixed=["x", 1] * 40).to_csv(path, index=False)
    cfg = validate({"data": {"source": str(path), "target": "species", "features": ["mass", "year"]}})
    prep, splits = prepare_data(cfg)
    assert prep.feature_names == ["mass", "year"] and splits.train[0].shape[1] == 2  # numbers only: one array


def test_a_target_with_gaps_is_refused_with_row_numbers(tmp_path):
    path, df = raw_table(tmp_path)
    df.loc[[3, 10], "species"] = None
    df.to_csv(path, index=False)
    cfg = validate({"data": {"source": str(path), "target": "species", "ignore": ["notes"]}})
    with pytest.raises(DataError, match=r"target column 'species' has 2 missing value\(s\), at line 5, 12"):
        prepare_data(cfg)


def test_embedding_sizes_follow_the_rule_and_are_overridable(tmp_path):
    from fittorch.models import embedding_size

    rng = np.random.default_rng(0)
    df = pd.DataFrame({"shop": [f"s{i}" for i in rng.integers(0, 60, 300)], "x": rng.normal(size=300),
                       "y": rng.integers(0, 2, 300)})
    df.to_csv(tmp_path / "shops.csv", index=False)
    cfg = validate({"data": {"source": str(tmp_path / "shops.csv"), "target": "y"}})
    prep, _ = prepare_data(cfg)
    card = prep.columns().cardinalities[0]
    assert card == len(prep.tabular["categorical"][0]["levels"]) + 2 > 50  # + unknown, missing
    assert embedding_size(card) == round(1.6 * card ** 0.56) and embedding_size(10) == 0  # 10: one-hot
    assert build_model(cfg, prep.n_inputs, 2, prep).spec["embedding_dims"] == [embedding_size(card)]
    cfg.model.embedding_dims = {"shop": 3}
    assert build_model(cfg, prep.n_inputs, 2, prep).spec["embedding_dims"] == [3]
    cfg.model.embedding_dims = {"shp": 3}
    with pytest.raises(ConfigError, match="names 'shp', which is not a categorical column. Did you mean 'shop'"):
        build_model(cfg, prep.n_inputs, 2, prep)


def test_import_target_is_found_in_the_working_directory(tmp_path, monkeypatch):
    import sys

    from fittorch.experiment import import_target

    pkg = tmp_path / "mypkg14"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text("import torch\nNet = torch.nn.Linear\n")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [p for p in sys.path if p not in ("", str(tmp_path))])
    assert import_target("mypkg14.models:Net") is torch.nn.Linear
    with pytest.raises(ConfigError, match=r"no module 'nopkg14' in the current folder \(.*\) nor among the "
                                          r"installed packages. Run fittorch from the folder that holds nopkg14/"):
        import_target("nopkg14.models:Net")
    (pkg / "broken.py").write_text("import not_installed_dep_14\n")
    with pytest.raises(ConfigError, match="importing it failed: .*not_installed_dep_14"):
        import_target("mypkg14.broken:Net")


# -- one split policy: the CLI's data.val_split is the library's fit(val=...) ---------------------
def _labelled_csv(tmp_path, labels) -> str:
    n = len(labels)
    df = pd.DataFrame({"row": np.arange(n, dtype=float), "x": np.random.default_rng(1).normal(size=n),
                       "kind": labels})
    df.to_csv(tmp_path / "rows.csv", index=False)
    return str(tmp_path / "rows.csv")


def _library_val_rows(path, fraction, seed, loss="cross_entropy"):
    """The rows Trainer.fit((X, y), val=fraction) validates on, read from the 'row' column."""
    from fittorch.data import prepare_fit
    from fittorch.losses import LOSSES

    df = pd.read_csv(path)
    X = df[["row", "x"]].to_numpy(np.float32)
    y = df["kind"].to_numpy(object) if loss == "cross_entropy" else df[["kind"]].to_numpy(np.float32)
    data = prepare_fit((X, y), fraction, loss_info=LOSSES[loss], seed=seed)
    return np.sort(data.val.inputs[0][:, 0].numpy().astype(int))


def test_cli_val_split_of_a_regression_is_the_librarys_plain_split(tmp_path):
    path = _labelled_csv(tmp_path, np.random.default_rng(3).normal(size=90))
    cfg = validate({"data": {"source": path, "target": "kind", "val_split": 0.3}, "seed": 11})
    prep, splits = prepare_data(cfg)
    assert prep.task == "regression"
    np.testing.assert_array_equal(splits.rows["val"], _library_val_rows(path, 0.3, 11, loss="mse"))


@pytest.mark.parametrize("seed, fraction", [(0, 0.2), (7, 0.25), (123, 0.3)])
def test_cli_val_split_is_the_librarys(tmp_path, seed, fraction):
    labels = np.array(["cat"] * 50 + ["dog"] * 30 + ["eel"] * 7, dtype=object)
    labels = labels[np.random.default_rng(seed).permutation(len(labels))]
    path = _labelled_csv(tmp_path, labels)
    cfg = validate({"data": {"source": path, "target": "kind", "val_split": fraction}, "seed": seed})
    _, splits = prepare_data(cfg)
    np.testing.assert_array_equal(splits.rows["val"], _library_val_rows(path, fraction, seed))
    counts = pd.Series(labels[splits.rows["val"]]).value_counts()
    assert abs(counts["eel"] - 7 * fraction) <= 1  # stratified: the rare class keeps its share


def test_cli_and_library_refuse_the_same_unsplittable_data(tmp_path):
    """A class with one member cannot be stratified: neither side falls back to a random split."""
    labels = np.array(["a", "b"] * 40 + ["rare"], dtype=object)
    path = _labelled_csv(tmp_path, labels)
    with pytest.raises(DataError) as lib:
        _library_val_rows(path, 0.2, 0)
    with pytest.raises(DataError) as cli:
        prepare_data(validate({"data": {"source": path, "target": "kind", "val_split": 0.2}}))
    for message in (str(lib.value), str(cli.value)):
        assert "1 class(es) have fewer than 2 samples ('rare' (1 sample))" in message, message
    assert str(cli.value).startswith("data.val_split: 0.2:")
    assert "a separate data.val file" in str(cli.value) and "data.stratify: false" in str(cli.value)
    # data.stratify: false is the CLI's way out: a plain seeded split, every row used once
    _, splits = prepare_data(validate({"data": {"source": path, "target": "kind", "val_split": 0.2,
                                                "stratify": False}}))
    assert sorted(np.concatenate([splits.rows["train"], splits.rows["val"]]).tolist()) == list(range(81))


def test_cli_refuses_a_split_too_small_for_the_classes_like_the_library(tmp_path):
    labels = np.array(["a", "b", "c"] * 4, dtype=object)
    path = _labelled_csv(tmp_path, labels)
    with pytest.raises(DataError, match="12 samples and 3 classes"):
        _library_val_rows(path, 0.1, 0)
    with pytest.raises(DataError, match=r"data.test_split: 0.1 cannot split 12 samples and 3 classes.*data.test file"):
        prepare_data(validate({"data": {"source": path, "target": "kind", "val_split": 0.0, "test_split": 0.1}}))


def test_test_split_then_val_split_are_both_stratified_fractions_of_all_rows(tmp_path):
    labels = np.array(["a"] * 120 + ["b"] * 60 + ["c"] * 20, dtype=object)
    path = _labelled_csv(tmp_path, labels)
    _, splits = prepare_data(validate({"data": {"source": path, "target": "kind", "val_split": 0.2,
                                                "test_split": 0.1}, "seed": 5}))
    assert splits.sizes == {"train": 140, "val": 40, "test": 20}
    for part, share in (("val", 0.2), ("test", 0.1)):
        counts = pd.Series(labels[splits.rows[part]]).value_counts()
        assert dict(counts) == {"a": 120 * share, "b": 60 * share, "c": 20 * share}
    rows = np.concatenate(list(splits.rows.values()))
    assert sorted(rows.tolist()) == list(range(200))


# -- the task vocabulary: binary, multiclass, regression in a config -----------------------------
def test_task_binary_is_one_logit_with_bce_with_logits():
    cfg = validate({"data": {"source": "sklearn:breast_cancer"}, "task": "binary", "train": {"epochs": 1}})
    exp = build_experiment(cfg, quiet=True)
    assert exp.prep.task == "binary" and exp.prep.binary_output and exp.prep.n_outputs == 1
    assert exp.trainer.loss_info.name == "bce_with_logits" and exp.trainer.metric_specs == ["accuracy"]
    assert exp.splits.train[1].dtype == np.float32 and exp.splits.train[1].shape[1] == 1


def test_task_binary_with_three_classes_names_them_and_the_fix():
    with pytest.raises(ConfigError, match=r"task binary \(one output, loss bce_with_logits\) is for two classes, but "
                                          r"the target has 3: setosa, versicolor, virginica. Use task: multiclass"):
        prepare_data(validate({"data": {"source": "sklearn:iris"}, "task": "binary"}))


@pytest.mark.parametrize("raw, task, outputs", [
    ({"data": {"source": "sklearn:breast_cancer"}}, "multiclass", 2),  # as 0.2 trained it: one output per class
    ({"data": {"source": "sklearn:breast_cancer"}, "loss": "bce_with_logits"}, "binary", 1),
    ({"data": {"source": "sklearn:diabetes"}}, "regression", 1),
    ({"data": {"source": "sklearn:iris"}, "loss": "cross_entropy"}, "multiclass", 3),
])
def test_inferred_task_uses_the_four_names(raw, task, outputs):
    prep, _ = prepare_data(validate(raw))
    assert (prep.task, prep.n_outputs) == (task, outputs)


def test_legacy_classification_config_trains_the_same_model_as_before():
    from fittorch.task import LegacyTaskWarning

    with pytest.warns(LegacyTaskWarning, match="read as task: multiclass"):
        old = validate({"data": {"source": "sklearn:breast_cancer"}, "task": "classification"})
    new = validate({"data": {"source": "sklearn:breast_cancer"}})
    assert old.task == "multiclass" and old.to_dict()["task"] == "multiclass"  # written with the new name
    (p_old, s_old), (p_new, s_new) = prepare_data(old), prepare_data(new)
    assert p_old.to_dict() == p_new.to_dict()
    np.testing.assert_array_equal(s_old.rows["val"], s_new.rows["val"])


def test_legacy_preprocessing_record_is_read_with_the_new_names():
    one_logit = Preprocessing.from_dict({"task": "classification", "feature_names": ["a"], "classes": ["n", "y"],
                                         "binary_output": True})
    per_class = Preprocessing.from_dict({"task": "classification", "feature_names": ["a"], "classes": ["n", "y"]})
    assert (one_logit.task, one_logit.n_outputs) == ("binary", 1)
    assert (per_class.task, per_class.n_outputs) == ("multiclass", 2)
    assert per_class.to_dict()["task"] == "multiclass"


# -- multilabel from a config: data.target lists the 0/1 label columns ---------------------------
def multilabel_csv(tmp_path, n=200, seed=0, name="tags.csv"):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3))
    df = pd.DataFrame({"a": X[:, 0], "b": X[:, 1], "c": X[:, 2], "color": rng.choice(["red", "blue"], size=n),
                       "sports": (X[:, 0] > 0).astype(int), "music": X[:, 1] > 0.5,  # 0/1 and true/false
                       "art": ((X[:, 2] > 0) | (rng.random(n) < 0.1)).astype(int)})
    df.to_csv(tmp_path / name, index=False)
    return tmp_path / name, df


def test_a_list_of_target_columns_is_a_multilabel_task(tmp_path):
    path, df = multilabel_csv(tmp_path)
    cfg = validate({"data": {"source": str(path), "target": ["sports", "music", "art"], "val_split": 0.25}})
    exp = build_experiment(cfg, quiet=True)
    prep, splits = exp.prep, exp.splits
    assert prep.task == "multilabel" and prep.classes == ["sports", "music", "art"] and prep.n_outputs == 3
    assert prep.feature_names == ["a", "b", "c", "color"]
    y = splits.train[1]
    assert y.dtype == np.float32 and y.shape == (150, 3)
    expected = df[["sports", "music", "art"]].astype(float).to_numpy()[splits.rows["train"]]
    np.testing.assert_array_equal(y, expected)
    assert exp.trainer.loss_info.name == "bce_with_logits"
    assert exp.trainer.metric_specs == ["subset_accuracy", "hamming_loss", "f1_micro"]
    rows, proba = prep.decode(torch.tensor([[3.0, -3.0, 0.5]]))
    assert rows == [[1, 0, 1]] and proba.shape == (1, 3)


def test_a_label_column_that_is_not_0_1_is_refused_by_name(tmp_path):
    path, df = multilabel_csv(tmp_path)
    df["art"] = df["art"].astype(object)
    df.loc[[3, 7], "art"] = ["2", "maybe"]
    df.to_csv(path, index=False)
    with pytest.raises(DataError, match=r"label column 'art' holds 2, maybe; a multilabel target is one 0/1"):
        prepare_data(validate({"data": {"source": str(path), "target": ["sports", "music", "art"]}}))
    with pytest.raises(DataError, match=r"no label column 'arts'.*Did you mean 'art'"):
        prepare_data(validate({"data": {"source": str(path), "target": ["sports", "arts"]}}))


def test_a_mistyped_feature_column_gets_a_suggestion(tmp_path):
    path, _ = csv_file(tmp_path)
    with pytest.raises(ConfigError, match=r"data.features names 'bb', which is not a column.*Did you mean 'b'"):
        prepare_data(validate({"data": {"source": str(path), "target": "kind", "features": ["a", "bb"]}}))
