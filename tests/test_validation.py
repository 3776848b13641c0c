"""Every bad-input case of issue 3 (numbered as there): the exception type and the key facts
in the first line of its message, raised before any training step runs."""

from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

import fittorch as ft
from fittorch.data.files import load_xy, read_table
from fittorch.errors import ConfigError, DataError, DataTypeError, FittorchError, ModelError, NotFittedError

from conftest import make_mlp


class CountingModel(nn.Module):
    """An MLP that counts training-mode forwards: a refused input must leave it at 0."""

    def __init__(self, in_features=8, out=3):
        super().__init__()
        self.net = make_mlp(in_features, 16, out)
        self.train_forwards = 0

    def forward(self, x):
        if self.training and torch.is_grad_enabled():
            self.train_forwards += 1
        return self.net(x)


def trainer(model=None, **kw):
    kw.setdefault("progress", False)
    return ft.Trainer(model if model is not None else CountingModel(), **kw)


def first_line(exc_info) -> str:
    return str(exc_info.value).splitlines()[0]


def refused(exc_type, fn, *facts):
    """Run ``fn``, expect ``exc_type`` (a FittorchError), and check each fact is in line 1."""
    with pytest.raises(exc_type) as info:
        fn()
    assert isinstance(info.value, FittorchError)
    line = first_line(info)
    for fact in facts:
        assert fact in line, f"{fact!r} not in {line!r}"
    return line


# 1 --------------------------------------------------------------------------------------------
def test_01_x_y_lengths_differ(small_clf_data):
    X, y = small_clf_data
    t = trainer()
    refused(DataError, lambda: t.fit((X, y[:150]), epochs=1), "200 rows", "150", "one row per sample")
    assert t.model.train_forwards == 0
    assert issubclass(DataError, ValueError)


def test_01_multi_input_lengths_differ(small_clf_data):
    X, y = small_clf_data
    t = trainer(nn.Bilinear(8, 8, 3))
    refused(DataError, lambda: t.fit(((X, X[:10]), y), epochs=1), "different lengths", "200", "10")


# 2 --------------------------------------------------------------------------------------------
def test_02_features_do_not_fit_first_layer(small_clf_data):
    X, y = small_clf_data
    t = trainer(CountingModel(in_features=5))
    line = refused(ModelError, lambda: t.fit((X, y), epochs=1), "expects 5 features", "the data has 8", "(2, 8)")
    assert "Make the model's input size match" in line
    assert t.model.train_forwards == 0


# 3 --------------------------------------------------------------------------------------------
def test_03_output_shape_does_not_fit_targets_mse(small_reg_data):
    X, y = small_reg_data
    t = trainer(make_mlp(5, 8, 1), loss="mse")
    refused(ModelError, lambda: t.fit((X, y), epochs=1), "(2, 1)", "(2,)", "'mse'", "broadcast", "squeeze(-1)")


def test_03_cross_entropy_needs_class_dimension(small_clf_data):
    X, y = small_clf_data
    model = nn.Sequential(make_mlp(8, 16, 1), nn.Flatten(0))
    refused(ModelError, lambda: trainer(model).fit((X, y), epochs=1), "num_classes", "nn.Linear(hidden, num_classes)")


# 4 --------------------------------------------------------------------------------------------
def test_04_float_targets_for_cross_entropy(small_clf_data):
    X, y = small_clf_data
    yf = y.astype(np.float32) + 0.5
    refused(DataTypeError, lambda: trainer().fit((X, yf), epochs=1), "'cross_entropy'", "non-integer floats", "0.5",
            "int64")
    assert issubclass(DataTypeError, TypeError)


def test_04_integer_targets_for_mse(small_reg_data):
    X, _ = small_reg_data
    y_int = np.arange(200) % 4
    t = trainer(make_mlp(5, 8, 1), loss="mse")
    refused(DataTypeError, lambda: t.fit((X, y_int), epochs=1), "'mse'", "integers", "int64", "4 distinct",
            "cross_entropy", "astype('float32')")


