"""The shared part of the scikit-learn estimators: parameters, fitting, persistence.

``TorchClassifier`` and ``TorchRegressor`` (``fittorch/sklearn/estimators.py``) only add
how targets are encoded and how outputs are read. Training itself is a
:class:`fittorch.Trainer`, built once per ``fit`` and kept as ``trainer_``, so the estimators
run exactly the engine's loop: there is no second training loop here.
"""

from __future__ import annotations

import copy
import inspect
import warnings
from pathlib import Path

import numpy as np
import sklearn
import torch
from sklearn.base import BaseEstimator
from sklearn.exceptions import NotFittedError as SklearnNotFittedError
from sklearn.utils.validation import validate_data
from torch import nn

from fittorch import errors
from fittorch.history import History
from fittorch.models import MLP, TabularMLP, build_model, model_spec
from fittorch.seeding import seed_everything
from fittorch.sklearn import _persist, _tabular
from fittorch.tabular import TabularPreprocessor, n_rows
from fittorch.trainer import Trainer

PREFIXES = ("module__", "optimizer__")
PARAMS = ("module", "loss", "optimizer", "lr", "epochs", "batch_size", "shuffle", "val_split", "callbacks",
          "metrics", "device", "seed", "verbose", "preprocess")


class EstimatorNotFittedError(errors.NotFittedError, SklearnNotFittedError):
    """``predict``/``score`` before ``fit``. Caught by ``except sklearn.exceptions.NotFittedError`` too."""


