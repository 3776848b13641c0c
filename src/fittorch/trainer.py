"""``Trainer``: wires a model, a loss, an optimizer and data into the loop.

The trainer resolves everything once (device, loss, optimizer, metrics, callbacks),
validates the data before any compute, and then hands over to ``loop.fit_loop``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence

import torch
from torch import nn

from . import validation
from .callbacks.base import Callback, overrides
from .data import InMemoryData, LoaderData, first_tensor, make_source
from .device import auto_num_threads, resolve_device
from .distributed import DistContext
from .errors import ConfigError, DataError, NotFittedError
from .history import History
from .losses import resolve_loss, target_dtype
from .loop import evaluate_source, fit_loop
from .metrics import MetricSet, OutputKind
from .optim import build_optimizer
from .seeding import seed_everything
from .state import TrainState
from .step import StepParts, forward


class Trainer:
    """Train, evaluate and predict with one model.

    >>> trainer = Trainer(model, loss="cross_entropy", optimizer="adam", lr=1e-3, metrics=["accuracy"])
    >>> history = trainer.fit((X_train, y_train), val=(X_val, y_val), epochs=100, batch_size=32)
    >>> trainer.evaluate((X_val, y_val))
    {'loss': 0.31, 'accuracy': 0.87}

    Args:
        model: the ``nn.Module`` to train. It is moved to ``device``.
        loss: a name (``cross_entropy``, ``nll``, ``bce``, ``bce_with_logits``, ``mse``, ``l1``,
            ``smooth_l1``, ``huber``), a torch loss module, or any ``callable(output, target)``.
        optimizer: a name (``sgd``, ``adam``, ``adamw``, ``rmsprop``, ``adagrad``), an optimizer
            instance, or a factory ``params -> optimizer``.
        lr: learning rate for a named optimizer (torch's default if omitted; 0.01 for sgd).
        optimizer_kwargs: extra arguments for a named optimizer, e.g. ``{"weight_decay": 1e-4}``.
        metrics: names (``accuracy``, ``mse``, ``mae``, ``r2``) or torchmetrics objects;
            ``"auto"`` picks accuracy for classification and r2 for regression.
        device: ``"auto"`` (CUDA, then MPS, then CPU), or any torch device string.
        seed: seeds torch/numpy/random at the start of a fresh run and the per-epoch data order.
        callbacks: :class:`fittorch.callbacks.Callback` objects, called in the documented order.
        precision: ``"fp32"``, ``"bf16"`` (autocast, CPU and CUDA) or ``"fp16"`` (CUDA, with loss scaling).
        accumulate_steps: micro-batches per optimizer step (gradient accumulation).
        nonfinite: ``"stop"`` (raise at the epoch end naming the step), ``"ignore"``.
        num_threads: CPU intra-op threads during fit/evaluate/predict: ``"auto"`` uses 1 for small
            models (faster: less synchronisation), an int sets it, ``None`` leaves torch's setting.
        progress: show a progress bar over epochs (plain log lines when not on a terminal).
        log_every: print a log line every this many epochs (0 for none).
        compile: ``True`` (or a dict of ``torch.compile`` arguments) compiles the model's forward and
            backward with ``torch.compile``; falls back to eager with a warning where unsupported.
        cuda_graphs: on CUDA, capture the whole train step of full-size batches in a CUDA graph and
            replay it (fp32, no accumulation); falls back to eager with a warning elsewhere.
    """

    def __init__(self, model: nn.Module, loss="cross_entropy", optimizer="adam", lr: float | None = None, *,
                 optimizer_kwargs: dict | None = None, metrics="auto", device="auto", seed: int = 0,
                 callbacks: Sequence[Callback] = (), precision: str = "fp32", accumulate_steps: int = 1,
                 nonfinite: str = "stop", num_threads: int | str | None = "auto", progress: bool = True,
                 log_every: int = 10, compile: bool | dict = False, cuda_graphs: bool = False):
        validation.check_model(model)
        validation.check_trainer_args(precision=precision, accumulate_steps=accumulate_steps, nonfinite=nonfinite)
        self.device = resolve_device(device)
        if precision == "fp16" and self.device.type != "cuda":
            raise ConfigError(f"precision='fp16' needs CUDA (device is {self.device}). Use 'bf16' on the CPU, or 'fp32'.")
        self.model = model.to(self.device)
        self.loss_fn, self.loss_info = resolve_loss(loss)
        if isinstance(self.loss_fn, nn.Module):
            self.loss_fn = self.loss_fn.to(self.device)
        self.optimizer = build_optimizer(optimizer, self.model, lr, optimizer_kwargs, self.device)
        self.metric_specs = metrics
        self.seed = int(seed)
        self.precision = precision
        self.accumulate_steps = accumulate_steps
        self.nonfinite = nonfinite
        self.num_threads = num_threads
        self.callbacks: list[Callback] = list(callbacks)
        if progress:
            from .callbacks.progress import ProgressBar

            self.callbacks.append(ProgressBar(log_every=log_every))
        self.state = TrainState()
        self.dist = DistContext()
        self.epoch_losses: list[torch.Tensor] = []  # this epoch's batch losses, on the device
        self.metric_set = MetricSet({}, OutputKind("regression"))
        self.output_kind: OutputKind | None = None
        self.n_features_in: int | None = None
        self.checkpoint_dir: str | None = None
        self.parts = StepParts(model=self.model, loss_fn=self.loss_fn, optimizer=self.optimizer,
                               autocast=self._autocast_factory(), scaler=self._make_scaler())
        if compile or cuda_graphs:  # opt-in accelerations; each warns and falls back where it can't apply
            from .accel import apply

            apply(self, compile=compile, cuda_graphs=cuda_graphs)

    # -- public API -------------------------------------------------------------------
    @property
    def history(self) -> History:
        return self.state.history

    def fit(self, train, val=None, *, epochs: int = 10, batch_size: int = 32, shuffle: bool = True,
            drop_last: bool = False, val_batch_size: int | None = None, resume=None) -> History:
        """Train for ``epochs`` more epochs (with ``resume``: up to ``epochs`` in total).

        ``train`` is an ``(X, y)`` pair, a Dataset or a DataLoader; ``val`` likewise, or None.
        Validation runs after every epoch, in eval mode, without gradients.
        """
        train_src = make_source(train, target_dtype=target_dtype(self.loss_info), role="train")
        val_src = None if val is None else make_source(val, target_dtype=target_dtype(self.loss_info), role="val")
        validation.check_fit_args(epochs=epochs, batch_size=batch_size, n_train=_len(train_src), drop_last=drop_last)
        validation.check_source(train_src, "training")
        if val_src is not None:
            validation.check_source(val_src, "validation")
        self._val_batch_size = val_batch_size
        was_training = self.model.training
        with self._threads():
            self._prepare(train_src, val_src)
            if isinstance(train_src, InMemoryData):
                train_src = train_src.to(self.device)
            if isinstance(val_src, InMemoryData):
                val_src = val_src.to(self.device)
            if resume is not None:
                self.resume(resume)
                self.state.max_epochs = epochs
            else:
                if self.state.global_step == 0 and self.state.epoch == 0 and self.state.batch_in_epoch == 0:
                    seed_everything(self.seed)
                self.state.max_epochs = self.state.epoch + epochs
            try:
                fit_loop(self, train_src, val_src, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
            finally:
                self.model.train(was_training)
        return self.history

    def evaluate(self, data, *, batch_size: int = 1024) -> dict:
        """Loss and metrics over ``data`` (an ``(X, y)`` pair, Dataset or DataLoader)."""
        self._check_fitted("evaluate")
        src = make_source(data, target_dtype=target_dtype(self.loss_info), role="evaluation")
        validation.check_source(src, "evaluation")
        self._check_features(src, "evaluate")
        if self.output_kind is not None:
            validation.check_class_range(src, self.output_kind, "evaluation")
        if isinstance(src, InMemoryData):
            src = src.to(self.device)
        with self._threads():
            return evaluate_source(self, src, batch_size=batch_size)

    @torch.no_grad()
    def predict(self, X, *, batch_size: int = 1024) -> torch.Tensor:
        """The model's raw outputs for ``X`` (eval mode, no grad), as a CPU tensor."""
        self._check_fitted("predict")
        src = make_source(X, role="predict", require_target=False)
        validation.check_source(src, "predict")
        self._check_features(src, "predict")
        if isinstance(src, InMemoryData):
            src = src.to(self.device)
        was_training = self.model.training
        self.model.eval()
        outputs = []
        try:
            with self._threads():
                for inputs, _ in src.batches(batch_size, None, **self.batch_kwargs(src)):
                    with self.parts.autocast():
                        outputs.append(forward(self.parts, inputs).float())
        finally:
            self.model.train(was_training)
        return torch.cat(outputs).cpu()

    def save(self, path: str | os.PathLike, *, metadata: dict | None = None):
        """Save the weights (safetensors) and a JSON description next to them."""
        from .serialization import save_model

        meta = {"loss": getattr(self.loss_info, "name", None), "n_features_in": self.n_features_in,
                "output_kind": vars(self.output_kind) if self.output_kind else None}
        meta.update(metadata or {})
        return save_model(self.model, path, metadata=meta)

    def load(self, path: str | os.PathLike) -> Trainer:
        """Load weights saved by :meth:`save` into this trainer's model."""
        from .serialization import load_into, load_state, read_metadata, unwrap

        load_into(unwrap(self.model), load_state(path, self.device), source=str(path))
        meta = read_metadata(path)
        self.n_features_in = meta.get("n_features_in", self.n_features_in)
        if meta.get("output_kind"):
            self.output_kind = OutputKind(**meta["output_kind"])
            self.metric_set = MetricSet.build(self._metric_names(self.output_kind), self.output_kind, self.device)
        self.state.status = "loaded"
        return self

    def resume(self, source) -> None:
        from .errors import CheckpointError

        raise CheckpointError("Resuming needs the checkpoint module, which this build does not include yet.")

    # -- helpers the loop uses ----------------------------------------------------------
    def eval_batch_size(self, batch_size: int) -> int:
        return self._val_batch_size or max(batch_size, 1024)

    def batch_kwargs(self, source) -> dict:
        return {"device": self.device} if isinstance(source, LoaderData) else {}

    def last_good_checkpoint_hint(self) -> str:
        if self.checkpoint_dir:
            return f"Resume from the last good checkpoint in {self.checkpoint_dir}."
        return ""

    # -- internals --------------------------------------------------------------------
    def _prepare(self, train_src, val_src) -> None:
        """Dry-run the model on a sample batch, check shapes/labels, build metrics and hooks."""
        batch = validation.sample_batch(train_src)
        if batch is not None:
            self.parts.kwargs_input = isinstance(batch[0], dict)
            self.output_kind = validation.dry_forward(self.parts, batch, self.loss_info, self.device)
            self.n_features_in = _n_features(batch[0])
        else:
            self.output_kind = validation._guess_kind(torch.zeros(1, 2), None, self.loss_info)
        validation.check_class_range(train_src, self.output_kind, "training")
        if val_src is not None:
            validation.check_class_range(val_src, self.output_kind, "validation")
            self._check_features(val_src, "fit (val)")
        self.metric_set = MetricSet.build(self._metric_names(self.output_kind), self.output_kind, self.device)
        self.parts.after_backward = tuple(cb for cb in self.callbacks if overrides(cb, "on_after_backward"))

    def _metric_names(self, kind: OutputKind):
        if self.metric_specs == "auto":
            return ["accuracy"] if kind.task in ("multiclass", "binary") else ["r2"]
        if isinstance(self.metric_specs, str):
            return [self.metric_specs]
        return list(self.metric_specs or [])

    def _check_fitted(self, what: str) -> None:
        if self.state.status == "created":
            raise NotFittedError(
                f"{what}() was called before fit(). Train first with trainer.fit(...), or load trained "
                "weights with trainer.load(path)."
            )

    def _check_features(self, src, what: str) -> None:
        if self.n_features_in is None or not isinstance(src, InMemoryData):
            return
        n = _n_features(src.inputs)
        if n is not None and n != self.n_features_in:
            raise DataError(
                f"{what}: the data has {n} features, but the model was trained on {self.n_features_in}. "
                "Pass the same columns, in the same order, as in training."
            )

    def _autocast_factory(self):
        if self.precision == "fp32":
            return contextlib.nullcontext
        dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
        device_type = self.device.type
        return lambda: torch.autocast(device_type=device_type, dtype=dtype)

    def _make_scaler(self):
        return torch.amp.GradScaler("cuda") if self.precision == "fp16" else None

    @contextlib.contextmanager
    def _threads(self):
        n = auto_num_threads(self.model, self.device) if self.num_threads == "auto" else self.num_threads
        previous = torch.get_num_threads()
        if n is not None and n != previous:
            torch.set_num_threads(int(n))
        try:
            yield
        finally:
            if n is not None and n != previous:
                torch.set_num_threads(previous)


def _len(src) -> int | None:
    try:
        return len(src)
    except TypeError:
        return None


def _n_features(inputs) -> int | None:
    x = first_tensor(inputs)
    if isinstance(inputs, (dict, tuple)) and len(inputs) > 1:
        return None
    return int(x.shape[-1]) if x.ndim == 2 else None


def fit(model: nn.Module, train, val=None, *, epochs: int = 10, batch_size: int = 32, shuffle: bool = True,
        drop_last: bool = False, **trainer_kwargs) -> Trainer:
    """One call: build a :class:`Trainer`, fit it, and return it (``.history``, ``.evaluate``, ``.predict``)."""
    trainer = Trainer(model, **trainer_kwargs)
    trainer.fit(train, val, epochs=epochs, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
    return trainer

