"""What the checks examine: the model, loss, optimizer and data, resolved once.

The user's model is never modified: every check that runs it works on a deep copy,
starting from the user's initial weights.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
from torch import nn

from .. import validation
from ..data import InMemoryData, LoaderData, first_tensor, make_source, map_structure
from ..device import resolve_device
from ..errors import ConfigError
from ..losses import LossInfo, resolve_loss, target_dtype


@dataclass
class DoctorSetup:
    model: nn.Module
    loss: object
    loss_fn: object
    loss_info: LossInfo | None
    optimizer: object
    lr: float | None
    optimizer_kwargs: dict
    batch_size: int
    seed: int
    device: torch.device
    standardize: bool | None
    train_raw: InMemoryData  # as given (for the data checks)
    val_raw: InMemoryData | None
    train: InMemoryData = None  # as the training will see it (standardized when standardize=True)
    val: InMemoryData | None = None
    notes: list = field(default_factory=list)
    output_kind: object = None  # set by the target check when the dry forward succeeds
    labels: list | None = None  # class (multilabel: label column) names in index order, for messages

    # -- construction -----------------------------------------------------------------
    @classmethod
    def build(cls, model, train, val, *, loss, optimizer, lr, optimizer_kwargs, batch_size, seed, device,
              standardize, max_rows: int, labels=None):
        validation.check_model(model)
        if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size < 1:
            raise ConfigError(f"batch_size={batch_size!r}; expected a positive integer such as 32.")
        loss_fn, info = resolve_loss(loss)
        notes = []
        tdtype = target_dtype(info)
        train_src = _in_memory(make_source(train, target_dtype=tdtype, role="train"), max_rows, "train", notes, tdtype)
        val_src = None
        if val is not None:
            val_src = _in_memory(make_source(val, target_dtype=tdtype, role="val"), max_rows, "val", notes, tdtype)
        if len(train_src) == 0:
            from ..errors import DataError

            raise DataError("The training data is empty (0 samples); the doctor has nothing to examine.")
        if isinstance(optimizer, torch.optim.Optimizer):  # bound to the user's model: rebuild it for each copy
            opt_cls, defaults = type(optimizer), dict(optimizer.defaults)
            lr = optimizer.param_groups[0]["lr"] if lr is None else lr
            optimizer = lambda params, **kw: opt_cls(params, **{**defaults, **kw})  # noqa: E731
        setup = cls(model=model, loss=loss, loss_fn=loss_fn, loss_info=info, optimizer=optimizer, lr=lr,
                    optimizer_kwargs=dict(optimizer_kwargs or {}), batch_size=batch_size, seed=int(seed),
                    device=resolve_device(device), standardize=standardize, train_raw=train_src,
                    val_raw=val_src, notes=notes, labels=None if labels is None else [str(v) for v in labels])
        setup.train, setup.val = setup._scaled(train_src, val_src)
        if setup.lr is None:
            setup.lr = float(setup.trainer().optimizer.param_groups[0]["lr"])
        return setup

    def _scaled(self, train, val):
        """Apply the standardization the training run would apply (mean/std of train only)."""
        X = self.features(train)
        if not self.standardize or X is None:
            return train, val
        mean, std = X.mean(0), X.std(0)
        std = torch.where(std > 0, std, torch.ones_like(std))

        def scale(src):
            return None if src is None else InMemoryData((self.features(src) - mean) / std, src.target)

        return scale(train), scale(val)

    # -- helpers for the checks ---------------------------------------------------------
    @staticmethod
    def features(src: InMemoryData | None) -> torch.Tensor | None:
        """The feature matrix, when the inputs are one 2-D float tensor (else None)."""
        if src is None or len(src.inputs) != 1 or isinstance(src.inputs, dict):
            return None
        x = src.inputs[0]
        return x if x.ndim == 2 and x.is_floating_point() else None

    @property
    def classification(self) -> bool:
        return self.loss_info is not None and self.loss_info.target == "class_index"

    def copy_model(self) -> nn.Module:
        return copy.deepcopy(self.model).to(self.device)

    def trainer(self, *, model: nn.Module | None = None, lr: float | None = None, callbacks=(), metrics=None,
                seed: int | None = None):
        """A quiet Trainer on a fresh copy of the model (the user's initial weights)."""
        from ..trainer import Trainer

        return Trainer(model if model is not None else self.copy_model(), loss=self.loss, optimizer=self.optimizer,
                       lr=self.lr if lr is None else lr, optimizer_kwargs=self.optimizer_kwargs,
                       metrics=metrics if metrics is not None else [], device=self.device,
                       seed=self.seed if seed is None else seed, callbacks=callbacks, nonfinite="ignore",
                       num_threads="auto", progress=False)

    def sample(self, n: int, *, source: str = "train", seed_offset: int = 0) -> InMemoryData:
        """``n`` rows drawn by a seeded permutation (stored order may be sorted by class)."""
        src = self.train if source == "train" else self.val
        n = min(n, len(src))
        g = torch.Generator().manual_seed(self.seed + seed_offset)
        idx = torch.randperm(len(src), generator=g)[:n]
        target = None if src.target is None else src.target[idx]
        return InMemoryData(map_structure(lambda t: t[idx], src.inputs), target)

    def on_device(self, src: InMemoryData):
        inputs = map_structure(lambda t: t.to(self.device), src.inputs)
        target = None if src.target is None else src.target.to(self.device)
        return inputs, target

    @staticmethod
    def forward(model, inputs):
        return model(**inputs) if isinstance(inputs, dict) else model(*inputs)

    def dry_forward(self, model, batch):
        from ..step import Step

        step = Step().bind(model=model, loss_fn=self.loss_fn, optimizers={}, kwargs_input=isinstance(batch[0], dict))
        from ..dry_run import dry_forward

        return dry_forward(step, batch, self.loss_info, self.device)

    def describe(self) -> dict:
        n_params = sum(p.numel() for p in self.model.parameters())
        opt = self.optimizer if isinstance(self.optimizer, str) else getattr(self.optimizer, "__name__", "custom")
        x = first_tensor(self.train_raw.inputs)
        d = {"model": f"{type(self.model).__name__} ({n_params:,} params)",
             "loss": self.loss if isinstance(self.loss, str) else type(self.loss).__name__,
             "optimizer": opt, "lr": self.lr, "batch_size": self.batch_size, "device": str(self.device),
             "train": "x".join(map(str, x.shape)),
             "val": "x".join(map(str, first_tensor(self.val_raw.inputs).shape)) if self.val_raw is not None else "none",
             "standardize": self.standardize, "seed": self.seed}
        if self.notes:
            d["notes"] = list(self.notes)
        return d


def _in_memory(src, max_rows: int, role: str, notes: list, tdtype) -> InMemoryData:
    """Datasets and DataLoaders: read the first ``max_rows`` samples into memory."""
    if not isinstance(src, LoaderData):
        return src
    inputs, targets, n = [], [], 0
    for x, y in src.batches(256, None):
        inputs.append(x)
        targets.append(y)
        n += len(first_tensor(x))
        if n >= max_rows:
            notes.append(f"{role}: examined the first {n} samples of the Dataset/DataLoader")
            break
    if not inputs:
        return InMemoryData(torch.zeros(0, 1), torch.zeros(0))
    if isinstance(inputs[0], dict):
        cat = {k: torch.cat([b[k] for b in inputs]) for k in inputs[0]}
    else:
        cat = tuple(torch.cat([b[i] for b in inputs]) for i in range(len(inputs[0])))
    target = None if targets[0] is None else torch.cat(targets)
    if target is not None and tdtype is not None and target.dtype != tdtype:
        target = target.to(tdtype)
    return InMemoryData(cat, target)
