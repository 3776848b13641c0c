"""One training step, as a replaceable object: :class:`Step`.

The Trainer builds the step's parts once per fit (model, loss, optimizers, autocast,
scaler, hooks, DDP) and calls :meth:`Step.bind`; the loop then calls only
``step.train_step(batch, window)`` and ``step.eval_step(batch)``. Customize at three levels:

- ``compute_loss(batch, output)``: the loss from the batch and the model's output;
- ``forward(batch)``: which parts of the batch go to the model;
- ``train_step(batch, window)``: the whole step (e.g. a GAN with two optimizers), using the
  helpers :meth:`Step.backward` and :meth:`Step.optimizer_step`, which keep AMP loss scaling,
  the ``on_after_backward`` hooks (clipping) and the non-finite guard per optimizer.

A batch is ``(inputs, target)``: ``inputs`` a tuple (``model(*inputs)``) or a dict
(``model(**inputs)``), ``target`` a tensor or None. The default step's hot path has no
lookups, no branches on strings and no host syncs.
"""

from __future__ import annotations

import contextlib
from typing import NamedTuple

import torch

from .errors import ConfigError
from .outputs import model_loss, select


class Window(NamedTuple):
    """Where a batch sits in a gradient-accumulation window.

    ``first``: clear the gradients before backward; ``last``: step the optimizer after it;
    ``scale``: the batch's share of the window's loss (1.0 without accumulation).
    """

    first: bool = True
    last: bool = True
    scale: float = 1.0


WHOLE = Window()  # one batch, one optimizer step
_NO_CONTEXT = contextlib.nullcontext()  # reusable: entering it does nothing
_STOCK_ZERO_GRAD = torch.optim.Optimizer.zero_grad


