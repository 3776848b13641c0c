"""TorchClassifier / TorchRegressor: scikit-learn's conformance suite, and the sklearn workflows."""

from __future__ import annotations

import io
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import load_breast_cancer, make_blobs, make_regression
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.metrics import accuracy_score, r2_score
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks
from torch import nn

import fittorch
from fittorch.errors import ConfigError, DataError, ModelError
from fittorch.sklearn import TorchClassifier, TorchRegressor, expected_failed_checks


# -- scikit-learn's own conformance suite -------------------------------------------------
# Cheap instances (10 epochs, CPU, fixed seed): the suite runs a few hundred fits.
@parametrize_with_checks(
    [TorchClassifier(epochs=10, lr=0.01, device="cpu"), TorchRegressor(epochs=10, lr=0.01, device="cpu")],
    expected_failed_checks=expected_failed_checks, xfail_strict=True,
)
def test_sklearn_conformance(estimator, check):
    check(estimator)


# -- data ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def cancer():
    X, y = load_breast_cancer(return_X_y=True)
    return X, y


@pytest.fixture
def blobs():
    X, y = make_blobs(n_samples=150, centers=3, n_features=4, random_state=0)
    return X.astype(np.float32), y


def small_clf(**kw):
    kw.setdefault("epochs", 5)
    kw.setdefault("lr", 0.01)
    kw.setdefault("device", "cpu")
    return TorchClassifier(**kw)


def small_reg(**kw):
    kw.setdefault("epochs", 20)
    kw.setdefault("lr", 0.01)
    kw.setdefault("device", "cpu")
    return TorchRegressor(**kw)


