"""Every input form users have: the same reference MLP, the same accuracy; labels, splits,
feature names and DataLoader workers."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import accuracy_score
from sklearn.model_selection import train_test_split
from torch import nn
from torch.utils.data import DataLoader, Dataset, IterableDataset, TensorDataset

import fittorch as ft
from fittorch.data import InMemoryData, LoaderData, make_source, stream_file
from fittorch.data.files import load_xy
from fittorch.data.split import split_fraction
from fittorch.errors import ConfigError, DataError

EPOCHS = 3


def ref_model(seed=0):
    torch.manual_seed(seed)
    return ft.MLP(20, [64], 2)


class KwModel(nn.Module):
    """forward(features=...): fed from a dict input."""

    def __init__(self):
        super().__init__()
        self.net = ref_model()

    def forward(self, features):
        return self.net(features)


class TwoInputModel(nn.Module):
    """forward(a, b): fed from a tuple of inputs; concatenating gives the same numbers."""

    def __init__(self):
        super().__init__()
        self.net = ref_model()

    def forward(self, a, b):
        return self.net(torch.cat([a, b], dim=1))


class RowDataset(Dataset):
    def __init__(self, X, y):
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return self.X[i], self.y[i]


class RowStream(IterableDataset):
    def __init__(self, X, y):
        self.X, self.y = torch.from_numpy(X), torch.from_numpy(y)

    def __iter__(self):
        return iter(zip(self.X, self.y))


def train_form(model, train, test, **fit_kw):
    t = ft.Trainer(model, metrics=["accuracy"], seed=42, progress=False)
    t.fit(train, epochs=EPOCHS, batch_size=32, shuffle=fit_kw.pop("shuffle", False), **fit_kw)
    return t, t.evaluate(test)["accuracy"]


def weights(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def test_every_input_form_trains_the_reference_mlp_to_the_same_accuracy(ref_data, tmp_path):
    (Xtr, ytr), (Xte, yte) = ref_data
    base_t, base = train_form(ref_model(), (Xtr, ytr), (Xte, yte))
    assert base > 0.75
    cols = [f"f{i}" for i in range(20)]
    df = pd.DataFrame(Xtr, columns=cols)
    file_df = df.assign(target=ytr)
    file_df.to_csv(tmp_path / "d.csv", index=False)
    file_df.to_parquet(tmp_path / "d.parquet", row_group_size=100)
    np.savez(tmp_path / "d.npz", X=Xtr, y=ytr)

    forms = {
        "tensors": (ref_model(), (torch.from_numpy(Xtr), torch.from_numpy(ytr)), (Xte, yte)),
        "lists": (ref_model(), (Xtr.tolist(), ytr.tolist()), (Xte.tolist(), yte.tolist())),
        "pandas": (ref_model(), (df, pd.Series(ytr)), (pd.DataFrame(Xte, columns=cols), pd.Series(yte))),
        "dict": (KwModel(), ({"features": Xtr}, ytr), ({"features": Xte}, yte)),
        "tuple": (TwoInputModel(), ((Xtr[:, :7], Xtr[:, 7:]), ytr), ((Xte[:, :7], Xte[:, 7:]), yte)),
        "dataset": (ref_model(), RowDataset(Xtr, ytr), (Xte, yte)),
        "iterable": (ref_model(), RowStream(Xtr, ytr), (Xte, yte)),
        "dataloader": (ref_model(), DataLoader(TensorDataset(torch.from_numpy(Xtr), torch.from_numpy(ytr)),
                                               batch_size=32), (Xte, yte)),
        "csv": (ref_model(), load_xy(tmp_path / "d.csv", "target"), (Xte, yte)),
        "parquet": (ref_model(), load_xy(tmp_path / "d.parquet", "target"), (Xte, yte)),
        "npz": (ref_model(), load_xy(tmp_path / "d.npz", "y"), (Xte, yte)),
        "stream": (ref_model(), stream_file(tmp_path / "d.parquet", "target", chunk_rows=96), (Xte, yte)),
        "text labels": (ref_model(), (Xtr, np.array(["neg", "pos"])[ytr]), (Xte, np.array(["neg", "pos"])[yte])),
    }
    for name, (model, train, test) in forms.items():
        t, acc = train_form(model, train, test)
        assert acc == base, name
        assert torch.allclose(weights(t.model), weights(base_t.model), atol=1e-6), name
    assert ft.Trainer(ref_model(), progress=False).fit((df, ytr), epochs=0) is not None


def test_dataset_path_shuffles_exactly_like_the_fast_path(ref_data):
    (Xtr, ytr), (Xte, yte) = ref_data
    a, acc_a = train_form(ref_model(), (Xtr, ytr), (Xte, yte), shuffle=True)
    b, acc_b = train_form(ref_model(), RowDataset(Xtr, ytr), (Xte, yte), shuffle=True)
    assert acc_a == acc_b
    assert torch.equal(weights(a.model), weights(b.model))


def test_pandas_feature_names_are_remembered_and_saved(small_clf_data, tmp_path):
    X, y = small_clf_data
    cols = [f"c{i}" for i in range(8)]
    t = ft.Trainer(nn.Sequential(nn.Linear(8, 3)), progress=False)
    t.fit((pd.DataFrame(X, columns=cols), y), epochs=1)
    assert t.feature_names == cols
    t.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / "model.json").read_text())
    assert meta["feature_names"] == cols
    t2 = ft.Trainer(nn.Sequential(nn.Linear(8, 3)), progress=False).load(tmp_path / "m")
    assert t2.feature_names == cols


@pytest.mark.parametrize("labels", [np.array(["cat", "dog", "emu"]), np.array([3, 7, 9])])
def test_labels_are_encoded_saved_and_decoded(small_clf_data, tmp_path, labels):
    X, y = small_clf_data
    y_orig = labels[y]
    torch.manual_seed(0)
    t = ft.Trainer(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)), metrics=["accuracy"], progress=False)
    t.fit((X, y_orig), epochs=15)
    assert t.classes == labels.tolist()
    json.dumps(t.classes)
    pred = t.predict(X, labels=True)
    assert isinstance(pred, np.ndarray) and set(pred.tolist()) <= set(labels.tolist())
    assert isinstance(t.predict(X), torch.Tensor)
    oracle = accuracy_score(y_orig, pred)  # sklearn on the original labels agrees with the trainer's metric
    assert t.evaluate((X, y_orig))["accuracy"] == pytest.approx(oracle, abs=1e-6)
    assert oracle > 0.9
    t.save(tmp_path / "m")
    assert json.loads((tmp_path / "m" / "model.json").read_text())["classes"] == labels.tolist()
    t2 = ft.Trainer(nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 3)), metrics=["accuracy"],
                    progress=False).load(tmp_path / "m")
    assert t2.classes == labels.tolist()
    np.testing.assert_array_equal(t2.predict(X, labels=True), pred)
    assert t2.evaluate((X, y_orig))["accuracy"] == pytest.approx(oracle, abs=1e-6)


def test_evaluate_with_an_unknown_label_is_refused(small_clf_data):
    X, y = small_clf_data
    t = ft.Trainer(nn.Sequential(nn.Linear(8, 3)), progress=False)
    t.fit((X, np.array(["a", "b", "c"])[y]), epochs=1)
    y_eval = np.array(["a", "b", "c"], dtype=object)[y]
    y_eval[4] = "zebra"
    with pytest.raises(DataError, match="'zebra'.*Known classes: 'a', 'b', 'c'"):
        t.evaluate((X, y_eval))


def test_binary_text_labels_with_bce(small_clf_data):
    X, y = small_clf_data
    yb = np.where(y == 0, "no", "yes")
    t = ft.Trainer(nn.Sequential(nn.Linear(8, 1)), loss="bce_with_logits", metrics=["accuracy"], lr=0.05,
                   progress=False)
    t.fit((X, yb.reshape(-1, 1)), epochs=10)
    assert t.classes == ["no", "yes"]
    pred = t.predict(X, labels=True)
    assert set(pred.tolist()) <= {"no", "yes"}
    assert accuracy_score(yb, pred) > 0.8


def test_predict_labels_needs_classification(small_reg_data):
    X, y = small_reg_data
    t = ft.Trainer(nn.Linear(5, 1), loss="mse", progress=False)
    t.fit((X, y.reshape(-1, 1)), epochs=1)
    with pytest.raises(ConfigError, match="classification"):
        t.predict(X, labels=True)


def test_val_fraction_is_sklearns_stratified_split_from_the_seed(small_clf_data):
    X, y = small_clf_data
    src = make_source((X, y), target_dtype=torch.long)
    train, val = split_fraction(src, 0.25, seed=7, stratify=True)
    tr_idx, va_idx = train_test_split(np.arange(200), test_size=0.25, random_state=7, stratify=y)
    np.testing.assert_array_equal(val.target.numpy(), y[np.sort(va_idx)])
    np.testing.assert_array_equal(train.inputs[0].numpy(), X[np.sort(tr_idx)])
    for c in range(3):  # stratified: each class keeps its share (within one sample)
        assert abs((val.target == c).sum().item() - 0.25 * (y == c).sum()) <= 1
    _, val_other = split_fraction(src, 0.25, seed=8, stratify=True)
    assert not torch.equal(val.inputs[0], val_other.inputs[0])


def test_fit_with_val_fraction_is_reproducible(small_clf_data):
    X, y = small_clf_data

    def run():
        torch.manual_seed(0)
        t = ft.Trainer(nn.Sequential(nn.Linear(8, 3)), seed=3, progress=False)
        return list(t.fit((X, y), val=0.2, epochs=2))

    a, b = run(), run()
    assert [r["val_loss"] for r in a] == [r["val_loss"] for r in b]


def test_val_fraction_of_a_map_style_dataset(small_clf_data):
    X, y = small_clf_data
    t = ft.Trainer(nn.Sequential(nn.Linear(8, 3)), progress=False)
    t.fit(RowDataset(X, y), val=0.3, epochs=1)
    assert "val_loss" in list(t.history)[-1]


class NoisyDataset(Dataset):
    """Augments with numpy's global RNG in __getitem__: reproducible only if workers are seeded."""

    def __init__(self, X, y):
        self.X, self.y = X, y

    def __len__(self):
        return len(self.X)

    def __getitem__(self, i):
        return torch.from_numpy(self.X[i] + np.random.normal(0, 0.1, size=self.X.shape[1]).astype(np.float32)), \
            int(self.y[i])


