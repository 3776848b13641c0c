"""One training step, readable top to bottom.

Everything the step needs is in :class:`StepParts`, resolved once per fit, so the hot
path has no lookups, no branches on strings and no host syncs.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import torch
from torch import nn


@dataclass
class StepParts:
    model: nn.Module
    loss_fn: object
    optimizer: torch.optim.Optimizer
    autocast: object = field(default_factory=contextlib.nullcontext)  # a context-manager factory
    scaler: torch.amp.GradScaler | None = None  # fp16 on CUDA only
    kwargs_input: bool = False  # model(**inputs) instead of model(*inputs)
    after_backward: tuple = ()  # callbacks overriding on_after_backward
    no_sync: object = None  # DDP's model.no_sync, for accumulation micro-steps
    skip_step: object = None  # nonfinite="skip": callable(loss) -> True to skip this update (syncs)
    graphed: object = None  # accel.CudaGraphStep when cuda_graphs=True


_NO_CONTEXT = contextlib.nullcontext()  # reusable: entering it does nothing


def forward(parts: StepParts, inputs):
    return parts.model(**inputs) if (parts.kwargs_input or isinstance(inputs, dict)) else parts.model(*inputs)


_STOCK_ZERO_GRAD = torch.optim.Optimizer.zero_grad


def zero_grad(parts: StepParts) -> None:
    """``optimizer.zero_grad(set_to_none=True)``, without its per-call profiler bookkeeping.

    For torch's own optimizers this is exactly what their ``zero_grad`` does (every parameter
    of every group gets ``grad = None``) at a tenth of the Python cost; an optimizer with its own
    ``zero_grad`` gets that called instead.
    """
    if type(parts.optimizer).zero_grad is not _STOCK_ZERO_GRAD:
        parts.optimizer.zero_grad(set_to_none=True)
        return
    for group in parts.optimizer.param_groups:
        for p in group["params"]:
            p.grad = None


def train_step(parts: StepParts, trainer, inputs, target, *, first: bool = True, last: bool = True,
               scale: float = 1.0) -> torch.Tensor:
    """Forward, loss, zero_grad, backward, optimizer step. Returns the detached loss.

    With gradient accumulation a window of micro-batches shares one optimizer step:
    ``first`` marks the micro-batch that clears the gradients, ``last`` the one that
    steps, and ``scale`` (micro-batch size / window size) makes the summed gradients
    equal those of one big batch.
    """
    # 0. Opt-in cuda_graphs=True: replay the captured whole step (None: this batch runs eagerly).
    if parts.graphed is not None:
        loss = parts.graphed.step(parts, trainer, inputs, target)
        if loss is not None:
            return loss

    # Under DDP, micro-steps that don't step skip the gradient all-reduce. no_sync must
    # cover the forward as well as the backward, or DDP still syncs.
    with (parts.no_sync() if (parts.no_sync is not None and not last) else _NO_CONTEXT):
        # 1. Forward pass and loss (under autocast when mixed precision is on).
        with parts.autocast():
            output = forward(parts, inputs)
            loss = parts.loss_fn(output, target)

        # 2. Clear the old gradients: backward() adds into .grad, it does not overwrite.
        #    set_to_none frees them instead of writing zeros, which is faster.
        if first:
            zero_grad(parts)

        # 3. Backward: autograd fills p.grad for every parameter.
        scaled = loss * scale if scale != 1.0 else loss
        if parts.scaler is not None:
            scaled = parts.scaler.scale(scaled)
        scaled.backward()

    # 4. Update the weights once per window.
    if last:
        if parts.scaler is not None:
            parts.scaler.unscale_(parts.optimizer)  # so clipping sees the true gradients
        for cb in parts.after_backward:
            cb.on_after_backward(trainer)
        if parts.skip_step is not None and parts.skip_step(loss):  # opt-in: weights stay bitwise unchanged
            if parts.scaler is not None:
                parts.scaler.update()
        elif parts.scaler is not None:
            parts.scaler.step(parts.optimizer)
            parts.scaler.update()
        else:
            parts.optimizer.step()
    return loss.detach()


@torch.no_grad()
def eval_step(parts: StepParts, inputs, target):
    """Forward (and loss when there is a target), without building a graph."""
    with parts.autocast():
        output = forward(parts, inputs)
        loss = parts.loss_fn(output, target) if target is not None else None
    return output, loss