class TorchEstimator(BaseEstimator):
    """Base class of :class:`TorchClassifier` and :class:`TorchRegressor`; see their docs."""

    def __init__(self, module=None, *, loss="mse", optimizer="adam", lr=1e-3, epochs=100, batch_size=32,
                 shuffle=True, val_split=0.0, callbacks=None, metrics="auto", device="auto", seed=0, verbose=0,
                 preprocess="auto", **kwargs):
        self.module = module
        self.loss = loss
        self.optimizer = optimizer
        self.lr = lr
        self.epochs = epochs
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.val_split = val_split
        self.callbacks = callbacks
        self.metrics = metrics
        self.device = device
        self.seed = seed
        self.verbose = verbose
        self.preprocess = preprocess
        unknown = [k for k in kwargs if not k.startswith(PREFIXES)]
        if unknown:
            raise errors.unknown_name(
                f"parameter of {type(self).__name__}", unknown[0], PARAMS,
                "Arguments for the module's constructor are passed as module__name=value, "
                "and for the optimizer as optimizer__name=value.")
        vars(self).update(kwargs)

    # -- scikit-learn parameter protocol ------------------------------------------------
    def get_params(self, deep: bool = True) -> dict:
        params = super().get_params(deep=deep)
        params.update({k: v for k, v in vars(self).items() if k.startswith(PREFIXES)})
        return params

    def set_params(self, **params):
        """Set parameters, including ``module__*`` and ``optimizer__*`` (used by GridSearchCV)."""
        prefixed = {k: params.pop(k) for k in list(params) if k.startswith(PREFIXES)}
        vars(self).update(prefixed)
        if params:
            super().set_params(**params)
        return self

    def _prefixed(self, prefix: str) -> dict:
        return {k[len(prefix):]: v for k, v in vars(self).items() if k.startswith(prefix)}

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "trainer_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.seed is None
        tags.input_tags.sparse = True  # made dense (up to _tabular.MAX_DENSE_CELLS), see _tabular.dense
        return tags

    # -- fitting ----------------------------------------------------------------------
    def fit(self, X, y):
        """Build a fresh module and train it for ``epochs`` epochs. Returns ``self``."""
        X, y = self._validate_fit(X, y, reset=True)
        self._initialize(X)
        self._train(X, self._target(y), self.epochs)
        return self

    def _partial_fit(self, X, y, epochs: int, **target_kwargs):
        first = not self.__sklearn_is_fitted__()
        X, y = self._validate_fit(X, y, reset=first, **target_kwargs)
        if first:
            self._initialize(X)
        self._train(X, self._target(y), epochs)
        return self

    @property
    def history_(self) -> History:
        """One row per epoch trained so far (``train_loss``, ``val_loss``, metrics, ``lr``, ``seconds``)."""
        self._check_fitted("history_")
        return self.trainer_.history

    def _initialize(self, X: np.ndarray) -> None:
        self._check_params()
        seed = int(self.seed) if self.seed is not None else int(np.random.randint(2**31 - 1))
        seed_everything(seed)  # the module's initial weights come from this seed
        n_in = _tabular.width(X) if _tabular.width(X) is not None else X["numeric"].shape[1]
        module, recipe = self._build_module(n_in, self._n_module_outputs())
        self._adapt_to_module(module, X)
        self._module_recipe = recipe
        self._seed = seed
        self.module_ = module
        self.trainer_ = self._make_trainer(module, seed)
        self.trainer_.n_features_in = _tabular.width(X)

    def _validate_xy(self, X, y, *, reset: bool, y_numeric: bool = False):
        """(model inputs, y): a raw DataFrame through ``tabular_``, anything else through sklearn."""
        inputs = _tabular.fit_inputs(self, X, reset)
        if inputs is None:
            X, y = validate_data(self, _tabular.dense(X), y, reset=reset, dtype=np.float32, multi_output=True,
                                 y_numeric=y_numeric)
            return _writable(X), y
        return inputs, _tabular.check_y(y, n_rows(inputs), numeric=y_numeric)

    def _train(self, X, y: np.ndarray, epochs: int) -> None:
        # val_split: the Trainer's one split policy (seeded; stratified for classification; a class
        # too rare to split is refused by name), the same as fit(val=0.2) and the CLI.
        val = float(self.val_split) if self.val_split else None
        self.trainer_.fit((X, y), val, epochs=_py_int(epochs), batch_size=_py_int(self.batch_size),
                          shuffle=bool(self.shuffle))

    def _check_params(self) -> None:
        if isinstance(self.optimizer, torch.optim.Optimizer):
            raise errors.ConfigError(
                f"optimizer is a {type(self.optimizer).__name__} instance, which is bound to another model's "
                "parameters. Pass a name ('adam'), a class (torch.optim.AdamW) or a factory(params) -> optimizer, "
                "and its arguments as optimizer__name=value.")
        if "lr" in self._prefixed("optimizer__"):
            raise errors.ConfigError("optimizer__lr was given; set the learning rate with lr=... instead.")
        vs = self.val_split
        if vs is None or isinstance(vs, bool) or not isinstance(vs, (int, float)) or not 0.0 <= vs < 1.0:
            raise errors.ConfigError(
                f"val_split={vs!r}; expected a fraction in [0, 1), e.g. 0.2 to validate on 20% of the data "
                "after every epoch (0 for none).")
        if self.module is not None and not isinstance(self.module, nn.Module) and not (
                isinstance(self.module, type) and issubclass(self.module, nn.Module)):
            raise errors.ModelError(
                f"module={self.module!r} is a {type(self.module).__name__}; expected an nn.Module class "
                "(with its arguments as module__name=value), an nn.Module instance, or None for the built-in MLP.")

    def _build_module(self, n_in: int, n_out: int):
        """The module to train, and the recipe that rebuilds its skeleton when unpickling."""
        kwargs = self._prefixed("module__")
        module = self.module
        tab = getattr(self, "tabular_", None)
        cards = tab.cardinalities if tab is not None else []
        if module is None:
            if cards:
                kwargs = {"n_numeric": n_in, "cardinalities": cards, "out_features": n_out,
                          "column_names": tab.categorical_columns, **kwargs}
                mlp = _construct(TabularMLP, kwargs)
            else:
                mlp = _construct(MLP, {"in_features": n_in, "out_features": n_out, **kwargs})
            return mlp, {"kind": "spec", "spec": model_spec(mlp)}
        if isinstance(module, type):
            params = inspect.signature(module).parameters
            if cards and "cardinalities" in params:
                kwargs.setdefault("cardinalities", cards)
            if "in_features" in params and n_in is not None:
                kwargs.setdefault("in_features", n_in)
            if "out_features" in params and n_out is not None:
                kwargs.setdefault("out_features", n_out)
            return _construct(module, kwargs), {"kind": "class", "cls": module, "kwargs": kwargs}
        if kwargs:
            raise errors.ConfigError(
                f"module is an instance of {type(module).__name__}, so module__{next(iter(kwargs))} cannot be "
                "applied. Pass the class instead (module=MyNet, module__name=value), or drop the module__ arguments.")
        # A copy: the instance given as a parameter stays untouched, and every fit starts from it.
        return copy.deepcopy(module), {"kind": "instance"}

    def _adapt_to_module(self, module: nn.Module, X: np.ndarray) -> None:
        """Hook for subclasses that look at the module's output shape before training."""

    def _make_trainer(self, module: nn.Module, seed: int, device=None) -> Trainer:
        loss = copy.deepcopy(self.loss) if isinstance(self.loss, nn.Module) else self.loss
        metrics = self.metrics
        if metrics is None:
            metrics = []
        elif not isinstance(metrics, str):
            metrics = [m if isinstance(m, str) else copy.deepcopy(m) for m in metrics]
        return Trainer(module, loss=loss, optimizer=self.optimizer, lr=self.lr,
                       optimizer_kwargs=self._prefixed("optimizer__"), metrics=self._auto_metrics(metrics),
                       device=self.device if device is None else device, seed=seed,
                       callbacks=[copy.deepcopy(cb) for cb in (self.callbacks or ())],
                       progress=bool(self.verbose), log_every=max(int(self.verbose), 1) if self.verbose else 10)

    def _auto_metrics(self, metrics):
        return metrics

    # -- predicting -------------------------------------------------------------------
    def _check_fitted(self, what: str) -> None:
        if not self.__sklearn_is_fitted__():
            raise EstimatorNotFittedError(
                f"This {type(self).__name__} is not fitted yet, so {what} is not available. Call fit(X, y) "
                f"first, or load a trained model with {type(self).__name__}.from_run_dir(path).")

    def _forward(self, X) -> torch.Tensor:
        """The module's outputs for ``X`` (eval mode, no grad, on the CPU), through the engine."""
        self._check_fitted("predict")
        inputs = _tabular.predict_inputs(self, X)
        if inputs is None:
            inputs = _writable(validate_data(self, _tabular.dense(X), reset=False, dtype=np.float32))
        return self.trainer_.predict(inputs, batch_size=max(_py_int(self.batch_size), 1024))

    # -- persistence ------------------------------------------------------------------
    def __getstate__(self):
        state = dict(super().__getstate__())  # a copy: object.__getstate__ may return __dict__ itself
        if "trainer_" not in state:
            return state
        trainer = state.pop("trainer_")
        state.pop("module_")
        opt_structure, opt_blob = _persist.split_tensors(trainer.optimizer.state_dict())
        state["_fitted_blob"] = {
            "weights": _persist.module_to_bytes(trainer.model),
            "optimizer": opt_structure, "optimizer_tensors": opt_blob,
            "train_state": trainer.state.state_dict(),
            "callbacks": [cb.state_dict() for cb in trainer.callbacks if _user_callback(cb)],
            "device": str(trainer.device),
        }
        return state

    def __setstate__(self, state):
        blob = state.pop("_fitted_blob", None)
        super().__setstate__(state)
        if blob is None:
            return
        module = self._module_skeleton()
        _load_weights(module, _persist.bytes_to_tensors(blob["weights"]), "the pickled estimator")
        trainer = self._make_trainer(module, self._seed, device=_usable_device(blob["device"]))
        trainer.optimizer.load_state_dict(_persist.join_tensors(blob["optimizer"], blob["optimizer_tensors"]))
        trainer.state.load_state_dict(blob["train_state"])
        for cb, cb_state in zip([cb for cb in trainer.callbacks if _user_callback(cb)], blob["callbacks"]):
            cb.load_state_dict(cb_state)
        trainer.n_features_in = self._trainer_width()
        self.module_, self.trainer_ = trainer.model, trainer

    def _trainer_width(self) -> int | None:
        """The Trainer's input width: None when the inputs are numeric + categorical tensors."""
        tab = getattr(self, "tabular_", None)
        if tab is None:
            return self.n_features_in_
        return None if tab.cardinalities else tab.n_numeric_inputs

    def _module_skeleton(self) -> nn.Module:
        recipe = self._module_recipe
        if recipe["kind"] == "spec":
            return build_model(recipe["spec"])
        if recipe["kind"] == "class":
            return _construct(recipe["cls"], dict(recipe["kwargs"]))
        if not isinstance(self.module, nn.Module):
            raise errors.CheckpointError(
                "This estimator was fitted with a module instance, but its `module` parameter no longer holds "
                "one, so the architecture cannot be rebuilt. Set module= back to the instance it was fitted with.")
        return copy.deepcopy(self.module)

    def save(self, path) -> Path:
        """Write a fittorch run directory: ``model.safetensors`` + ``model.json`` (+ ``metrics.csv``).

        Load it back with ``from_run_dir(path)``; no pickle is involved.
        """
        self._check_fitted("save()")
        path = Path(path)
        meta = {"estimator": type(self).__name__, "task": self._task_name(), "n_features_in": self.n_features_in_,
                "params": _json_params(self.get_params(deep=False)), "sklearn_version": sklearn.__version__}
        if hasattr(self, "feature_names_in_"):
            meta["feature_names"] = self.feature_names_in_.tolist()
        meta["module_outputs"] = self._n_module_outputs()
        if getattr(self, "tabular_", None) is not None:
            meta["tabular"] = self.tabular_.to_dict()
        meta.update(self._save_metadata())
        weights = self.trainer_.save(path, metadata=meta)
        if len(self.history_):
            self.history_.to_csv(weights.parent / "metrics.csv")
        return weights

    @classmethod
    def from_run_dir(cls, path, module=None, **params):
        """A fitted estimator from a fittorch run directory (``model.safetensors`` + ``model.json``).

        The architecture is rebuilt from the JSON spec for built-in models; for your own
        network pass ``module=`` (a class with ``module__*`` arguments, or an instance). The
        result predicts at once, and ``partial_fit`` continues training (with a fresh optimizer).
        """
        from fittorch.serialization import load_state, read_metadata

        meta = read_metadata(path)
        saved = meta.get("params") or {}
        # The saved parameters (module__* included, so a custom class is rebuilt with the same
        # arguments); anything given here overrides them.
        kwargs = {k: v for k, v in saved.items() if (k in PARAMS and k != "module") or k.startswith(PREFIXES)}
        if "loss" not in kwargs and isinstance(meta.get("loss"), str):
            kwargs["loss"] = meta["loss"]
        kwargs.update(params)
        est = cls(module=module, **kwargs)
        est.tabular_ = TabularPreprocessor.from_dict(meta["tabular"], f"{path} model.json 'tabular'") \
            if meta.get("tabular") else None
        if module is None:
            if not meta.get("spec"):
                raise errors.CheckpointError(
                    f"The model in {path} is a {meta.get('class', 'custom model')} without a rebuildable spec. "
                    f"Pass its architecture: {cls.__name__}.from_run_dir(path, module=MyNet, module__...=...).")
            skeleton, recipe = build_model(meta["spec"]), {"kind": "spec", "spec": meta["spec"]}
        else:
            spec = meta.get("spec") or {}
            skeleton, recipe = est._build_module(spec.get("in_features", meta.get("n_features_in")),
                                                 spec.get("out_features", meta.get("module_outputs")))
        _load_weights(skeleton, load_state(path), str(path))
        est._restore_from_metadata(meta, skeleton)
        est._module_recipe, est._seed = recipe, int(est.seed) if est.seed is not None else 0
        est.trainer_ = est._make_trainer(skeleton, est._seed)
        est.module_ = est.trainer_.model
        est.trainer_.n_features_in = est._trainer_width()
        est.trainer_.state.status = "loaded"
        return est