def test_dataset_workers_are_seeded_and_persistent(small_clf_data):
    X, y = small_clf_data

    def run():
        torch.manual_seed(0)
        t = ft.Trainer(nn.Sequential(nn.Linear(8, 3)), seed=5, progress=False)
        t.fit(NoisyDataset(X, y), epochs=2, batch_size=50, num_workers=2)
        return weights(t.model)

    assert torch.equal(run(), run())
    src = make_source(NoisyDataset(X, y), num_workers=2, device=torch.device("cuda"))
    assert isinstance(src, LoaderData) and src.pin_memory  # pin_memory for a CUDA target
    loader = src._own_loader(50, False)
    assert loader.persistent_workers and loader.num_workers == 2 and loader.worker_init_fn is not None
    with pytest.raises(ConfigError, match="num_workers=-1"):
        ft.Trainer(nn.Linear(8, 3), progress=False).fit((X, y), num_workers=-1)


def test_a_ready_dataloader_is_used_as_given(small_clf_data):
    X, y = small_clf_data
    seen = []

    def collate(rows):
        seen.append(len(rows))
        return torch.stack([r[0] for r in rows]), torch.stack([r[1] for r in rows])

    dl = DataLoader(TensorDataset(torch.from_numpy(X), torch.from_numpy(y)), batch_size=64, collate_fn=collate)
    t = ft.Trainer(nn.Sequential(nn.Linear(8, 3)), progress=False)
    t.fit(dl, epochs=1, batch_size=7)
    assert seen[-4:] == [64, 64, 64, 8]  # its own batch size and collate, not fit's batch_size