class Step:
    """The default step: forward, loss, zero_grad, backward, optimizer step.

    Subclass it and override what you need; pass an instance as ``Trainer(..., step=MyStep())``.
    After :meth:`bind` these attributes are set: ``model`` (DDP-wrapped when distributed),
    ``loss_fn`` (None when the model computes its own loss), ``optimizers`` (name -> optimizer),
    ``optimizer`` (the first one), ``autocast`` (a context-manager factory), ``scaler``,
    ``output_key`` and ``label_key`` (see :mod:`fittorch.outputs`).
    """

    # -- set by bind() ------------------------------------------------------------------
    model = None
    loss_fn = None
    optimizers: dict = {}
    optimizer = None
    autocast = contextlib.nullcontext
    scaler = None
    kwargs_input = False
    label_key = None  # model(**inputs, <label_key>=target): a model that computes its own loss
    output_key = None  # which tensor of a structured output metrics/predict use
    structured_loss = False  # a custom loss callable gets the output as the model returned it
    after_backward: tuple = ()
    no_sync = None
    grad_sync = None  # DDP with a step that calls the model's parts itself: averages grads per optimizer
    skip_step = None
    scale_pending = False  # fp16: an optimizer stepped since the last loss-scale update
    graphed = None
    synced = None  # DDP with grad_sync: the optimizer optimizer_step() is stepping (its grads averaged)
    _step_hooks: tuple = ()
    host = None  # what hooks receive (the Trainer)
    last_output = None  # the newest training step's output (for batch-end hooks)

    def bind(self, *, model, loss_fn, optimizers: dict, autocast=contextlib.nullcontext, scaler=None,
             kwargs_input: bool = False, label_key: str | None = None, output_key=None,
             structured_loss: bool = False, after_backward: tuple = (), no_sync=None, grad_sync=None,
             skip_step=None, graphed=None, host=None) -> Step:
        """Give the step every part it needs (called by the Trainer once per fit)."""
        self.model, self.loss_fn = model, loss_fn
        self.optimizers = dict(optimizers)
        self.optimizer = next(iter(self.optimizers.values()), None)
        self._first = next(iter(self.optimizers), None)  # the name optimizer_step() steps by default
        self._params = {name: [p for g in opt.param_groups for p in g["params"]]
                        for name, opt in self.optimizers.items()}
        self.autocast, self.scaler = autocast, scaler
        self.kwargs_input, self.label_key, self.output_key = kwargs_input, label_key, output_key
        self.structured_loss = structured_loss
        self.after_backward, self.no_sync, self.skip_step = tuple(after_backward), no_sync, skip_step
        self.grad_sync, self.scale_pending = grad_sync, False
        self.graphed, self.host = graphed, host
        self.stepping = self.optimizer  # the optimizer whose step is being prepared (clipping reads it)
        for handle in self._step_hooks:
            handle.remove()
        self._step_hooks = ()
        if grad_sync is not None:  # an optimizer.step() that skips optimizer_step would skip the average
            self._step_hooks = tuple(opt.register_step_pre_hook(_synced_only(self, name))
                                     for name, opt in self.optimizers.items()
                                     if hasattr(opt, "register_step_pre_hook"))
        return self

    # -- level (b): what goes to the model ---------------------------------------------------
    def forward(self, batch):
        inputs, target = batch
        if self.label_key is not None and target is not None:
            return self.model(**inputs, **{self.label_key: target})
        # isinstance too: a loaded trainer that never ran fit() has not set kwargs_input yet
        return self.model(**inputs) if (self.kwargs_input or isinstance(inputs, dict)) else self.model(*inputs)

    # -- level (a): the loss --------------------------------------------------------------
    def compute_loss(self, batch, output):
        if self.loss_fn is None:
            return model_loss(output)
        if self.structured_loss:
            return self.loss_fn(output, batch[1])
        return self.loss_fn(select(output, self.output_key), batch[1])

    # -- level (c): the whole step ----------------------------------------------------------
    def train_step(self, batch, window: Window = WHOLE) -> torch.Tensor:
        """Forward, loss, zero_grad, backward, optimizer step. Returns the detached loss.

        With gradient accumulation a window of micro-batches shares one optimizer step
        (see :class:`Window`), so the summed gradients equal those of one big batch.
        """
        # 0. Opt-in cuda_graphs=True: replay the captured whole step (None: this batch runs eagerly).
        if self.graphed is not None:
            loss = self.graphed.step(self, batch)
            if loss is not None:
                return loss

        # Under DDP, micro-steps that don't step skip the gradient all-reduce. no_sync must
        # cover the forward as well as the backward, or DDP still syncs.
        with (self.no_sync() if (self.no_sync is not None and not window.last) else _NO_CONTEXT):
            # 1. Forward pass and loss (under autocast when mixed precision is on).
            with self.autocast():
                output = self.forward(batch)
                loss = self.compute_loss(batch, output)
            self.last_output = output

            # 2. Clear the old gradients: backward() adds into .grad, it does not overwrite.
            if window.first:
                self.zero_grad()

            # 3. Backward: autograd fills p.grad for every parameter.
            self.backward(loss * window.scale if window.scale != 1.0 else loss)

        # 4. Update the weights once per window.
        if window.last:
            self.optimizer_step(loss=loss)
        return loss.detach()

    @torch.no_grad()
    def eval_step(self, batch):
        """``(output, loss)`` without building a graph; loss is None without a target."""
        with self.autocast():
            output = self.forward(batch)
            loss = self.compute_loss(batch, output) if batch[1] is not None else None
        return output, loss

    @torch.no_grad()
    def predict_step(self, batch):
        """The model's output for a batch of inputs (as it returned it)."""
        with self.autocast():
            return self.forward(batch)

    # -- helpers for a custom train_step ------------------------------------------------------
    def zero_grad(self, name: str | None = None) -> None:
        """``optimizer.zero_grad(set_to_none=True)`` for one optimizer (``name``) or all of them.

        For torch's own optimizers this sets every ``grad`` to None directly, at a tenth of the
        Python cost; an optimizer with its own ``zero_grad`` gets that called instead.
        """
        for key, opt in (self.optimizers.items() if name is None else ((name, self.named(name)),)):
            if type(opt).zero_grad is not _STOCK_ZERO_GRAD:
                opt.zero_grad(set_to_none=True)
                continue
            for p in self._params[key]:
                p.grad = None

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, scaled by the fp16 loss scaler when there is one."""
        (self.scaler.scale(loss) if self.scaler is not None else loss).backward()

    def optimizer_step(self, name: str | None = None, *, loss: torch.Tensor | None = None) -> bool:
        """Step one optimizer (``name``; default the first), keeping every guarantee.

        Under DDP with a custom ``train_step`` or ``forward``, first averages this optimizer's
        gradients over the ranks. Unscales fp16 gradients, runs the ``on_after_backward`` hooks
        (clipping) for this optimizer's parameters, asks the non-finite guard
        (``nonfinite="skip"``), then steps. Returns False when the guard skipped the step
        (weights and state bitwise unchanged). With fp16 the loss scale is updated once per
        train step, after every optimizer stepped (:meth:`update_scale`, called by the loop).
        """
        opt = self.optimizer if name is None else self.named(name)
        self.stepping = opt
        if self.grad_sync is not None:  # sync point: an all-reduce of this optimizer's gradients
            self.grad_sync(self._params[self._first if name is None else name])
        if self.scaler is not None:
            self.scaler.unscale_(opt)  # so clipping sees the true gradients
            self.scale_pending = True
        for cb in self.after_backward:
            cb.on_after_backward(self.host)
        if self.skip_step is not None and self.skip_step(loss, opt):  # opt-in: one host sync
            return False
        self.synced = opt  # (DDP) this step's gradients were averaged: its step-pre-hook lets it through
        if self.scaler is not None:
            self.scaler.step(opt)  # skips the step by itself when the fp16 gradients overflowed
        else:
            opt.step()
        self.synced = None
        return True

    def update_scale(self) -> None:
        """fp16: the loss scale's one update per train step (the loop calls it after ``train_step``).

        Every optimizer of the step was unscaled with the same scale, so an overflow in any of
        them halves the scale once, and the growth counter counts steps, not optimizers.
        """
        if self.scale_pending:
            self.scaler.update()
            self.scale_pending = False

    def named(self, name: str):
        """The optimizer called ``name`` (a key of ``Trainer(optimizer={...})``)."""
        opt = self.optimizers.get(name)
        if opt is None:
            from .errors import did_you_mean

            raise ConfigError(f"{type(self).__name__} asked for optimizer {name!r}, but the trainer has "
                              f"{list(self.optimizers)}.{did_you_mean(str(name), self.optimizers)} Name the "
                              "optimizers with Trainer(optimizer={'name': ..., ...}).")
        return opt

    def params_of(self, optimizer) -> list:
        """The parameters an optimizer updates."""
        return [p for g in optimizer.param_groups for p in g["params"]]

    def lrs(self) -> dict:
        """The history's learning-rate columns: ``lr`` (first optimizer), ``lr_<name>`` for more."""
        if len(self.optimizers) <= 1:
            return {"lr": self.optimizer.param_groups[0]["lr"]} if self.optimizer is not None else {}
        row = {"lr": self.optimizer.param_groups[0]["lr"]}
        row.update({f"lr_{k}": o.param_groups[0]["lr"] for k, o in self.optimizers.items()})
        return row

    def eval_view(self, model) -> Step:
        """A shallow copy that runs ``model`` (DDP's bare module) and never syncs."""
        import copy

        view = copy.copy(self)
        view.model, view.no_sync = model, None
        return view