def weights(module: nn.Module) -> dict:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def same_weights(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


# -- workflows ---------------------------------------------------------------------------------
def test_pipeline_with_scaler_scores_like_sklearn_accuracy(cancer):
    X, y = cancer
    pipe = make_pipeline(StandardScaler(), small_clf(epochs=10)).fit(X[:400], y[:400])
    pred = pipe.predict(X[400:])
    assert pipe.score(X[400:], y[400:]) == accuracy_score(y[400:], pred)
    assert accuracy_score(y[400:], pred) > 0.9
    clf = pipe[-1]
    assert isinstance(clf.trainer_, fittorch.Trainer)  # the engine trained it, not a second loop
    assert clf.n_features_in_ == 30 and len(clf.history_) == 10


def test_cross_val_score(cancer):
    X, y = cancer
    cv = KFold(5, shuffle=True, random_state=0)
    scores = cross_val_score(make_pipeline(StandardScaler(), small_clf(epochs=5)), X, y, cv=cv)
    assert scores.shape == (5,) and scores.mean() > 0.9


def test_grid_search_over_lr_hidden_and_epochs(blobs):
    X, y = blobs
    grid = {"lr": [1e-3, 1e-2], "module__hidden": [(4,), (16,)], "epochs": [1, 5]}
    search = GridSearchCV(small_clf(), grid, cv=3).fit(X, y)
    assert len(search.cv_results_["params"]) == 8
    best = search.best_estimator_
    assert best.module_[0].out_features == best.get_params()["module__hidden"][0]
    assert len(best.history_) == search.best_params_["epochs"]
    # The grid's worst corner (1 epoch at lr=1e-3, 4 hidden units) must lose to its best.
    scores = dict(zip(map(str, search.cv_results_["params"]), search.cv_results_["mean_test_score"]))
    worst = str({"epochs": 1, "lr": 0.001, "module__hidden": (4,)})
    assert scores[worst] < search.best_score_


def test_nested_params_reach_module_and_optimizer(blobs):
    X, y = blobs
    clf = small_clf(module__hidden=(8, 6), optimizer="adamw")
    clf.set_params(optimizer__weight_decay=0.25, module__activation="tanh")
    params = clf.get_params()
    assert params["module__hidden"] == (8, 6) and params["optimizer__weight_decay"] == 0.25
    clf.fit(X, y)
    assert [m.out_features for m in clf.module_ if isinstance(m, nn.Linear)] == [8, 6, 3]
    assert isinstance(clf.module_[1], nn.Tanh)
    assert clf.trainer_.optimizer.param_groups[0]["weight_decay"] == 0.25


def test_clone_keeps_params_and_drops_fitted_state(blobs):
    X, y = blobs
    clf = small_clf(module__hidden=(8,), optimizer__weight_decay=0.1).fit(X, y)
    twin = clone(clf)
    assert twin.get_params() == clf.get_params()
    assert not hasattr(twin, "module_") and not hasattr(twin, "classes_")
    with pytest.raises(SklearnNotFittedError):
        twin.predict(X)
    with pytest.raises(fittorch.NotFittedError):  # the same error, seen as fittorch's
        twin.history_  # noqa: B018


def test_fit_is_reproducible_and_refit_starts_over(blobs):
    X, y = blobs
    a = small_clf().fit(X, y)
    first = weights(a.module_)
    a.fit(X, y)
    assert same_weights(first, weights(a.module_))
    assert same_weights(first, weights(small_clf().fit(X, y).module_))
    assert not same_weights(first, weights(small_clf(seed=1).fit(X, y).module_))


def test_partial_fit_continues_with_the_optimizer_state(blobs):
    X, y = blobs
    whole = small_clf(epochs=5).fit(X, y)
    parts = small_clf(epochs=3).fit(X, y)
    parts.partial_fit(X, y, epochs=2)
    assert len(parts.history_) == 5
    # Same weights bit for bit: the Adam moments and the epoch counter (data order) carried on.
    assert same_weights(weights(whole.module_), weights(parts.module_))
    fresh_opt = small_clf(epochs=3).fit(X, y)
    fresh_opt.trainer_.optimizer.state.clear()  # what losing the optimizer state would do
    fresh_opt.partial_fit(X, y, epochs=2)
    assert not same_weights(weights(whole.module_), weights(fresh_opt.module_))


def test_partial_fit_from_scratch_with_classes(blobs):
    X, y = blobs
    labels = np.array(["a", "b", "c"])[y]
    clf = small_clf()
    first = labels != "c"
    clf.partial_fit(X[first], labels[first], classes=["c", "a", "b"])
    assert clf.classes_.tolist() == ["a", "b", "c"] and clf.module_[-1].out_features == 3
    clf.partial_fit(X, labels)
    assert len(clf.history_) == 2 and set(clf.predict(X)) <= {"a", "b", "c"}
    with pytest.raises(DataError, match="not among the classes"):
        clf.partial_fit(X, np.where(labels == "a", "z", labels))
    with pytest.raises(ValueError, match="features"):
        clf.partial_fit(X[:, :3], labels)


@pytest.mark.parametrize("labels", [np.array(["cat", "dog", "emu"]), np.array([-7, 3, 1000]),
                                    np.array([10, 20, 30], dtype=np.uint8)])
def test_any_class_labels_map_through_classes(blobs, labels):
    X, y = blobs
    target = labels[y]
    clf = small_clf(epochs=10).fit(X, target)
    assert clf.classes_.tolist() == sorted(labels.tolist())
    pred = clf.predict(X)
    assert pred.dtype == target.dtype and accuracy_score(target, pred) > 0.9
    proba = clf.predict_proba(X)
    assert proba.shape == (len(X), 3)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert (clf.classes_[proba.argmax(1)] == pred).all()


def test_binary_with_bce_with_logits_uses_one_output(cancer):
    X, y = cancer
    X = StandardScaler().fit_transform(X)
    clf = small_clf(loss="bce_with_logits").fit(X, np.where(y == 1, "benign", "malignant"))
    assert clf.module_[-1].out_features == 1
    logits = clf.module_(torch.as_tensor(X[:5], dtype=torch.float32)).detach().double()[:, 0]
    np.testing.assert_allclose(clf.predict_proba(X[:5])[:, 1], torch.sigmoid(logits).numpy(), rtol=1e-6)
    assert clf.score(X, np.where(y == 1, "benign", "malignant")) > 0.9
    with pytest.raises(ConfigError, match="two classes"):
        small_clf(loss="bce_with_logits").fit(X[:30], np.arange(30) % 3)


def test_refuses_multilabel_and_single_class_clearly(blobs):
    X, y = blobs
    Y = np.stack([y == 0, y == 1], axis=1).astype(int)
    with pytest.raises(DataError, match="MultiOutputClassifier"):
        small_clf().fit(X, Y)
    with pytest.raises(DataError, match="only one class"):
        small_clf().fit(X, np.zeros(len(X), dtype=int))


@pytest.mark.parametrize("k", [None, 1, 3])
def test_regression_targets_keep_their_shape(k):
    X, y = make_regression(n_samples=120, n_features=4, n_targets=k or 1, noise=0.1, random_state=0)
    y = y / y.std()
    if k == 1:
        y = y.reshape(-1, 1)
    reg = small_reg(epochs=40).fit(X, y)
    pred = reg.predict(X)
    assert pred.shape == y.shape and pred.dtype == np.float64
    assert reg.score(X, y) == pytest.approx(r2_score(y, pred))
    assert reg.score(X, y) > 0.8
    assert reg.n_outputs_ == (k or 1)


class Net(nn.Module):
    def __init__(self, in_features, out_features, width=8):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(in_features, width), nn.ReLU(), nn.Linear(width, out_features))

    def forward(self, x):
        return self.body(x)


