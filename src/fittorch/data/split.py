"""``val=0.2``: hold out a fraction of the training data, reproducibly from the seed.

The one split policy of fittorch: ``Trainer.fit(val=0.2)``, the scikit-learn estimators'
``val_split`` and the CLI's ``data.val_split`` / ``data.test_split`` all call
:func:`split_indices`. For class labels the split is stratified (every class keeps its share
on both sides), with scikit-learn's ``train_test_split`` and ``random_state`` = the seed.
There is no silent fallback to an unstratified split: a class with fewer than 2 samples, a
split too small for the number of classes, or one that would leave a class with no training
sample is refused, naming the classes and the fix.
"""

from __future__ import annotations

import numpy as np
import torch

from . import checks as validation
from .loader import LoaderData
from .memory import InMemoryData


def split_fraction(source, fraction: float, *, seed: int, stratify: bool, classes: list | None = None):
    """``(train_source, val_source)`` with ``fraction`` of the rows in validation."""
    if isinstance(source, InMemoryData):
        y = None
        if stratify and source.target is not None and not source.target.is_floating_point() \
                and source.target.ndim == 1:
            y = source.target.cpu().numpy()
        train_idx, val_idx = split_indices(len(source), fraction, seed=seed, y=y, classes=classes)
        train, val = source.take(torch.from_numpy(train_idx)), source.take(torch.from_numpy(val_idx))
        train.classes = val.classes = getattr(source, "classes", None)
        return train, val
    if isinstance(source, LoaderData) and source.loader is None and not source.iterable:
        from torch.utils.data import Subset

        train_idx, val_idx = split_indices(len(source), fraction, seed=seed)
        common = {"num_workers": source.num_workers, "pin_memory": source.pin_memory,
                  "target_dtype": source.target_dtype, "collate_fn": source.collate_fn.fn}
        return (LoaderData(Subset(source.dataset, train_idx.tolist()), **common),
                LoaderData(Subset(source.dataset, val_idx.tolist()), **common))
    raise validation.cannot_split(source, fraction)


def split_indices(n: int, fraction: float, *, seed: int, y: np.ndarray | None = None, classes: list | None = None,
                  words: dict = validation.SPLIT_WORDS) -> tuple[np.ndarray, np.ndarray]:
    """Sorted ``(kept, held_out)`` row positions of ``range(n)``, ``fraction`` of them held out.

    ``y``: class indices to stratify by (None: a plain seeded shuffle); ``classes`` names them in
    errors; ``words`` says how a refusal names the split (see ``checks.SPLIT_WORDS``).
    """
    from sklearn.model_selection import train_test_split

    if y is not None:
        validation.check_stratifiable(y, fraction, classes, words)
    try:
        train_idx, val_idx = train_test_split(np.arange(n), test_size=fraction, random_state=seed % (2**32),
                                              shuffle=True, stratify=y)
    except ValueError as exc:
        raise validation.split_failed(n, fraction, y, exc, words) from None
    if y is not None:
        validation.check_split_classes(y[train_idx], y, classes, words)
    return np.sort(train_idx), np.sort(val_idx)