def test_04_multiclass_integers_for_bce(small_clf_data):
    X, y = small_clf_data  # 3 classes
    t = trainer(make_mlp(8, 8, 1), loss="bce_with_logits")
    refused(DataError, lambda: t.fit((X, y.reshape(-1, 1)), epochs=1), "3 classes", "binary", "cross_entropy")


def test_04_integer_targets_from_a_dataset_for_mse(small_reg_data):
    X, _ = small_reg_data
    ds = torch.utils.data.TensorDataset(torch.from_numpy(X), torch.arange(200) % 4)
    refused(DataTypeError, lambda: trainer(make_mlp(5, 8, 1), loss="mse").fit(ds, epochs=1), "regression loss",
            "int64")


# 5 --------------------------------------------------------------------------------------------
def test_05_labels_out_of_range(small_clf_data):
    X, _ = small_clf_data
    y = np.arange(200) % 5  # labels 0..4, model outputs 3
    t = trainer(CountingModel(out=3))
    refused(DataError, lambda: t.fit((X, y), epochs=1), "5 classes", "outputs 3 classes", "nn.Linear(hidden, 5)")
    assert t.model.train_forwards == 0


def test_05_labels_out_of_range_in_evaluate(small_clf_data):
    X, y = small_clf_data
    t = trainer()
    t.fit((X, y), epochs=1)
    t.classes = None  # labels given as indices: the raw range check applies
    bad = y.copy()
    bad[7] = 9
    refused(DataError, lambda: t.evaluate((X, bad)), "range from 0 to 9", "outputs 3 classes", "1 label(s)")


# 6 --------------------------------------------------------------------------------------------
def test_06_nan_in_x_names_count_row_and_column(small_clf_data):
    X, y = small_clf_data
    X = X.copy()
    X[17, 3] = np.nan
    X[40, 1] = np.inf
    refused(DataError, lambda: trainer().fit((X, y), epochs=1), "training X", "2 NaN/inf", "row 17", "column 3")


def test_06_nan_in_dataframe_names_the_column(small_clf_data):
    X, y = small_clf_data
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    df.iloc[5, 2] = np.nan
    refused(DataError, lambda: trainer().fit((df, y), epochs=1), "1 NaN/inf", "row 5", "'f2'")


def test_06_nan_in_y(small_reg_data):
    X, y = small_reg_data
    y = y.copy()
    y[11] = np.nan
    refused(DataError, lambda: trainer(make_mlp(5, 8, 1), loss="mse").fit((X, y.reshape(-1, 1)), epochs=1),
            "training y", "1 NaN/inf", "row 11")


def test_06_nan_in_validation(small_clf_data):
    X, y = small_clf_data
    Xv = X[:20].copy()
    Xv[3, 0] = np.nan
    refused(DataError, lambda: trainer().fit((X, y), val=(Xv, y[:20]), epochs=1), "validation X", "row 3")


# 7 --------------------------------------------------------------------------------------------
def test_07_empty_training_set():
    refused(DataError, lambda: trainer().fit((np.zeros((0, 8), np.float32), np.zeros(0, np.int64)), epochs=1),
            "training data is empty", "0 samples")


def test_07_empty_validation_set(small_clf_data):
    X, y = small_clf_data
    refused(DataError, lambda: trainer().fit((X, y), val=(X[:0], y[:0]), epochs=1), "validation data is empty")


def test_07_empty_dataset():
    ds = torch.utils.data.TensorDataset(torch.zeros(0, 8), torch.zeros(0, dtype=torch.long))
    refused(DataError, lambda: trainer().fit(ds, epochs=1), "training data is empty")


