"""``val=0.2``: hold out a fraction of the training data, reproducibly from the seed.

For classification the split is stratified (every class keeps its share on both sides),
with scikit-learn's ``train_test_split``. Splits that cannot be made, or that would leave
a class with no training sample, are refused with a clear message.
"""

from __future__ import annotations

import numpy as np
import torch

from .loader import LoaderData
from .memory import InMemoryData


def split_fraction(source, fraction: float, *, seed: int, stratify: bool, classes: list | None = None):
    """``(train_source, val_source)`` with ``fraction`` of the rows in validation."""
    from . import checks as validation

    if isinstance(source, InMemoryData):
        y = None
        if stratify and source.target is not None and not source.target.is_floating_point() \
                and source.target.ndim == 1:
            y = source.target.cpu().numpy()
        train_idx, val_idx = _split_indices(len(source), fraction, seed, y, classes)
        train, val = source.take(torch.from_numpy(train_idx)), source.take(torch.from_numpy(val_idx))
        train.classes = val.classes = getattr(source, "classes", None)
        return train, val
    if isinstance(source, LoaderData) and source.loader is None and not source.iterable:
        from torch.utils.data import Subset

        train_idx, val_idx = _split_indices(len(source), fraction, seed, None, None)
        common = {"num_workers": source.num_workers, "pin_memory": source.pin_memory,
                  "target_dtype": source.target_dtype, "collate_fn": source.collate_fn.fn}
        return (LoaderData(Subset(source.dataset, train_idx.tolist()), **common),
                LoaderData(Subset(source.dataset, val_idx.tolist()), **common))
    raise validation.cannot_split(source, fraction)


def _split_indices(n: int, fraction: float, seed: int, y: np.ndarray | None, classes: list | None):
    from sklearn.model_selection import train_test_split

    from . import checks as validation

    if y is not None:
        validation.check_stratifiable(y, fraction, classes)
    try:
        train_idx, val_idx = train_test_split(np.arange(n), test_size=fraction, random_state=seed % (2**32),
                                              shuffle=True, stratify=y)
    except ValueError as exc:
        raise validation.split_failed(n, fraction, y, exc) from None
    if y is not None:
        validation.check_split_classes(y[train_idx], y, classes)
    return np.sort(train_idx), np.sort(val_idx)