def _construct(cls, kwargs: dict) -> nn.Module:
    try:
        return cls(**kwargs)
    except TypeError as exc:
        hint = ""
        try:
            accepted = [p for p in inspect.signature(cls).parameters if p not in ("args", "kwargs")]
            unknown = [k for k in kwargs if k not in accepted]
            if unknown:
                hint = (f" It takes {', '.join(accepted)}; module__{unknown[0]} is not one of them."
                        f"{errors.did_you_mean(unknown[0], accepted)}")
        except (TypeError, ValueError):
            pass
        raise errors.ModelError(
            f"Building the module {cls.__name__}(**{kwargs}) failed: {exc}.{hint} Pass the constructor's "
            "arguments as module__name=value.") from None


def _load_weights(module: nn.Module, state: dict, source: str) -> None:
    from fittorch.serialization import load_into

    load_into(module, state, source=source)


def _py_int(value):
    """numpy integers (e.g. from a parameter grid built with np.arange) as ints; anything else as is."""
    return int(value) if isinstance(value, np.integer) else value


def _writable(X: np.ndarray) -> np.ndarray:
    """C-contiguous and writable (torch warns on read-only arrays such as memmaps)."""
    if not X.flags.writeable or not X.flags.c_contiguous:
        X = np.array(X, order="C", copy=True)
    return X


def _user_callback(cb) -> bool:
    from fittorch.callbacks.progress import ProgressBar

    return not isinstance(cb, ProgressBar)


def _usable_device(device: str):
    if device.startswith("cuda") and not torch.cuda.is_available():
        warnings.warn(f"The estimator was pickled on {device}, which is not available here; using the CPU.",
                      RuntimeWarning, stacklevel=3)
        return "cpu"
    return device


def _json_params(params: dict) -> dict:
    out = {}
    for k, v in params.items():
        if isinstance(v, tuple):
            v = list(v)
        if v is None or isinstance(v, (str, int, float, bool)) or (
                isinstance(v, list) and all(isinstance(x, (str, int, float, bool)) for x in v)):
            out[k] = v
    return out
