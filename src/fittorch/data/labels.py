"""Class labels: any labels in, class indices 0..C-1 to the loss, the original labels out.

``fit_classes`` finds the classes of the training targets (sorted, like sklearn's
``LabelEncoder``); ``encode`` maps targets to indices with that mapping (an unknown label
is refused by name); ``decode`` turns predicted indices back into the original labels.
Labels that are already ``0..C-1`` pass through unchanged.
"""

from __future__ import annotations

import numpy as np
import torch


def _is_discrete(y: np.ndarray) -> bool:
    if y.dtype.kind in "biuOUS":
        return True
    if y.dtype.kind == "f":
        finite = np.isfinite(y)
        return bool(finite.all()) and bool(np.equal(np.mod(y, 1), 0).all())
    return False


def _to_python(values) -> list:
    out = []
    for v in values:
        out.append(v.item() if hasattr(v, "item") else v)
    return out


def fit_classes(y: np.ndarray, task: str | None, role: str = "training") -> list | None:
    """The sorted distinct labels of ``y`` (JSON-able), or None when ``y`` is not labels.

    Text labels always count as labels; numbers only for a classification loss.
    """
    from . import checks as validation

    if y.ndim != 1 and not (y.ndim == 2 and y.shape[1] == 1 and task == "binary"):
        return None
    y = y.reshape(-1)
    text = y.dtype.kind in "OUS"
    if task is None and not text:
        return None
    if not _is_discrete(y):
        return None  # float targets: soft labels for bce, or refused later for cross_entropy
    if y.dtype.kind == "O":
        validation.check_object_labels(y, role)
    classes = _to_python(np.unique(y))
    if task == "binary" and len(classes) > 2:
        validation.too_many_binary_classes(classes, role)
    return classes


def is_identity(classes: list | None) -> bool:
    """True when the labels already are the class indices 0..C-1 (or False/True)."""
    return classes is not None and all(
        not isinstance(c, str) and float(c) == i for i, c in enumerate(classes)
    )


def encode(y: np.ndarray, classes: list, role: str) -> np.ndarray:
    """``y`` as int64 class indices under ``classes``; an unknown label raises DataError."""
    import pandas as pd

    from . import checks as validation

    shape = y.shape
    flat = y.reshape(-1)
    index = pd.Index(classes)
    codes = index.get_indexer(flat)
    if (codes < 0).any():
        validation.unknown_labels(flat[codes < 0], classes, role)
    return codes.astype(np.int64).reshape(shape)


def predicted_indices(output: torch.Tensor, kind, n_classes: int | None) -> torch.Tensor:
    """Class indices from raw model outputs, for the task the model was trained on.

    Multilabel: ``[N, C]`` 0/1 indicators (a label is on when its probability is > 0.5).
    """
    if kind is not None and kind.task == "multilabel":
        return (output > (0.0 if kind.logits else 0.5)).long()
    if kind is not None and kind.task == "binary":
        flat = output.reshape(len(output), -1)[:, 0] if output.ndim > 1 else output
        return (flat > (0.0 if kind.logits else 0.5)).long()
    if output.ndim < 2:
        return output.round().long()
    if n_classes:
        output = output[:, :n_classes]  # a model wider than the classes seen: only those can be named
    return output.argmax(dim=1)


def decode(indices: torch.Tensor, classes: list | None) -> np.ndarray:
    """Class indices to the original labels (a numpy array).

    Multi-label ``[N, C]`` indicators stay as they are, or, when the label columns are named
    (a DataFrame ``y``), become each row's list of label names.
    """
    idx = indices.cpu().numpy()
    if idx.ndim == 2:
        if classes is None or is_identity(classes):
            return idx
        return [[c for c, on in zip(classes, row) if on] for row in idx]
    if classes is None or is_identity(classes):
        return idx if classes is None or not all(isinstance(c, bool) for c in classes) else idx.astype(bool)
    return np.asarray(classes)[idx]