def test_multi_input_needs_a_dict_or_a_tuple_inside_the_pair(small_clf_data):
    X, y = small_clf_data
    with pytest.raises(ft.DataTypeError, match="tuple inside the pair"):
        ft.Trainer(nn.Bilinear(8, 8, 3), progress=False).fit((X, X, y), epochs=1)
    t = ft.Trainer(nn.Bilinear(8, 8, 3), progress=False)
    t.fit(((X, X), y), epochs=1)
    assert t.predict((X, X)).shape == (200, 3)


def test_in_memory_source_keeps_dtypes(small_clf_data):
    X, y = small_clf_data
    src = make_source((X.astype(np.float64), y.astype(np.int32)), target_dtype=torch.long)
    assert isinstance(src, InMemoryData)
    assert src.inputs[0].dtype == torch.float32 and src.target.dtype == torch.long


def test_the_examples_in_docs_data_md_run(tmp_path, monkeypatch):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "data.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for i, block in enumerate(blocks):
        exec(compile(block, f"docs/data.md block {i}", "exec"), namespace)
    assert namespace["trainer"].classes == ["cat", "dog"]
    assert (tmp_path / "pets" / "model.json").exists()


# -- CSV files as they come (issue 14) -------------------------------------------------------

def test_csv_with_bom_semicolons_and_decimal_commas_is_read(tmp_path):
    from fittorch.data.files import read_table

    (tmp_path / "bom.csv").write_bytes("\ufeffa,b\n1,x\n2,y\n".encode("utf-8"))
    assert list(read_table(tmp_path / "bom.csv").columns) == ["a", "b"]
    (tmp_path / "semi.csv").write_text("name;weight;city\nAnna;61,5;Köln\nBen;80,25;Bonn\n", encoding="utf-8")
    df = read_table(tmp_path / "semi.csv")
    assert list(df.columns) == ["name", "weight", "city"] and df["weight"].tolist() == [61.5, 80.25]
    (tmp_path / "semi2.csv").write_text("a;b\n1.5;2\n3.5;4\n")
    assert read_table(tmp_path / "semi2.csv")["a"].tolist() == [1.5, 3.5]


