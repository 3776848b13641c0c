"""Streaming Parquet/CSV files chunk by chunk: order, shuffling, length, labels, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

import fittorch as ft
from fittorch.data import StreamData, stream_file
from fittorch.errors import ConfigError, DataError, DataTypeError

N, F = 1000, 4


@pytest.fixture
def table(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(N, F)).astype(np.float32)
    X[:, 0] = np.arange(N)  # column 0 is the row id, to follow rows through the stream
    y = (X[:, 1] > 0).astype(np.int64)
    df = pd.DataFrame(X, columns=[f"f{i}" for i in range(F)]).assign(label=y)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "t.parquet", row_group_size=128)
    df.to_csv(tmp_path / "t.csv", index=False)
    return tmp_path, X, y


def rows_of(src, batch_size, **order_kw):
    src.epoch_order(**order_kw) if order_kw else src.epoch_order(0, 0, False)
    batches = list(src.batches(batch_size, None))
    X = torch.cat([b[0][0] for b in batches]).numpy()
    y = torch.cat([b[1] for b in batches]).numpy()
    return X, y, [len(b[1]) for b in batches]


@pytest.mark.parametrize("name", ["t.parquet", "t.csv"])
def test_unshuffled_stream_is_the_file_in_order(table, name):
    path, X, y = table
    src = stream_file(path / name, "label", chunk_rows=100)
    Xs, ys, sizes = rows_of(src, 64)
    np.testing.assert_array_equal(Xs, X)
    np.testing.assert_array_equal(ys, y)
    assert sizes == [64] * 15 + [40]  # re-cut across chunk boundaries, like the in-memory batches


def test_shuffle_is_a_seeded_permutation_within_a_bounded_buffer(table):
    path, X, _ = table
    src = stream_file(path / "t.parquet", "label", chunk_rows=100, shuffle_buffer=300)
    a = rows_of(src, 32, seed=1, epoch=0, shuffle=True)[0][:, 0]
    b = rows_of(src, 32, seed=1, epoch=0, shuffle=True)[0][:, 0]
    c = rows_of(src, 32, seed=1, epoch=1, shuffle=True)[0][:, 0]
    np.testing.assert_array_equal(a, b)  # same (seed, epoch): same order
    assert not np.array_equal(a, c)  # a new order each epoch
    assert sorted(a.tolist()) == list(range(N))  # every row exactly once
    assert not np.array_equal(a, np.arange(N))
    # bounded: a row is emitted within about one buffer + chunk + row group of where the file has it
    assert np.abs(a - np.arange(N)).max() < 300 + 100 + 128 * 8


def test_length_comes_from_parquet_metadata_and_is_unknown_for_csv(table):
    path, _, _ = table
    pq_src = stream_file(path / "t.parquet", "label")
    assert len(pq_src) == N and pq_src.num_batches(64) == 16 and pq_src.num_batches(64, drop_last=True) == 15
    csv_src = stream_file(path / "t.csv", "label")
    assert csv_src.num_batches(64) is None
    with pytest.raises(TypeError):
        len(csv_src)


@pytest.mark.parametrize("name", ["t.parquet", "t.csv"])
def test_fit_and_evaluate_from_a_stream(table, name):
    path, X, y = table
    torch.manual_seed(0)
    t = ft.Trainer(nn.Linear(F - 1, 2), metrics=["accuracy"], lr=0.05, progress=False)
    src = stream_file(path / name, "label", features=["f1", "f2", "f3"], chunk_rows=256)
    t.fit(src, val=stream_file(path / name, "label", features=["f1", "f2", "f3"]), epochs=3, batch_size=32)
    assert t.history.last["val_accuracy"] > 0.9
    assert t.feature_names == ["f1", "f2", "f3"]


def test_text_labels_in_a_stream_are_scanned_and_encoded(tmp_path):
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, 3)).astype(np.float32)
    label = np.where(X[:, 0] > 0, "up", "down")
    pd.DataFrame(X, columns=["a", "b", "c"]).assign(label=label).to_parquet(tmp_path / "s.parquet", row_group_size=50)
    src = stream_file(tmp_path / "s.parquet", "label", chunk_rows=64)
    assert src.classes == ["down", "up"]
    t = ft.Trainer(nn.Linear(3, 2), lr=0.05, progress=False)
    t.fit(src, epochs=3)
    assert t.classes == ["down", "up"]
    assert (t.predict(X, labels=True) == label).mean() > 0.9


def test_stream_errors(table, tmp_path):
    path, _, _ = table
    with pytest.raises(DataError, match="'lable' is not in .*Nearest column names: 'label'"):
        stream_file(path / "t.parquet", "lable")
    (tmp_path / "x.npz").write_bytes(b"x")
    with pytest.raises(ConfigError, match="'.npz'"):
        stream_file(tmp_path / "x.npz", "y")
    with pytest.raises(ConfigError, match="a streamed file"):
        ft.Trainer(nn.Linear(F, 2), progress=False).fit(stream_file(path / "t.parquet", "label"), val=0.2)
    df = pd.DataFrame({"a": [1.0, 2.0], "name": ["x", "y"], "label": [0, 1]})
    df.to_parquet(tmp_path / "text.parquet")
    with pytest.raises(DataTypeError, match="'name'.*type (large_)?string"):
        stream_file(tmp_path / "text.parquet", "label")


def test_nan_in_a_chunk_names_row_and_column(tmp_path):
    X = np.ones((500, 2), dtype=np.float32)
    X[321, 1] = np.nan
    pd.DataFrame(X, columns=["a", "b"]).assign(label=0).to_parquet(tmp_path / "n.parquet", row_group_size=100)
    t = ft.Trainer(nn.Linear(2, 2), progress=False)
    with pytest.raises(DataError, match="row 321, column 'b'"):
        t.fit(stream_file(tmp_path / "n.parquet", "label", chunk_rows=100), epochs=1)


def test_bad_csv_value_mid_file(tmp_path, monkeypatch):
    monkeypatch.setattr(StreamData, "csv_block_bytes", 4096)
    lines = ["a,label"] + [f"{i}.5,0" for i in range(2000)] + ["oops,1"]
    (tmp_path / "bad.csv").write_text("\n".join(lines) + "\n")
    src = StreamData(tmp_path / "bad.csv", "label")
    src.epoch_order(0, 0, False)
    with pytest.raises(DataError, match="could not be read as CSV"):
        list(src.batches(64, None))


def test_labels_out_of_range_in_a_stream_are_caught_on_the_host(tmp_path):
    X = np.ones((300, 2), dtype=np.float32)
    label = np.zeros(300, dtype=np.int64)
    label[250] = 5
    pd.DataFrame(X, columns=["a", "b"]).assign(label=label).to_parquet(tmp_path / "l.parquet", row_group_size=100)
    t = ft.Trainer(nn.Linear(2, 3), progress=False)
    with pytest.raises(DataError, match="label 5 at row 250.*outputs 3 classes"):
        t.fit(stream_file(tmp_path / "l.parquet", "label", chunk_rows=50), epochs=1, shuffle=False)
