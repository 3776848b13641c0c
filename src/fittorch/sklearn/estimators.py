"""``TorchClassifier`` and ``TorchRegressor``: how targets go in and outputs come out.

Everything else (parameters, training on the fittorch engine, pickling, run directories)
is shared, in ``fittorch/sklearn/base.py``.
"""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import ClassifierMixin, RegressorMixin
from sklearn.utils.multiclass import check_classification_targets, type_of_target
from sklearn.utils.validation import column_or_1d
from torch import nn

from fittorch import errors
from fittorch.sklearn.base import TorchEstimator

# How the classifier reads the module's output, by loss: softmax over C logits (cross_entropy,
# and nll, whose log-probabilities softmax renormalises exactly), or one logit / probability
# for two classes (bce_with_logits / bce).
_HEADS = {"bce_with_logits": "sigmoid", "bce": "probability"}


class TorchClassifier(ClassifierMixin, TorchEstimator):
    """A PyTorch classifier for scikit-learn, trained by :class:`fittorch.Trainer`.

    >>> from sklearn.pipeline import make_pipeline
    >>> from sklearn.preprocessing import StandardScaler
    >>> clf = make_pipeline(StandardScaler(), TorchClassifier(module__hidden=(32,), epochs=50))
    >>> clf.fit(X_train, y_train).score(X_test, y_test)

    Args:
        module: ``None`` for the built-in :class:`fittorch.MLP` (``hidden=(64,)``; in/out sizes from
            the data), an ``nn.Module`` class built with the ``module__name=value`` arguments (its
            ``in_features``/``out_features`` are filled in from the data when it takes them and they
            are not given), or an instance (copied at ``fit``; the fitted copy is ``module_``).
        loss: ``"cross_entropy"`` (C outputs, softmax), ``"nll"`` (log-probabilities),
            ``"bce_with_logits"`` or ``"bce"`` (two classes, one output), a torch loss, or a callable
            ``(output, class_indices)`` whose outputs are read as logits.
        optimizer: a name (``"adam"``, ``"sgd"``, ...), a ``torch.optim`` class or a factory
            ``params -> optimizer``; its arguments as ``optimizer__name=value``.
        lr, epochs, batch_size, shuffle: as in :meth:`fittorch.Trainer.fit`.
        val_split: fraction held out (stratified) for per-epoch validation in ``history_``; 0 for none.
        callbacks: :class:`fittorch.Callback` objects (copied at ``fit``; the copies are in ``trainer_``).
        metrics: per-epoch validation metrics (``"auto"``: accuracy). Only computed with ``val_split``.
        device: ``"auto"`` (CUDA, MPS, CPU) or a torch device string.
        seed: seeds the initial weights, the data order and the split; ``None`` draws a new one each fit.
        verbose: 0 silent, 1 a progress bar, N > 1 a log line every N epochs.
        preprocess: ``"auto"``: a DataFrame with text, bool or ``category`` columns or empty cells is
            encoded by a :class:`fittorch.tabular.TabularPreprocessor` (fitted on ``fit``'s rows, kept as
            ``tabular_``; unseen categories at predict time become "unknown"), other input takes sklearn's
            array path; ``False``: always the array path; ``True`` or a ``TabularPreprocessor`` (its
            settings): always tabular. Sparse matrices are made dense (small ones) or refused.

    Fitted attributes: ``module_``, ``trainer_``, ``history_``, ``classes_``, ``n_features_in_``,
    ``feature_names_in_`` (for DataFrames with string column names).
    """

    def __init__(self, module=None, *, loss="cross_entropy", optimizer="adam", lr=1e-3, epochs=100, batch_size=32,
                 shuffle=True, val_split=0.0, callbacks=None, metrics="auto", device="auto", seed=0, verbose=0,
                 preprocess="auto", **kwargs):
        super().__init__(module, loss=loss, optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size,
                         shuffle=shuffle, val_split=val_split, callbacks=callbacks, metrics=metrics, device=device,
                         seed=seed, verbose=verbose, preprocess=preprocess, **kwargs)

    def partial_fit(self, X, y, classes=None, *, epochs: int = 1):
        """Train ``epochs`` more epochs (one by default), keeping the weights and the optimizer state.

        On the first call it initialises like :meth:`fit`; pass ``classes`` (all labels) then if
        this first batch of data may not contain every class.
        """
        return self._partial_fit(X, y, epochs, classes=classes)

    def predict_proba(self, X) -> np.ndarray:
        """Class probabilities, shape ``(n_samples, n_classes)``, columns in ``classes_`` order."""
        out = self._forward(X).double()
        if self._output_head == "softmax":
            return torch.softmax(out.reshape(len(out), -1), dim=1).numpy()
        p1 = out.reshape(len(out), -1)[:, 0]
        p1 = torch.sigmoid(p1) if self._output_head == "sigmoid" else p1.clamp(0.0, 1.0)
        return torch.stack([1.0 - p1, p1], dim=1).numpy()

    def predict(self, X) -> np.ndarray:
        """The most probable class of each row, as labels from ``classes_``."""
        proba = self.predict_proba(X)
        return self.classes_[np.argmax(proba, axis=1)]

    # -- hooks for the shared base ------------------------------------------------------
    def _validate_fit(self, X, y, *, reset: bool, classes=None):
        X, y = self._validate_xy(X, y, reset=reset)
        y = _class_labels(y)
        if reset:
            labels = np.unique(y) if classes is None else np.unique(np.asarray(classes))
            if len(labels) < 2:
                raise errors.DataError(
                    f"y has only one class ({labels.tolist()}); a classifier needs at least 2 classes. "
                    "Check the split or filter that produced y.")
            head = _HEADS.get(_loss_name(self.loss), "softmax")
            if head != "softmax" and len(labels) != 2:
                raise errors.ConfigError(
                    f"loss={self.loss!r} is for two classes, but y has {len(labels)} ({labels.tolist()[:10]}). "
                    "Use loss='cross_entropy' for more than two classes.")
            self.classes_, self._output_head = labels, head
        elif classes is not None and not np.array_equal(np.unique(np.asarray(classes)), self.classes_):
            raise errors.DataError(
                f"partial_fit got classes={list(classes)}, but the estimator was set up with "
                f"{self.classes_.tolist()}. Pass the same classes on every call, or call fit() to start over.")
        unseen = ~np.isin(y, self.classes_)
        if unseen.any():
            raise errors.DataError(
                f"y holds label(s) {np.unique(y[unseen]).tolist()[:10]} that are not among the classes "
                f"{self.classes_.tolist()[:20]} the estimator was set up with. On the first partial_fit call, "
                "pass every label with classes=..., or call fit() on data with all classes.")
        return X, np.searchsorted(self.classes_, y)

    def _target(self, indices: np.ndarray) -> np.ndarray:
        if self._output_head == "softmax":
            return indices.astype(np.int64)
        return indices.astype(np.float32).reshape(-1, 1)

    def _n_module_outputs(self) -> int:
        return len(self.classes_) if self._output_head == "softmax" else 1

    def _adapt_to_module(self, module: nn.Module, X: np.ndarray) -> None:
        out = _dry_output(module, X)
        want = self._n_module_outputs()
        if out is not None and out.ndim == 2 and out.shape[1] != want:
            raise errors.ModelError(
                f"The module outputs {out.shape[1]} values per sample, but y has {len(self.classes_)} classes "
                f"and loss={self.loss!r} needs {want}. Make its last layer output {want} "
                "(or leave out_features unset so it is inferred).")

    def _task_name(self) -> str:
        """The task in fittorch's one vocabulary (fittorch.task.TASKS)."""
        return "binary" if len(self.classes_) == 2 else "multiclass"

    def _save_metadata(self) -> dict:
        return {"classes": self.classes_.tolist(), "output_head": self._output_head}

    def _restore_from_metadata(self, meta: dict, module: nn.Module) -> None:
        _restore_features(self, meta, module)
        self._output_head = meta.get("output_head") or _HEADS.get(_loss_name(self.loss), "softmax")
        classes = meta.get("classes")
        if classes is None:
            n_out = _out_features(meta, module)
            classes = list(range(n_out)) if self._output_head == "softmax" and n_out else [0, 1]
        self.classes_ = np.asarray(classes)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_label = False
        return tags