class FlatNet(nn.Module):
    """Returns (n,) for a 1-D regression target."""

    def __init__(self, n_in=4):
        super().__init__()
        self.lin = nn.Linear(n_in, 1)

    def forward(self, x):
        return self.lin(x).squeeze(-1)


def test_module_class_gets_sizes_and_kwargs(blobs):
    X, y = blobs
    clf = small_clf(module=Net, module__width=5).fit(X, y)
    assert clf.module_.body[0].in_features == 4 and clf.module_.body[0].out_features == 5
    assert clf.module_.body[2].out_features == 3
    X_r, y_r = make_regression(n_samples=80, n_features=4, random_state=0)
    reg = small_reg(module=FlatNet).fit(X_r, y_r / y_r.std())
    assert reg.predict(X_r).shape == (80,)
    with pytest.raises(ModelError, match="width"):
        small_clf(module=Net, module__widht=5).fit(X, y)


def test_module_instance_is_copied_not_trained(blobs):
    X, y = blobs
    torch.manual_seed(0)
    net = Net(4, 3)
    before = weights(net)
    clf = small_clf(module=net).fit(X, y)
    assert same_weights(before, weights(net))  # the parameter is untouched
    assert not same_weights(before, weights(clf.module_))
    with pytest.raises(ModelError, match="outputs 3 values per sample, but y has 2 classes"):
        small_clf(module=net).fit(X[y < 2], y[y < 2])


def test_pickle_stores_weights_as_safetensors_and_continues(blobs):
    X, y = blobs
    labels = np.array(["x", "y", "z"])[y]
    clf = small_clf(module__hidden=(8,)).fit(X, labels)
    blob = pickle.dumps(clf)
    loaded_globals = []

    class Recorder(pickle.Unpickler):
        def find_class(self, module, name):
            loaded_globals.append(f"{module}.{name}")
            return super().find_class(module, name)

    back = Recorder(io.BytesIO(blob)).load()
    assert not [g for g in loaded_globals if g.startswith("torch")]  # no nn.Module, no pickled tensor
    from safetensors.torch import load as load_safetensors

    stored = load_safetensors(clf.__getstate__()["_fitted_blob"]["weights"])
    assert same_weights(stored, weights(clf.module_))
    np.testing.assert_array_equal(back.predict_proba(X), clf.predict_proba(X))
    assert back.classes_.tolist() == ["x", "y", "z"] and len(back.history_) == 5
    clf.partial_fit(X, labels)
    back.partial_fit(X, labels)  # optimizer state and epoch counter came back too
    assert same_weights(weights(clf.module_), weights(back.module_))
    assert pickle.loads(pickle.dumps(small_clf())).get_params() == small_clf().get_params()  # unfitted


