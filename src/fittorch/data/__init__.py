"""Data in: every form a user passes becomes an :class:`InMemoryData`, a :class:`LoaderData`
or a :class:`StreamData`.

All three expose the same small interface the loop uses: ``num_batches``, ``epoch_order``
and ``batches``. ``make_source`` builds one source; ``prepare_fit`` builds the training and
validation sources of a fit (label encoding, ``val=0.2`` splits, feature names).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .convert import feature_names_of, first_tensor, is_frame, map_structure, to_numpy, to_tensor
from ..task import label_task
from .labels import encode, fit_classes, is_identity
from .loader import LoaderData, is_loader_like
from .memory import InMemoryData
from .streaming import StreamData, stream_file

__all__ = ["InMemoryData", "LoaderData", "StreamData", "FitData", "make_source", "prepare_fit", "stream_file",
           "to_tensor", "first_tensor", "map_structure"]


def _inputs_to_tensors(X, name: str):
    if isinstance(X, dict):
        return {k: to_tensor(v, name=f"{name}[{k!r}]") for k, v in X.items()}
    if isinstance(X, tuple):
        return tuple(to_tensor(v, name=f"{name}[{i}]") for i, v in enumerate(X))
    return to_tensor(X, name=name)


def _input_names(X):
    if is_frame(X):
        return feature_names_of(X)
    if isinstance(X, dict) and len(X) == 1:
        return feature_names_of(next(iter(X.values())))
    if isinstance(X, tuple) and len(X) == 1:
        return feature_names_of(X[0])
    return None


def split_pair(data, role: str, require_target: bool):
    """``(X, y)`` of an in-memory pair. Predict takes inputs only: there a tuple is several inputs."""
    from . import checks as validation

    if not require_target:
        return data, None
    if isinstance(data, tuple) and len(data) == 2:
        return data
    raise validation.not_a_pair(data, role)


def make_source(data, *, target_dtype: torch.dtype | None = None, role: str = "train", require_target: bool = True,
                loss_info=None, classes: list | None = None, fit_labels: bool = False, num_workers: int = 0,
                device: torch.device | None = None, task: str | None = None, collate_fn=None):
    """Build the data source of one role ("train", "val", "evaluation", "predict").

    In-memory targets are checked against the loss (``loss_info``) on the host, then
    encoded with ``classes`` (or, with ``fit_labels``, with classes found here). The
    classes used end up in ``source.classes``.
    """
    from . import checks as validation

    if isinstance(data, StreamData):
        data.target_dtype = data.target_dtype or target_dtype
        return data
    if isinstance(data, (InMemoryData, LoaderData)):
        return data
    if is_loader_like(data):
        return LoaderData(data, num_workers=num_workers, target_dtype=target_dtype, collate_fn=collate_fn,
                          pin_memory=device is not None and device.type == "cuda")
    if collate_fn is not None and role == "train":
        raise validation.collate_needs_dataset(data, role)
    X, y = split_pair(data, role, require_target)
    x_name = "X" if role == "train" else f"X ({role})"
    validation.check_input_structure(X, x_name)
    inputs = _inputs_to_tensors(X, x_name)
    target = None
    if y is not None:
        y_name = "y" if role == "train" else f"y ({role})"
        y_np = to_numpy(y, name=y_name)
        task = label_task(loss_info, task)
        if target_dtype == torch.long and y_np.ndim == 2 and y_np.shape[1] > 1 and y_np.dtype.kind == "f":
            target_dtype = None  # probability / one-hot targets for cross_entropy: kept as floats
        multi_column = y_np.ndim == 2 and y_np.shape[1] > 1  # multi-label indicators, or soft targets
        if fit_labels and multi_column and is_frame(y):
            classes = [str(c) for c in y.columns]  # each column's label: predict(labels=True) names them
        elif fit_labels and (task is not None or loss_info is None):
            classes = fit_classes(y_np, task, role)
        if classes is not None and not is_identity(classes) and not multi_column:
            y_np = encode(y_np, classes, role)
        else:
            validation.check_target(y_np, loss_info, y_name)
        target = to_tensor(y, name=y_name) if isinstance(y, torch.Tensor) and y_np.dtype.kind in "biuf" \
            else to_tensor(y_np, name=y_name)
        if target_dtype is not None and target.dtype != target_dtype:
            target = _cast_target(target, target_dtype, y_name)
    validation.check_lengths(inputs, target, role)
    source = InMemoryData(inputs, target, feature_names=_input_names(X))
    source.classes = classes
    return source


@dataclass
class FitData:
    train: object
    val: object | None
    classes: list | None
    feature_names: list[str] | None


def prepare_fit(train, val, *, loss_info, seed: int, classes: list | None = None, num_workers: int = 0,
                device: torch.device | None = None, task: str | None = None, collate_fn=None) -> FitData:
    """The training and validation sources of one fit.

    ``val`` is a pair / Dataset / DataLoader, None, or a fraction such as ``0.2`` of the
    training data, split reproducibly from ``seed`` (stratified for classification).
    ``classes``: a mapping kept from an earlier fit or load; otherwise it is learnt here.
    """
    from . import checks as validation
    from ..losses import target_dtype
    from .split import split_fraction

    dtype = target_dtype(loss_info)
    common = {"target_dtype": dtype, "loss_info": loss_info, "num_workers": num_workers, "device": device,
              "task": task, "collate_fn": collate_fn}
    train_src = make_source(train, role="train", classes=classes, fit_labels=classes is None, **common)
    classes = getattr(train_src, "classes", classes)
    if validation.is_fraction_arg(val):
        validation.check_val_fraction(val)
        train_src, val_src = split_fraction(train_src, val, seed=seed,
                                            stratify=label_task(loss_info, task) is not None or classes is not None,
                                            classes=classes)
    else:
        val_src = None if val is None else make_source(val, role="val", classes=classes, **common)
    return FitData(train_src, val_src, classes, getattr(train_src, "feature_names", None))


def _cast_target(target: torch.Tensor, dtype: torch.dtype, name: str) -> torch.Tensor:
    """Cast targets to what the loss needs, refusing casts that would change values."""
    from . import checks as validation

    if dtype == torch.long and target.is_floating_point():
        validation.check_integral_targets(target, name)
        return target.long()
    return target.to(dtype)