def _synced_only(step: Step, name: str):
    """An optimizer step-pre-hook: under DDP a custom step must step through ``optimizer_step``."""

    def hook(optimizer, args, kwargs):
        if step.synced is not optimizer:
            from .errors import TrainingError

            raise TrainingError(
                f"{type(step).__name__}.train_step called optimizer {name!r}'s step() itself. Under DDP "
                "each rank would then update its weights with its own gradients only, and the ranks drift "
                f"apart. Call self.optimizer_step({name!r}) instead: it averages the gradients over the "
                "ranks first, then unscales fp16, clips and steps.")

    return hook


def runs_model_parts(step) -> bool:
    """Whether ``step`` overrides ``train_step`` or ``forward``, so it may call the model's parts
    (``self.model.generator(...)``) rather than the model itself."""
    cls = type(step)
    return cls.train_step is not Step.train_step or cls.forward is not Step.forward


def check_step(step) -> None:
    """A custom step is a fittorch.Step whose train_step takes (batch, window)."""
    if step is None:
        return
    import inspect

    if not isinstance(step, Step):
        hint = " Did you pass the class? Pass an instance: step=MyStep()." if isinstance(step, type) else ""
        raise ConfigError(f"step={step!r} is a {type(step).__name__}; expected an instance of a fittorch.Step "
                          f"subclass.{hint}")
    params = [p for p in inspect.signature(step.train_step).parameters.values()
              if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD, p.VAR_POSITIONAL)]
    if len(params) < 2 and not any(p.kind is p.VAR_POSITIONAL for p in params):
        raise ConfigError(
            f"{type(step).__name__}.train_step takes {len(params)} argument(s) besides self; the loop calls "
            "train_step(batch, window) (window: the gradient-accumulation position, a fittorch.step.Window). "
            "Define it as: def train_step(self, batch, window): ..."
        )