def test_save_and_from_run_dir(tmp_path, blobs):
    X, y = blobs
    clf = small_clf().fit(X, np.array(["a", "b", "c"])[y])
    clf.save(tmp_path / "run")
    assert {p.name for p in (tmp_path / "run").iterdir()} == {"model.safetensors", "model.json", "metrics.csv"}
    back = TorchClassifier.from_run_dir(tmp_path / "run", device="cpu")
    np.testing.assert_array_equal(back.predict(X), clf.predict(X))
    assert back.classes_.tolist() == ["a", "b", "c"]
    back.partial_fit(X, np.array(["a", "b", "c"])[y])  # trains on, with a fresh optimizer
    reg = small_reg(module=Net, module__width=6).fit(X, y.astype(float))
    reg.save(tmp_path / "reg")
    with pytest.raises(fittorch.CheckpointError, match="module=MyNet"):
        TorchRegressor.from_run_dir(tmp_path / "reg")
    back_reg = TorchRegressor.from_run_dir(tmp_path / "reg", module=Net, device="cpu")  # module__width was saved
    assert back_reg.get_params()["module__width"] == 6
    np.testing.assert_array_equal(back_reg.predict(X), reg.predict(X))


def test_from_run_dir_of_the_reference_demo(tmp_path):
    from fittorch.demo import make_reference_data, run_demo

    run_demo(epochs=2, out=tmp_path / "demo", quiet=True, device="cpu")
    (_, _), (X_test, y_test), _ = make_reference_data()
    clf = TorchClassifier.from_run_dir(tmp_path / "demo", device="cpu")
    model = fittorch.load(tmp_path / "demo").eval()
    with torch.no_grad():
        expected = model(torch.as_tensor(X_test)).argmax(1).numpy()
    np.testing.assert_array_equal(clf.predict(X_test), expected)
    assert clf.classes_.tolist() == [0, 1] and clf.n_features_in_ == 20


def test_dataframe_feature_names(blobs):
    pd = pytest.importorskip("pandas")
    X, y = blobs
    df = pd.DataFrame(X, columns=["a", "b", "c", "d"])
    clf = small_clf().fit(df, y)
    assert clf.feature_names_in_.tolist() == ["a", "b", "c", "d"]
    with pytest.raises(ValueError, match="feature names"):
        clf.predict(df[["b", "a", "c", "d"]])


def test_validation_split_fills_history_and_callbacks_are_copied(blobs):
    X, y = blobs

    class Count(fittorch.Callback):
        def __init__(self):
            self.epochs = 0

        def on_epoch_end(self, trainer, row):
            self.epochs += 1

    counter = Count()
    clf = small_clf(val_split=0.2, callbacks=[counter]).fit(X, y)
    assert {"train_loss", "val_loss", "val_accuracy"} <= set(clf.history_.columns)
    copied = next(cb for cb in clf.trainer_.callbacks if isinstance(cb, Count))
    assert counter.epochs == 0 and copied is not counter and copied.epochs == 5


def test_bad_params_are_refused_with_a_fix():
    with pytest.raises(ConfigError, match="Did you mean 'epochs'"):
        TorchClassifier(epoch=3)
    X, y = np.random.default_rng(0).normal(size=(20, 3)), np.arange(20) % 2
    with pytest.raises(ConfigError, match="val_split"):
        small_clf(val_split=1.5).fit(X, y)
    with pytest.raises(ConfigError, match="bound to another model"):
        small_clf(optimizer=torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=0.1)).fit(X, y)
    with pytest.raises(ConfigError, match="instance"):
        small_clf(module=Net(3, 2), module__width=4).fit(X, y)
    with pytest.raises(ModelError, match="expected an nn.Module class"):
        small_clf(module="mlp").fit(X, y)


# -- raw DataFrames (issue 14) ---------------------------------------------------------------
@pytest.fixture(scope="module")
def penguins():
    import palmerpenguins

    df = palmerpenguins.load_penguins()
    return df.drop(columns=["species"]), df["species"]