class TorchRegressor(RegressorMixin, TorchEstimator):
    """A PyTorch regressor for scikit-learn, trained by :class:`fittorch.Trainer`.

    ``y`` may be ``(n,)`` (predictions are ``(n,)``) or ``(n, k)`` (predictions ``(n, k)``).
    The module gets ``out_features = k`` (1 for a 1-D ``y``); a module that returns ``(n,)``
    for a 1-D ``y`` works too. Parameters are those of :class:`TorchClassifier`, with
    ``loss="mse"`` (or ``"l1"``, ``"smooth_l1"``, ``"huber"``, a torch loss, a callable) and
    ``metrics="auto"`` meaning R². Fitted attributes: ``module_``, ``trainer_``, ``history_``,
    ``n_outputs_``, ``n_features_in_``, ``feature_names_in_``.
    """

    def __init__(self, module=None, *, loss="mse", optimizer="adam", lr=1e-3, epochs=100, batch_size=32,
                 shuffle=True, val_split=0.0, callbacks=None, metrics="auto", device="auto", seed=0, verbose=0,
                 preprocess="auto", **kwargs):
        super().__init__(module, loss=loss, optimizer=optimizer, lr=lr, epochs=epochs, batch_size=batch_size,
                         shuffle=shuffle, val_split=val_split, callbacks=callbacks, metrics=metrics, device=device,
                         seed=seed, verbose=verbose, preprocess=preprocess, **kwargs)

    def partial_fit(self, X, y, *, epochs: int = 1):
        """Train ``epochs`` more epochs (one by default), keeping the weights and the optimizer state."""
        return self._partial_fit(X, y, epochs)

    def predict(self, X) -> np.ndarray:
        """Predictions as float64, shaped like the ``y`` given to ``fit``."""
        out = self._forward(X).double().numpy()
        return out.reshape(-1) if self._y_1d else out.reshape(len(out), self.n_outputs_)

    # -- hooks for the shared base ------------------------------------------------------
    def _validate_fit(self, X, y, *, reset: bool):
        X, y = self._validate_xy(X, y, reset=reset, y_numeric=True)
        y = np.asarray(y.toarray() if hasattr(y, "toarray") else y, dtype=np.float32)
        n_out = 1 if y.ndim == 1 else y.shape[1]
        if reset:
            self.n_outputs_, self._y_1d = n_out, y.ndim == 1
        elif (y.ndim == 1) != self._y_1d or n_out != self.n_outputs_:
            raise errors.DataError(
                f"y has shape {y.shape}, but the estimator was fitted on y of "
                f"{'shape (n,)' if self._y_1d else f'shape (n, {self.n_outputs_})'}. Pass y of the same shape, "
                "or call fit() to start over.")
        return X, y

    def _target(self, y: np.ndarray) -> np.ndarray:
        return y if (y.ndim == 2 or self._flat_output) else y.reshape(-1, 1)

    def _n_module_outputs(self) -> int:
        return self.n_outputs_

    def _adapt_to_module(self, module: nn.Module, X: np.ndarray) -> None:
        out = _dry_output(module, X)
        self._flat_output = bool(self._y_1d and out is not None and out.ndim == 1)

    def _task_name(self) -> str:
        return "regression"

    def _save_metadata(self) -> dict:
        return {"n_outputs": self.n_outputs_, "y_1d": self._y_1d, "flat_output": self._flat_output}

    def _restore_from_metadata(self, meta: dict, module: nn.Module) -> None:
        _restore_features(self, meta, module)
        self.n_outputs_ = int(meta.get("n_outputs") or _out_features(meta, module) or 1)
        self._y_1d = bool(meta.get("y_1d", self.n_outputs_ == 1))
        self._flat_output = bool(meta.get("flat_output", False))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.multi_output = True
        return tags