def test_csv_with_duplicate_column_names_is_refused(tmp_path):
    from fittorch.data.files import read_table

    (tmp_path / "dup.csv").write_text("a,b,a\n1,2,3\n")
    with pytest.raises(DataError, match=r"names column\(s\) 'a' more than once"):
        read_table(tmp_path / "dup.csv")
    (tmp_path / "dup2.csv").write_text("a;b;a\n1;2;3\n")  # found with the sniffed delimiter too
    with pytest.raises(DataError, match=r"names column\(s\) 'a' more than once"):
        read_table(tmp_path / "dup2.csv")


def test_load_xy_never_inspects_unselected_columns(tmp_path):
    pd.DataFrame({"x": [1.0, 2.0], "text": ["a", "b"], "y": [0, 1]}).to_csv(tmp_path / "t.csv", index=False)
    X, y = load_xy(tmp_path / "t.csv", "y", features=["x"])
    assert list(X.columns) == ["x"] and y.tolist() == [0, 1]
    with pytest.raises(ft.DataTypeError, match="'text'"):
        load_xy(tmp_path / "t.csv", "y")


def test_a_csv_that_is_not_utf8_is_explained(tmp_path):
    from fittorch.data.files import read_table

    (tmp_path / "latin.csv").write_bytes("name,city\nJosé,Köln\n".encode("latin-1"))
    with pytest.raises(DataError, match=r"is not UTF-8 text \(it holds the byte b'\\xe9'.*iconv -f latin1"):
        read_table(tmp_path / "latin.csv")


def test_a_shuffled_epoch_keeps_the_layout_of_image_batches():
    """numpy's [N, 1, H, W] (a new axis) also reads as channels_last, which CPU convs run faster;
    the epoch's shuffled copy keeps those strides, as a hand loop's X[perm] does."""
    X = torch.from_numpy(np.random.default_rng(0).random((10, 8, 8), dtype=np.float32)[:, None])
    assert X.is_contiguous(memory_format=torch.channels_last)
    src = InMemoryData(X, torch.arange(10))
    order = src.epoch_order(0, 0, True)
    (x,), y = next(src.batches(4, order))
    assert x.stride() == X[order[:4]].stride() and x.is_contiguous(memory_format=torch.channels_last)
    assert torch.equal(x, X[order[:4]]) and torch.equal(y, order[:4])
