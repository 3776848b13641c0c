"""``Trainer``: wires a model, a loss, an optimizer and data into the loop.

The trainer resolves everything once (device, loss, optimizer, metrics, callbacks),
validates the data before any compute, and then hands over to ``loop.fit_loop``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import torch
from torch import nn

from . import dry_run, validation
from .callbacks.base import Callback, overrides
from .callbacks.checkpoint import check_unused, checkpoint_dir_of, last_good_hint
from .data import InMemoryData, first_tensor, make_source, prepare_fit
from .data.checks import check_num_workers
from .device import resolve_device, torch_threads
from .display import EvalResult
from . import distributed
from .errors import ConfigError, NotFittedError
from .history import History
from .losses import resolve_loss, target_dtype
from .loop import evaluate_source, fit_loop
from .loop import LoopContext
from .metrics import MetricSet
from .optim import build_optimizers
from .precision import autocast_factory, check_precision, make_scaler
from .outputs import check_output_key, concat, label_key_for, select, to_cpu_structure
from .seeding import seed_everything
from .signals import StopOnSignal
from .state import TrainState
from .step import Step, check_step, runs_model_parts
from .task import OutputKind, check_task, infer_kind, metric_defaults, require_classification


class Trainer:
    """Train, evaluate and predict with one model.

    >>> trainer = Trainer(model, loss="cross_entropy", optimizer="adam", lr=1e-3, metrics=["accuracy"])
    >>> history = trainer.fit((X_train, y_train), val=(X_val, y_val), epochs=100, batch_size=32)
    >>> trainer.evaluate((X_val, y_val))
    {'loss': 0.31, 'accuracy': 0.87}

    Args:
        model: the ``nn.Module`` to train. It is moved to ``device``.
        loss: a name (``cross_entropy``, ``nll``, ``bce``, ``bce_with_logits``, ``mse``, ``l1``,
            ``smooth_l1``, ``huber``), a torch loss module, any ``callable(output, target)`` (it gets
            the output as the model returned it: tensor, tuple, dict, dataclass), or ``None`` when
            the model computes its own loss (``output["loss"]``; the target is passed to ``forward``
            as ``labels=`` when it accepts it). See docs/custom-training.md.
        optimizer: a name (``sgd``, ``adam``, ``adamw``, ``rmsprop``, ``adagrad``), an optimizer
            instance, a factory ``params -> optimizer``, a dict of them by name for a custom
            step (``{"generator": ..., "discriminator": ...}``; see :func:`fittorch.optim.build_optimizers`),
            or ``None`` for a trainer that only evaluates and predicts.
        lr: learning rate for a named optimizer (torch's default if omitted; 0.01 for sgd).
        optimizer_kwargs: extra arguments for a named optimizer, e.g. ``{"weight_decay": 1e-4}``.
        metrics: names (``accuracy``, ``mse``, ``mae``, ``r2``) or torchmetrics objects;
            ``"auto"`` picks accuracy for classification and r2 for regression.
        device: ``"auto"`` (CUDA, then MPS, then CPU), or any torch device string.
        seed: seeds torch/numpy/random at the start of a fresh run and the per-epoch data order.
        callbacks: :class:`fittorch.callbacks.Callback` objects, called in the documented order.
        precision: ``"fp32"``, ``"bf16"`` (autocast, CPU and CUDA) or ``"fp16"`` (CUDA, with loss scaling).
        accumulate_steps: micro-batches per optimizer step (gradient accumulation).
        nonfinite: ``"stop"`` (raise at the epoch end naming the step; non-finite gradients are caught
            through the weights they poison), ``"skip"`` (skip a bad step, weights unchanged; one host
            sync per step), ``"ignore"``. See :class:`fittorch.callbacks.NonFiniteGuard`.
        num_threads: CPU intra-op threads during fit/evaluate/predict: ``"auto"`` uses 1 for small
            models (faster: less synchronisation), an int sets it, ``None`` leaves torch's setting.
        progress: show a progress bar over epochs (plain log lines when not on a terminal).
        log_every: print a log line every this many epochs (0 for none).
        checkpoint_dir: write full checkpoints here (at every epoch end, every
            ``checkpoint_every_steps`` optimizer steps, and when a signal stops training);
            resume with ``fit(..., resume="last")``. See docs/checkpoints.md.
        checkpoint_every_steps: also checkpoint every this many optimizer steps (0: epoch ends only).
        keep_last: keep this many newest checkpoints, plus the best one by ``monitor``.
        monitor: the history column that picks the best checkpoint (default ``val_loss`` with
            validation data, else ``train_loss``).
        compile: ``True`` (or a dict of ``torch.compile`` arguments) compiles the model's forward and
            backward with ``torch.compile``; falls back to eager with a warning where unsupported.
        cuda_graphs: on CUDA, capture the whole train step of full-size batches in a CUDA graph and
            replay it (fp32, no accumulation); falls back to eager with a warning elsewhere.
        task: ``"binary"``, ``"multiclass"``, ``"multilabel"`` or ``"regression"``; inferred from the
            loss and a dry forward when omitted (see :mod:`fittorch.task`).
        step: a :class:`fittorch.Step` (subclass) instance: what one training step does.
        output_key: which tensor of a structured output metrics and ``predict`` use (default: a
            dict's ``"logits"``, a tuple's first element; see :mod:`fittorch.outputs`).
    """

    def __init__(self, model: nn.Module, loss="cross_entropy", optimizer="adam", lr: float | None = None, *,
                 optimizer_kwargs: dict | None = None, metrics="auto", device="auto", seed: int = 0,
                 callbacks: Sequence[Callback] = (), precision: str = "fp32", accumulate_steps: int = 1,
                 nonfinite: str = "stop", num_threads: int | str | None = "auto", progress: bool = True,
                 log_every: int = 10, checkpoint_dir: str | os.PathLike | None = None,
                 checkpoint_every_steps: int = 0, keep_last: int = 2, monitor: str | None = None,
                 compile: bool | dict = False, cuda_graphs: bool = False, task: str | None = None,
                 step: Step | None = None, output_key: str | int | None = None):
        validation.check_model(model)
        validation.check_trainer_args(precision=precision, accumulate_steps=accumulate_steps, nonfinite=nonfinite)
        check_task(task)
        check_output_key(output_key)
        check_step(step)
        self.dist = distributed.setup(resolve_device(device))  # torchrun's env: process group, rank's device
        self.device = self.dist.device
        check_precision(precision, self.device)
        self.model = model.to(self.device)
        self.loss_fn, self.loss_info = resolve_loss(loss)
        if isinstance(self.loss_fn, nn.Module):
            self.loss_fn = self.loss_fn.to(self.device)
        # optimizer=None: an inference-only trainer (evaluate, predict). Building a torch optimizer
        # imports torch._dynamo (about 1 s in a fresh process), which inference never needs.
        self.optimizers = {} if optimizer is None else build_optimizers(optimizer, self.model, lr,
                                                                        optimizer_kwargs, self.device)
        self.optimizer = next(iter(self.optimizers.values()), None)  # the first (usually the only one)
        self.task, self.output_key = task, output_key
        self.metric_specs = metrics
        self.seed = int(seed)
        self.precision = precision
        self.accumulate_steps = accumulate_steps
        self.nonfinite = nonfinite
        self.num_threads = num_threads
        self.callbacks: list[Callback] = list(callbacks)
        if nonfinite != "ignore" and not any(type(cb).__name__ == "NonFiniteGuard" for cb in self.callbacks):
            from .callbacks.guard import NonFiniteGuard

            self.callbacks.append(NonFiniteGuard())
        if progress:
            from .callbacks.progress import ProgressBar

            self.callbacks.append(ProgressBar(log_every=log_every))
        self.state = TrainState()
        self.epoch_losses: list[torch.Tensor] = []  # this epoch's batch losses, on the device (one list object)
        self.metric_set = MetricSet({}, OutputKind("regression"))
        self.output_kind: OutputKind | None = None
        self.n_features_in: int | None = None
        self.feature_names: list[str] | None = None  # DataFrame column names seen at fit
        self.preprocess = None  # a fittorch.tabular.TabularPreprocessor given to fit(preprocess=...)
        self.classes: list | None = None  # the original class labels; index i is class i
        self.fit_params: dict = {}  # this fit's batch_size, shuffle, drop_last, n_train, n_batches
        self.checkpoint_path = None  # the newest checkpoint written or resumed from
        self.stop_signal: int | None = None  # set by fittorch.signals when SIGTERM/SIGINT stopped fit
        self.checkpoint_dir = checkpoint_dir_of(self.callbacks, checkpoint_dir, every_steps=checkpoint_every_steps,
                                                keep_last=keep_last, monitor=monitor)
        self.scaler = make_scaler(precision)
        self._step_model, self._graphed, self._dist_model = self.model, None, None
        if compile or cuda_graphs:  # opt-in accelerations; each warns and falls back where it can't apply
            from .accel import accelerate

            self._step_model, self._graphed = accelerate(self, compile=compile, cuda_graphs=cuda_graphs)
        self.step = step if step is not None else Step()
        self._val_batch_size = None
        self._bind_step(kwargs_input=False)

    # -- public API -------------------------------------------------------------------
    @property
    def history(self) -> History:
        return self.state.history

    def fit(self, train, val=None, *, epochs: int = 10, batch_size: int = 32, shuffle: bool = True,
            drop_last: bool = False, val_batch_size: int | None = None, resume=None, num_workers: int = 0,
            collate_fn=None, val_every_steps: int = 0, preprocess=None) -> History:
        """Train for ``epochs`` more epochs (with ``resume``: up to ``epochs`` in total).

        ``train`` is an ``(X, y)`` pair, a Dataset, a DataLoader or ``fittorch.data.stream_file(...)``;
        ``val`` likewise, None, or a fraction such as ``0.2`` held out from ``train`` (seeded,
        stratified for classification). Text or non-contiguous class labels are encoded to
        0..C-1; ``trainer.classes`` keeps the originals. ``num_workers``: DataLoader worker
        processes for a Dataset. ``collate_fn``: how a Dataset's items become a batch (e.g. padding
        variable-length sequences); a mid-epoch resume stays exact. Validation runs after every
        epoch, in eval mode, without gradients, and also every ``val_every_steps`` optimizer steps
        when set (those results go to ``trainer.state.step_validations``).
        ``preprocess``: a :class:`fittorch.tabular.TabularPreprocessor` (or True) for raw ``(DataFrame, y)``
        pairs (text, gaps); fitted on ``train`` unless already fitted, then used by evaluate/predict.
        """
        if preprocess is not None:  # raw tables: fittorch.tabular encodes them (docs/data.md)
            from .tabular import as_preprocessor, encode_pair

            self.preprocess = as_preprocessor(preprocess)
            train, val = encode_pair(self.preprocess, train, fit=True), encode_pair(self.preprocess, val)
        check_num_workers(num_workers)
        validation.check_val_every_steps(val_every_steps)
        if self.optimizer is None:
            raise ConfigError("This Trainer was built with optimizer=None, for evaluate/predict only, so it "
                              "cannot fit. Pass an optimizer, e.g. Trainer(model, optimizer='adam').")
        keep = self.classes if self.state.status != "created" else None
        fd = prepare_fit(train, val, loss_info=self.loss_info, seed=self.seed, classes=keep,
                         num_workers=num_workers, device=self.device, task=self.task, collate_fn=collate_fn)
        train_src, val_src = fd.train, fd.val
        if self.state.status != "created" and self.feature_names is not None:
            validation.check_features(train_src, None, self.feature_names, "fit")
        self.classes, self.feature_names = fd.classes, fd.feature_names or self.feature_names
        train_src = self.dist.prepare_source(train_src, role="train", seed=self.seed)  # DDP: shard / DistributedSampler
        val_src = None if val_src is None else self.dist.prepare_source(val_src, role="val", seed=self.seed)
        validation.check_fit_args(epochs=epochs, batch_size=batch_size, n_train=_len(train_src), drop_last=drop_last)
        validation.check_source(train_src, "training")
        if val_src is not None:
            validation.check_source(val_src, "validation")
        self._val_batch_size = val_batch_size
        # Per-step schedules read these; checkpoints record them and check them on resume.
        self.fit_params = {"batch_size": batch_size, "shuffle": shuffle, "drop_last": drop_last,
                           "n_train": _len(train_src), "n_batches": train_src.num_batches(batch_size, drop_last)}
        was_training = self.model.training
        with torch_threads(self.num_threads, self.model, self.device):
            self._prepare(train_src, val_src)
            if isinstance(train_src, InMemoryData):
                train_src = train_src.to(self.device)
            if isinstance(val_src, InMemoryData):
                val_src = val_src.to(self.device)
            fresh = self.state.global_step == 0 and self.state.epoch == 0 and self.state.batch_in_epoch == 0
            if resume is not None and self.resume(resume):
                self.state.max_epochs = epochs
            else:
                if fresh:
                    check_unused(self.checkpoint_dir)
                    seed_everything(self.dist.rank_seed(self.seed))
                self.state.max_epochs = self.state.epoch + epochs
            try:
                ctx = self._loop_context(batch_size, val_every_steps)
                with StopOnSignal(self, enabled=self.checkpoint_dir is not None):
                    fit_loop(ctx, train_src, val_src, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
            except Exception as exc:
                self.dist.record_error(exc)  # under torchrun: the job summary names this rank's error
                raise
            finally:
                self.model.train(was_training)
        return self.history

    def evaluate(self, data, *, batch_size: int = 1024) -> dict:
        """Loss and metrics over ``data`` (an ``(X, y)`` pair, Dataset or DataLoader)."""
        self._check_fitted("evaluate")
        if self.preprocess is not None:
            from .tabular import encode_pair

            data = encode_pair(self.preprocess, data)
        src = make_source(data, target_dtype=target_dtype(self.loss_info), role="evaluation",
                          loss_info=self.loss_info, classes=self.classes, device=self.device)
        src = self.dist.prepare_source(src, role="evaluation", seed=self.seed)
        validation.check_source(src, "evaluation")
        self._check_features(src, "evaluate")
        if self.output_kind is not None:
            validation.check_class_range(src, self.output_kind, "evaluation", self.classes)
        if isinstance(src, InMemoryData):
            src = src.to(self.device)
        with torch_threads(self.num_threads, self.model, self.device):
            # a plain dict of floats that shows as a table in Jupyter
            return EvalResult(evaluate_source(self._loop_context(batch_size), src, batch_size=batch_size))

    @torch.no_grad()
    def predict(self, X, *, batch_size: int = 1024, labels: bool = False, structure: bool = False):
        """The model's outputs for ``X`` (eval mode, no grad), as a CPU tensor.

        For a structured output (tuple, dict, dataclass) this is the tensor the ``output_key``
        rule selects; ``structure=True`` returns the whole structure instead (tensors on the CPU).
        With ``labels=True``, the predicted class labels: a numpy array of the original labels
        (``"cat"``/``"dog"``, ``3``/``7``/``9``, ...), or for a multilabel task ``[N, C]`` 0/1
        indicators.
        """
        self._check_fitted("predict")
        if labels and structure:
            raise ConfigError("predict(labels=True, structure=True): choose one; labels come from the "
                              "selected output tensor, structure returns every output.")
        if labels:
            require_classification(self.output_kind, "predict(labels=True)")
        if self.preprocess is not None and type(X).__name__ == "DataFrame":
            X = self.preprocess.transform(X, what="X (predict)")
        src = make_source(X, role="predict", require_target=False, device=self.device)
        validation.check_source(src, "predict")
        self._check_features(src, "predict")
        if isinstance(src, InMemoryData):
            src = src.to(self.device)
        was_training = self.model.training
        self.model.eval()
        # The bare module, no collective: one rank alone may predict.
        view = self.step.eval_view(self.dist.eval_model(self.step.model, sync_buffers=False))
        outputs = []
        try:
            with torch_threads(self.num_threads, self.model, self.device):
                for inputs, _ in src.batches(batch_size, None, **self.batch_kwargs(src)):
                    out = view.predict_step((inputs, None))
                    outputs.append(to_cpu_structure(out) if structure else select(out, self.output_key).float())
        finally:
            self.model.train(was_training)
        if structure:
            return concat(outputs)
        output = torch.cat(outputs).cpu()
        if labels:
            from .data.labels import decode, predicted_indices

            return decode(predicted_indices(output, self.output_kind, len(self.classes or ())), self.classes)
        return output

    def save(self, path: str | os.PathLike, *, metadata: dict | None = None):
        """Save the weights (safetensors) and a JSON description next to them.

        Under DDP only rank 0 writes (every rank holds the same weights).
        """
        from .serialization import _paths, save_model

        if not self.dist.is_main:
            return _paths(path)[0]

        meta = {"loss": getattr(self.loss_info, "name", None), "n_features_in": self.n_features_in,
                "task": self.output_kind.task if self.output_kind else self.task,
                "output_kind": vars(self.output_kind) if self.output_kind else None,
                "classes": self.classes, "feature_names": self.feature_names}
        if self.preprocess is not None and self.preprocess.state is not None:
            meta["tabular"] = self.preprocess.to_dict()  # read back: TabularPreprocessor.from_dict(...)
        meta.update(metadata or {})
        return save_model(self.model, path, metadata=meta)

    def export(self, path: str | os.PathLike, *, format: str = "onnx", example=None, preprocessing=None,
               tolerance: float = 1e-4):
        """Write the model as ``.onnx`` or ``.pt2``, checked against :meth:`predict` on ``example``'s rows.

        See :func:`fittorch.export.export_trainer` and docs/export.md.
        """
        from .export import export_trainer

        return export_trainer(self, path, format=format, example=example, preprocessing=preprocessing,
                              tolerance=tolerance)

    def load(self, path: str | os.PathLike) -> Trainer:
        """Load weights saved by :meth:`save` into this trainer's model."""
        from .serialization import load_into, load_state, read_metadata, unwrap

        load_into(unwrap(self.model), load_state(path, self.device), source=str(path))
        meta = read_metadata(path)
        self.n_features_in = meta.get("n_features_in", self.n_features_in)
        self.classes = meta.get("classes", self.classes)
        self.feature_names = meta.get("feature_names", self.feature_names)
        if meta.get("output_kind"):
            self.output_kind = OutputKind(**meta["output_kind"])
            self.task = self.task or self.output_kind.task
            self.metric_set = MetricSet.build(self._metric_names(self.output_kind), self.output_kind, self.device,
                                              output_key=self.output_key)
        self.state.status = "loaded"
        return self

    def resume(self, source) -> bool:
        """Restore the whole run from a checkpoint: ``"last"``, ``"best"``, ``"auto"`` or a path.

        ``"last"`` falls back to the previous checkpoint (with a warning) when the newest is
        damaged; ``"auto"`` returns False and changes nothing when there is no checkpoint yet.
        Settings that would make the resume wrong (model shape, batch size, world size, ...)
        are refused with a CheckpointError naming them. Called by ``fit(..., resume=...)``.
        """
        from .checkpoint import resume

        return resume(self, source)

    def state_dict(self) -> dict:
        """A copy of the whole run (weights, optimizer, scheduler, scaler, TrainState, callbacks, RNG)."""
        import copy

        from .checkpoint import run_state

        return copy.deepcopy(run_state(self))

    def load_state_dict(self, state: dict) -> None:
        from .checkpoint import load_run_state

        load_run_state(self, state)

    def add_to_history(self, row: dict, **values) -> None:
        """Add columns to this epoch's ``row`` (in ``on_epoch_end``) and to its copy in the history.

        For a callback that computes a value per epoch (a gradient norm, a custom metric), so the
        loggers that run after it and ``trainer.history`` both have it.
        """
        row.update(values)
        rows = self.state.history.rows
        if rows and rows[-1].get("epoch") == row.get("epoch"):
            rows[-1].update(values)

    def _repr_html_(self) -> str:  # Jupyter: the fit summary (status, epochs, best and last values)
        from .display import fit_summary_html

        return fit_summary_html(self)

    # -- helpers the loop uses ----------------------------------------------------------
    def _loop_context(self, batch_size: int, val_every_steps: int = 0) -> LoopContext:
        """Everything the loop reads, in one object (the loop never reads the Trainer)."""
        return LoopContext(step=self.step, state=self.state, callbacks=self.callbacks, dist=self.dist,
                           metrics=self.metric_set, host=self, epoch_losses=self.epoch_losses, seed=self.seed,
                           accumulate_steps=self.accumulate_steps, nonfinite=self.nonfinite,
                           eval_batch_size=self._val_batch_size or max(batch_size, 1024),
                           val_every_steps=val_every_steps, batch_kwargs=self.batch_kwargs,
                           failure_hint=self.last_good_checkpoint_hint)

    def batch_kwargs(self, source) -> dict:
        return {} if isinstance(source, InMemoryData) else {"device": self.device}

    def last_good_checkpoint_hint(self) -> str:
        return last_good_hint(self.checkpoint_dir)

    # -- internals --------------------------------------------------------------------
    def _bind_step(self, *, kwargs_input: bool, wrap: bool = False) -> None:
        """Give the step all its parts: the one place that sets them (at construction and per fit)."""
        from .callbacks.guard import NonFiniteGuard

        model, grad_sync, no_sync = self._step_model, None, None
        if wrap and self.dist.enabled:
            parts = runs_model_parts(self.step)
            # Once. A step that may call the model's parts (self.model.generator) runs the bare
            # module, and its optimizer_step averages the gradients over the ranks; others get DDP.
            if self._dist_model is None:
                self._dist_model = self.dist.replicate(model) if parts else self.dist.wrap_model(model)
            model = self._dist_model
            grad_sync, no_sync = (self.dist.average_grads, None) if parts else (None, model.no_sync)
        guard = next((cb for cb in self.callbacks if isinstance(cb, NonFiniteGuard)), None)
        self.step.bind(
            model=model, loss_fn=self.loss_fn, optimizers=self.optimizers, autocast=autocast_factory(self.precision, self.device),
            scaler=self.scaler, kwargs_input=kwargs_input,
            label_key=label_key_for(self.model) if self.loss_fn is None else None, output_key=self.output_key,
            structured_loss=self.loss_fn is not None and self.loss_info is None,
            after_backward=tuple(cb for cb in self.callbacks if overrides(cb, "on_after_backward")),
            no_sync=no_sync, grad_sync=grad_sync,
            skip_step=guard.skip_check if guard is not None and self.nonfinite == "skip" else None,
            graphed=self._graphed, host=self)

    def _prepare(self, train_src, val_src) -> None:
        """Dry-run the model on a sample batch, check shapes/labels, build metrics and hooks."""
        self.callbacks.sort(key=lambda cb: getattr(cb, "order", 0))  # stable: equal orders keep the user's order
        batch = dry_run.sample_batch(train_src)
        self._bind_step(kwargs_input=batch is not None and isinstance(batch[0], dict))
        if batch is not None:
            self.output_kind = dry_run.dry_forward(self.step, batch, self.loss_info, self.device, self.task)
            self.n_features_in = _n_features(batch[0])
        else:
            self.output_kind = infer_kind(torch.zeros(1, 2), None, self.loss_info, self.task)
        validation.check_class_range(train_src, self.output_kind, "training", self.classes)
        if val_src is not None:
            validation.check_class_range(val_src, self.output_kind, "validation", self.classes)
            self._check_features(val_src, "fit (val)")
        self.metric_set = MetricSet.build(self._metric_names(self.output_kind), self.output_kind, self.device,
                                          output_key=self.output_key)
        self._bind_step(kwargs_input=self.step.kwargs_input, wrap=True)

    def _metric_names(self, kind: OutputKind):
        if self.metric_specs == "auto":
            return metric_defaults(kind)
        if isinstance(self.metric_specs, str) or callable(self.metric_specs):  # one name, function or Metric
            return [self.metric_specs]
        return list(self.metric_specs or [])

    def _check_fitted(self, what: str) -> None:
        if self.state.status == "created":
            raise NotFittedError(
                f"{what}() was called before fit(). Train first with trainer.fit(...), or load trained "
                "weights with trainer.load(path)."
            )

    def _check_features(self, src, what: str) -> None:
        validation.check_features(src, self.n_features_in, self.feature_names, what)



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
        drop_last: bool = False, num_workers: int = 0, collate_fn=None, val_every_steps: int = 0,
        **trainer_kwargs) -> Trainer:
    """One call: build a :class:`Trainer`, fit it, and return it (``.history``, ``.evaluate``, ``.predict``)."""
    trainer = Trainer(model, **trainer_kwargs)
    trainer.fit(train, val, epochs=epochs, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last,
                num_workers=num_workers, collate_fn=collate_fn, val_every_steps=val_every_steps)
    return trainer