def _class_labels(y: np.ndarray) -> np.ndarray:
    """1-D class labels, refusing multilabel / multi-output targets with a clear message."""
    if y.ndim == 2 and y.shape[1] > 1:
        kind = type_of_target(y, input_name="y")
        raise errors.DataError(
            f"y has shape {y.shape} ({kind}); TorchClassifier predicts one label per sample. For several "
            "labels per sample, wrap it: sklearn.multioutput.MultiOutputClassifier(TorchClassifier(...)), "
            "or train a TorchRegressor with loss='bce_with_logits' on the 0/1 indicator matrix.")
    y = column_or_1d(y, warn=True)
    check_classification_targets(y)
    return y


def _loss_name(loss) -> str | None:
    from fittorch.losses import resolve_loss

    try:
        _, info = resolve_loss(loss)
    except errors.ConfigError:
        return None  # the Trainer reports it, with the full message
    return info.name if info is not None else None


def _dry_output(module: nn.Module, X: np.ndarray):
    """The module's output on two rows (eval mode, no grad), or None if it fails (the Trainer explains)."""
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            out = module(**{k: torch.from_numpy(v[:2]) for k, v in X.items()}) if isinstance(X, dict) \
                else module(torch.from_numpy(X[:2]))
        return out if isinstance(out, torch.Tensor) else None
    except Exception:  # noqa: BLE001 - the Trainer's dry run reports model/data mismatches properly
        return None
    finally:
        module.train(was_training)


def _linears(module: nn.Module) -> list[nn.Linear]:
    return [m for m in module.modules() if isinstance(m, nn.Linear)]


def _out_features(meta: dict, module: nn.Module) -> int | None:
    out = (meta.get("spec") or {}).get("out_features")
    if out is None and _linears(module):
        out = _linears(module)[-1].out_features
    return out


def _restore_features(est, meta: dict, module: nn.Module) -> None:
    n_in = meta.get("n_features_in") or (meta.get("spec") or {}).get("in_features")
    if n_in is None and _linears(module):
        n_in = _linears(module)[0].in_features
    if n_in is None:
        raise errors.CheckpointError(
            "The run directory does not record the number of input features (n_features_in in model.json), "
            "and the module has no Linear layer to read it from. Re-save the model with fittorch.")
    est.n_features_in_ = int(n_in)
    if meta.get("feature_names"):
        est.feature_names_in_ = np.asarray(meta["feature_names"], dtype=object)