# 8 --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("bs", [0, -4])
def test_08_batch_size_not_positive(small_clf_data, bs):
    X, y = small_clf_data
    refused(ConfigError, lambda: trainer().fit((X, y), epochs=1, batch_size=bs), f"batch_size={bs}", "positive integer")


def test_08_batch_larger_than_data_with_drop_last(small_clf_data):
    X, y = small_clf_data
    refused(ConfigError, lambda: trainer().fit((X, y), epochs=1, batch_size=500, drop_last=True),
            "batch_size=500", "200 training samples", "drop_last=False")


# 9 --------------------------------------------------------------------------------------------
def test_09_model_not_a_module():
    refused(ModelError, lambda: ft.Trainer(lambda x: x), "function", "torch.nn.Module")
    refused(ModelError, lambda: ft.Trainer(nn.Linear), "Did you pass the class", "MyModel()")


def test_09_model_without_trainable_parameters():
    frozen = make_mlp(8, 16, 3).requires_grad_(False)
    refused(ModelError, lambda: ft.Trainer(frozen), "no trainable parameters", "requires_grad")
    refused(ModelError, lambda: ft.Trainer(nn.ReLU()), "no trainable parameters", "0 parameters")


# 10 -------------------------------------------------------------------------------------------
def test_10_unknown_names(small_clf_data):
    refused(ConfigError, lambda: trainer(loss="cross_entropi"), "Unknown loss 'cross_entropi'",
            "Did you mean 'cross_entropy'")
    refused(ConfigError, lambda: trainer(optimizer="adamm"), "Unknown optimizer 'adamm'", "Did you mean 'adam")
    X, y = small_clf_data
    refused(ConfigError, lambda: trainer(metrics=["acuracy"]).fit((X, y), epochs=1), "Unknown metric 'acuracy'",
            "Did you mean 'accuracy'")


# 11 -------------------------------------------------------------------------------------------
def test_11_missing_target_column_lists_nearest(tmp_path):
    path = tmp_path / "d.csv"
    pd.DataFrame({"age": [1, 2], "income": [3.0, 4.0], "label": [0, 1], "labels_old": [1, 1]}).to_csv(path, index=False)
    line = refused(DataError, lambda: load_xy(path, "lable"), "'lable'", "Nearest column names", "'label'",
                   "Columns: age, income, label, labels_old")
    assert "'age'" not in line.split("Columns:")[0]


# 12 -------------------------------------------------------------------------------------------
def test_12_file_missing(tmp_path):
    (tmp_path / "train.csv").write_text("a,b\n1,2\n")
    refused(DataError, lambda: read_table(tmp_path / "trian.csv"), "does not exist", "Did you mean 'train.csv'")


def test_12_unsupported_extension(tmp_path):
    p = tmp_path / "d.xlsx"
    p.write_text("x")
    refused(ConfigError, lambda: read_table(p), "'.xlsx'", ".csv, .parquet, .pq, .npz")


def test_12_file_is_a_directory(tmp_path):
    refused(DataError, lambda: read_table(tmp_path), "is a directory")


def test_12_corrupt_file(tmp_path):
    p = tmp_path / "d.parquet"
    p.write_bytes(b"this is not parquet at all")
    refused(DataError, lambda: read_table(p), "could not be read as PARQUET", "complete")