def test_cross_val_score_on_the_raw_penguins_frame(penguins):
    X, y = penguins  # text columns island/sex, gaps in six columns: no ColumnTransformer
    clf = TorchClassifier(module__hidden=(32,), epochs=30, lr=0.01, batch_size=16, device="cpu")
    scores = cross_val_score(clf, X, y, cv=KFold(3, shuffle=True, random_state=0))
    assert scores.shape == (3,) and scores.min() > 0.9


def test_raw_frame_fit_predict_save_load_pickle(penguins, tmp_path):
    X, y = penguins
    clf = TorchClassifier(module__hidden=(16,), epochs=15, lr=0.01, device="cpu").fit(X, y)
    assert clf.tabular_.categorical_columns == ["island", "sex"] and clf.n_features_in_ == 7
    assert clf.module_.spec["type"] == "tabular_mlp"
    new = X.head(4).assign(island=["Anvers", "Dream", None, "Biscoe"])
    preds = clf.predict(new)
    assert len(preds) == 4 and clf.tabular_.last_unknown["island"]["count"] == 1
    clf.save(tmp_path / "run")
    again = TorchClassifier.from_run_dir(tmp_path / "run")
    np.testing.assert_array_equal(again.predict(X), clf.predict(X))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(clf)).predict(X), clf.predict(X))
    with pytest.raises(DataError, match=r"missing column\(s\) 'sex'"):
        clf.predict(X.drop(columns=["sex"]))


def test_still_works_inside_a_column_transformer_with_sparse_output(penguins, monkeypatch):
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.preprocessing import OneHotEncoder

    from fittorch.sklearn import _tabular

    X, y = penguins
    num = ["bill_length_mm", "bill_depth_mm", "flipper_length_mm", "body_mass_g"]
    ct = ColumnTransformer([("num", make_pipeline(SimpleImputer(), StandardScaler()), num),
                            ("cat", OneHotEncoder(handle_unknown="ignore"), ["island"])], sparse_threshold=1.0)
    assert hasattr(ct.fit_transform(X), "tocsr")  # the pipeline below really passes a sparse matrix
    pipe = make_pipeline(ct, TorchClassifier(epochs=20, lr=0.01, device="cpu"))
    assert pipe.fit(X, y).score(X, y) > 0.9
    monkeypatch.setattr(_tabular, "MAX_DENSE_CELLS", 10)
    with pytest.raises(fittorch.DataTypeError, match=r"sparse 344x7 matrix .* OneHotEncoder\(sparse_output=False\)"):
        pipe.fit(X, y)


def test_preprocess_option(penguins):
    X, y = penguins
    with pytest.raises(fittorch.DataTypeError, match=r"'island', 'sex' hold text .*preprocess='auto'"):
        TorchClassifier(epochs=1, preprocess=False, device="cpu").fit(X, y)
    with pytest.raises(ConfigError, match="preprocess='yes'"):
        TorchClassifier(epochs=1, preprocess="yes", device="cpu").fit(X, y)
    from fittorch.tabular import TabularPreprocessor

    clf = TorchClassifier(epochs=2, device="cpu", val_split=0.2, preprocess=TabularPreprocessor(categorical=["year"]))
    clf.fit(X, y)  # val_split splits the numeric + category inputs alike
    assert clf.tabular_.categorical_columns == ["island", "sex", "year"] and clf.preprocess.state is None
    assert len(clf.history_) == 2 and "val_loss" in repr(clf.history_)
    num = X.select_dtypes("number").fillna(0.0)
    assert TorchClassifier(epochs=2, device="cpu").fit(num, y).tabular_ is None  # numbers only: the array path


def test_a_raw_frame_with_label_gaps_is_refused_with_rows(penguins):
    X, y = penguins
    y = y.copy()
    y.iloc[[2, 5]] = None
    with pytest.raises(DataError, match=r"y is empty \(NaN/None\) in 2 of 344 rows \(rows 3, 6"):
        TorchClassifier(epochs=1, device="cpu").fit(X, y)
