"""Datasets and DataLoaders: the path for data that is not a pair of in-memory arrays."""

from __future__ import annotations

import itertools
import math

import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from .order import shard_order
from ..seeding import epoch_generator
from .convert import map_structure


class EpochSampler(Sampler):
    """Yields the seeded order of one epoch, from a given position (for exact resume).

    It is reset before each epoch (``set_epoch_order``), so one DataLoader, and with it
    its persistent worker processes, serves every epoch.
    """

    def __init__(self, n: int, order: torch.Tensor | None = None, start: int = 0):
        self.n, self.order, self.start = n, order, start

    def set_epoch_order(self, order: torch.Tensor | None, start: int = 0) -> None:
        self.order, self.start = order, start

    def __iter__(self):
        idx = range(self.n) if self.order is None else self.order.tolist()
        return iter(idx[self.start :] if self.start else idx)

    def __len__(self) -> int:
        return (self.n if self.order is None else len(self.order)) - self.start


def _seed_worker(worker_id: int) -> None:
    # Each worker gets torch's per-worker seed (base_seed + id); derive numpy/random from it
    # so augmentations that use them are reproducible too.
    import random

    import numpy as np

    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def split_batch(batch):
    """A DataLoader batch -> ``(inputs, target)``: the last element is the target."""
    if isinstance(batch, dict):
        for key in ("target", "y", "label", "labels"):
            if key in batch:
                rest = {k: v for k, v in batch.items() if k != key}
                return rest, batch[key]
        return batch, None
    if isinstance(batch, (tuple, list)):
        if len(batch) == 1:
            return (batch[0],), None
        if len(batch) == 2:  # (inputs, target); a dict of inputs becomes model(**inputs), as for arrays
            return (batch[0] if isinstance(batch[0], dict) else (batch[0],)), batch[1]
        return tuple(batch[:-1]), batch[-1]
    return (batch,), None


class LoaderData:
    """Wraps a map-style Dataset (batched by fittorch), an IterableDataset, or a ready DataLoader.

    A ready DataLoader is used exactly as given (its batch size, sampler, workers). For a
    Dataset, fittorch builds one DataLoader per (batch size, drop_last) and keeps it for
    the whole fit: ``num_workers`` worker processes (persistent between epochs), each
    seeded from ``(seed, epoch)``; ``pin_memory`` when the target device is CUDA.
    """

    kind = "loader"

    def __init__(self, data, *, num_workers: int = 0, pin_memory: bool = False,
                 target_dtype: torch.dtype | None = None, collate_fn=None):
        if collate_fn is not None and isinstance(data, DataLoader):
            from . import checks as validation

            raise validation.collate_needs_dataset(data, "train")
        self.loader = data if isinstance(data, DataLoader) else None
        self.dataset = data.dataset if isinstance(data, DataLoader) else data
        self.num_workers = num_workers
        self.pin_memory = pin_memory if self.loader is None else self.loader.pin_memory
        self.iterable = isinstance(self.dataset, IterableDataset)
        self.target_dtype = target_dtype
        self.feature_names = None
        # Items -> a batch. Our own loaders wrap it so a failure names the item shapes.
        self.collate_fn = CheckedCollate(collate_fn) if self.loader is None else self.loader.collate_fn
        self._worker_seed = 0
        self._generator = torch.Generator()
        self._loaders: dict = {}

    def __len__(self) -> int:
        return len(self.dataset)

    def num_batches(self, batch_size: int, drop_last: bool = False) -> int | None:
        if self.loader is not None:
            try:
                return len(self.loader)
            except TypeError:
                return None
        try:
            n = len(self.dataset)
        except TypeError:
            return None
        return n // batch_size if drop_last else math.ceil(n / batch_size)

    def epoch_order(self, seed: int, epoch: int, shuffle: bool, *, rank: int = 0, world_size: int = 1):
        if self.loader is not None:
            if hasattr(self.loader.sampler, "set_epoch"):
                self.loader.sampler.set_epoch(epoch)
            return None
        # Worker processes draw their seeds from this, so a given (seed, epoch) always
        # gives the same worker seeds: augmentations in workers stay reproducible.
        self._worker_seed = int(torch.randint(2**62, (1,), generator=epoch_generator(seed, epoch + 1_000_003)))
        if self.iterable:
            return None
        n = len(self.dataset)
        if not shuffle and world_size == 1:
            return None
        order = torch.randperm(n, generator=epoch_generator(seed, epoch)) if shuffle else torch.arange(n)
        return shard_order(order, rank, world_size) if world_size > 1 else order  # padded to equal shards

    def _own_loader(self, batch_size: int, drop_last: bool) -> DataLoader:
        key = (batch_size, drop_last)
        if key not in self._loaders:
            workers = {"num_workers": self.num_workers, "pin_memory": self.pin_memory, "collate_fn": self.collate_fn,
                       "worker_init_fn": _seed_worker, "generator": self._generator,
                       "persistent_workers": self.num_workers > 0}
            if self.iterable:
                loader = DataLoader(self.dataset, batch_size=batch_size, drop_last=drop_last, **workers)
            else:
                sampler = EpochSampler(len(self.dataset))
                loader = DataLoader(self.dataset, batch_size=batch_size, sampler=sampler, drop_last=drop_last,
                                    **workers)
            self._loaders[key] = loader
        return self._loaders[key]

    def batches(self, batch_size: int, order, *, start: int = 0, drop_last: bool = False, device=None,
                raw: bool = False):
        """Yield ``(inputs, target)``; targets are cast to the loss's dtype unless ``raw``."""
        if self.loader is not None:
            it = iter(self.loader)
            if start:
                it = itertools.islice(it, start, None)  # a ready DataLoader can only be skipped through
        else:
            loader = self._own_loader(batch_size, drop_last)
            self._generator.manual_seed(self._worker_seed)
            if self.iterable:
                it = iter(loader)
                if start:
                    it = itertools.islice(it, start, None)
            else:
                loader.sampler.set_epoch_order(order, start * batch_size)
                it = iter(loader)
        non_blocking = self.pin_memory
        cast = None if raw else self.target_dtype
        for batch in it:
            inputs, target = split_batch(batch)
            if device is not None:
                inputs = map_structure(lambda t: t.to(device, non_blocking=non_blocking), inputs)
                target = None if target is None else target.to(device, non_blocking=non_blocking)
            if cast is not None and isinstance(target, torch.Tensor) and target.dtype != cast \
                    and not (target.is_floating_point() and target.ndim > 1):  # soft targets stay floats
                target = target.to(cast)
            yield inputs, target


class CheckedCollate:
    """A collate function (torch's default unless given) whose failure is a fittorch DataError
    naming the items' shapes and suggesting ``collate_fn``. A plain class: workers can pickle it."""

    def __init__(self, fn=None):
        self.fn = fn
        self.custom = fn is not None

    def __call__(self, items):
        from torch.utils.data import default_collate

        try:
            return (self.fn or default_collate)(items)
        except (RuntimeError, TypeError, ValueError) as exc:
            from . import checks as validation

            raise validation.collate_failed(items, exc, custom=self.custom) from None


def is_loader_like(data) -> bool:
    return isinstance(data, (DataLoader, Dataset))