def test_12_file_not_readable_message(tmp_path, monkeypatch):
    p = tmp_path / "d.csv"
    p.write_text("a\n1\n")
    real_access = os.access
    monkeypatch.setattr(os, "access", lambda path, mode: False if str(path) == str(p) else real_access(path, mode))
    refused(DataError, lambda: read_table(p), "exists but is not readable", "chmod")


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root can read any file")
def test_12_file_not_readable(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a\n1\n")
    p.chmod(0)
    try:
        refused(DataError, lambda: read_table(p), "not readable", "permission")
    finally:
        p.chmod(0o644)


# 13 -------------------------------------------------------------------------------------------
@pytest.mark.parametrize("frac", [0, 1, 1.5, -0.2])
def test_13_val_fraction_outside_0_1(small_clf_data, frac):
    X, y = small_clf_data
    refused(ConfigError, lambda: trainer().fit((X, y), val=frac, epochs=1), f"val={frac!r}", "between 0 and 1")


def test_13_split_leaves_class_without_training_sample(small_clf_data):
    X, y = small_clf_data
    y = np.array(["a", "b"] * 100, dtype=object)
    y[50] = "rare"
    t = trainer(CountingModel(out=3))
    refused(DataError, lambda: t.fit((X, y), val=0.2, epochs=1), "'rare' (1 sample)", "no training sample",
            "val=(X_val, y_val)")


def test_13_split_too_small_for_classes(small_clf_data):
    X, y = small_clf_data
    refused(DataError, lambda: trainer().fit((X[:10], y[:10] % 2), val=0.1, epochs=1), "val=0.1", "10 samples")


def test_13_fraction_of_a_dataloader():
    dl = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.zeros(10, 8), torch.zeros(10).long()))
    refused(ConfigError, lambda: trainer().fit(dl, val=0.2, epochs=1), "a DataLoader", "explicitly")


# 14 -------------------------------------------------------------------------------------------
def test_14_object_array():
    X = np.array([[1.0, "a"], [2.0, 3.0]], dtype=object)
    refused(DataTypeError, lambda: trainer(make_mlp(2, 4, 2)).fit((X, [0, 1]), epochs=1), "dtype=object", "(2, 2)",
            "'a' at row 0, column 1", "np.asarray")


def test_14_mixed_types_in_dataframe_column_names_it(small_clf_data):
    X, y = small_clf_data
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    df["f4"] = df["f4"].astype(object)
    df.loc[9, "f4"] = "n/a"
    refused(DataTypeError, lambda: trainer().fit((df, y), epochs=1), "column 'f4'", "mixed types", "'n/a'", "row 9",
            "pd.to_numeric")


def test_14_text_column_names_it(small_clf_data):
    X, y = small_clf_data
    df = pd.DataFrame(X[:, :7], columns=[f"f{i}" for i in range(7)])
    df["city"] = ["Oslo", "Rome"] * 100
    refused(DataTypeError, lambda: trainer().fit((df, y), epochs=1), "column 'city'", "string", "get_dummies")


def test_14_mixed_column_in_csv(tmp_path):
    p = tmp_path / "d.csv"
    p.write_text("a,b,y\n1,2,0\n3,x,1\n5,6,0\n")
    refused(DataTypeError, lambda: load_xy(p, "y"), "column 'b'", "mixed types")


def test_14_ragged_list():
    refused(DataTypeError, lambda: trainer(make_mlp(2, 4, 2)).fit(([[1, 2], [3, 4], [5]], [0, 1, 0]), epochs=1),
            "different lengths", "row 2 has 1")


# 15 -------------------------------------------------------------------------------------------
def test_15_predict_and_evaluate_before_fit(small_clf_data):
    X, y = small_clf_data
    refused(NotFittedError, lambda: trainer().predict(X), "predict() was called before fit()", "trainer.load")
    refused(NotFittedError, lambda: trainer().evaluate((X, y)), "evaluate() was called before fit()")


def test_15_different_number_of_features(small_clf_data):
    X, y = small_clf_data
    t = trainer()
    t.fit((X, y), epochs=1)
    refused(DataError, lambda: t.predict(X[:, :6]), "6 features", "trained on 8")
    refused(DataError, lambda: t.evaluate((X[:, :6], y)), "6 features", "trained on 8")


def test_15_dataframe_columns_reordered(small_clf_data):
    X, y = small_clf_data
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(8)])
    t = trainer()
    t.fit((df, y), epochs=1)
    refused(DataError, lambda: t.predict(df[df.columns[::-1]]), "different order", "X[trainer.feature_names]")
