"""The epoch loop and the validation pass.

``fit_loop`` is the whole of training: read it top to bottom to see every hook call.
It depends only on a :class:`LoopContext`: the step, the state, the callbacks, the
distributed context and the metrics (no Trainer), so it can be run with a fake step.
Host syncs happen once per epoch (reading the epoch's mean loss and the metrics), never
per step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import torch

from .callbacks.base import SKIP_BATCH, batch_end_hooks, overrides
from .errors import TrainingError
from .metrics import scalars
from .step import WHOLE, Window


@dataclass
class LoopContext:
    """Everything the loop reads. The Trainer builds it once per fit."""

    step: object  # a fittorch.Step (train_step / eval_step / lrs / eval_view / model)
    state: object  # TrainState
    callbacks: list
    dist: object  # DistContext (identity collectives in one process)
    metrics: object  # MetricSet
    host: object = None  # what hooks receive as their first argument (the Trainer)
    epoch_losses: list = field(default_factory=list)  # device tensors; non-empty when resuming mid-epoch
    seed: int = 0
    accumulate_steps: int = 1
    nonfinite: str = "stop"
    eval_batch_size: int = 1024
    val_every_steps: int = 0
    batch_kwargs: Callable = lambda source: {}
    failure_hint: Callable = lambda: ""


def fit_loop(ctx: LoopContext, train, val, *, batch_size: int, shuffle: bool, drop_last: bool) -> None:
    state, callbacks, host = ctx.state, ctx.callbacks, ctx.host
    state.status, state.should_stop, state.stop_reason = "running", False, ""
    try:
        for cb in callbacks:
            cb.on_fit_start(host)
        while state.epoch < state.max_epochs and not state.should_stop:
            for cb in callbacks:
                cb.on_epoch_start(host)
            started = time.perf_counter()
            train_loss = train_epoch(ctx, train, val, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
            if train_loss is None:  # stopped mid-epoch (signal, time limit): no row for a partial epoch
                break
            row = {"epoch": state.epoch + 1, "train_loss": train_loss}
            if val is not None:
                row.update(validate(ctx, val))
            row.update(ctx.step.lrs())
            row["seconds"] = ctx.dist.max_value(time.perf_counter() - started)  # DDP: same on every rank
            state.epoch += 1
            state.batch_in_epoch = 0
            ctx.epoch_losses.clear()
            state.history.append(row)
            for cb in callbacks:
                cb.on_epoch_end(host, row)
            state.should_stop = ctx.dist.any_true(state.should_stop)  # DDP: all ranks stop together
        state.status = "stopped" if state.should_stop else "finished"
    except KeyboardInterrupt:
        state.status = "interrupted"
        raise
    except BaseException:
        state.status = "failed"
        raise
    finally:
        for cb in callbacks:
            cb.on_fit_end(host)


def validate(ctx: LoopContext, val) -> dict:
    """One validation pass; ``on_validation_end`` sees every metric, the row only the scalars."""
    metrics = evaluate_source(ctx, val, batch_size=ctx.eval_batch_size, prefix="val_")
    for cb in ctx.callbacks:
        cb.on_validation_end(ctx.host, metrics)
    return scalars(metrics)  # a confusion matrix stays out of the row


def train_epoch(ctx: LoopContext, train, val=None, *, batch_size: int, shuffle: bool,
                drop_last: bool) -> float | None:
    """One pass over the training data. Returns the mean batch loss, or None if stopped early."""
    state, step, host = ctx.state, ctx.step, ctx.host
    batch_start = [cb for cb in ctx.callbacks if overrides(cb, "on_train_batch_start") and cb.wants_batch_hooks()]
    batch_end = batch_end_hooks(ctx.callbacks)
    k = ctx.accumulate_steps
    order = train.epoch_order(ctx.seed, state.epoch, shuffle, rank=ctx.dist.rank, world_size=ctx.dist.world_size)
    n_local = len(order) if order is not None else _length(train)
    n_batches = None if n_local is None else (n_local // batch_size if drop_last else -(-n_local // batch_size))
    windows = _window_scales(n_local, batch_size, drop_last, k, n_batches)
    losses = ctx.epoch_losses
    scaled = step.scaler is not None

    step.model.train()  # dropout on, batchnorm updating its running statistics
    start = state.batch_in_epoch
    for i, batch in enumerate(train.batches(batch_size, order, start=start, drop_last=drop_last,
                                            **ctx.batch_kwargs(train)), start):
        for cb in batch_start:  # may replace the batch (mixup), or skip it
            batch = cb.on_train_batch_start(host, batch) or batch
            if batch is SKIP_BATCH:
                break
        last = (i % k == k - 1) or (n_batches is not None and i == n_batches - 1)
        state.batch_in_epoch = i + 1
        if batch is SKIP_BATCH:
            continue
        loss = step.train_step(batch, WHOLE if k == 1 else Window(i % k == 0, last, windows(i)))
        if scaled:  # fp16: one loss-scale update per step, after every optimizer of the step stepped
            step.update_scale()
        losses.append(loss)
        if len(losses) >= _LOSS_CHUNK and losses[-_LOSS_CHUNK].dim() == 0:
            # Fold the last scalars into one tensor, so a long epoch keeps no heap of tiny tensors.
            losses[-_LOSS_CHUNK:] = [torch.stack(losses[-_LOSS_CHUNK:])]
        state.global_step += last
        for hook in batch_end:
            hook(host, loss, batch, step.last_output)
        if ctx.val_every_steps and last and val is not None and state.global_step % ctx.val_every_steps == 0:
            state.step_validations.append({"global_step": state.global_step, "epoch": state.epoch + 1,
                                           "batch": i + 1, **validate(ctx, val)})
            step.model.train()
        if ctx.dist.check_stop(state, i + 1):  # DDP: agreed across ranks every few dozen batches
            return None
    if not losses:
        raise TrainingError(
            f"Epoch {state.epoch + 1} ran no training batch. The training data yielded nothing (or a "
            "batch-start hook skipped every batch); check that the Dataset/DataLoader is not empty and that "
            "drop_last did not drop everything."
        )
    # The epoch's one host sync: every batch loss, read at once.
    epoch_losses = stack_losses(losses)
    if ctx.nonfinite == "skip":  # skipped steps don't count towards the epoch's loss
        epoch_losses = epoch_losses[torch.isfinite(epoch_losses)]
    mean = ctx.dist.mean_of(epoch_losses)  # DDP: over every rank's batches, so histories match
    if ctx.nonfinite == "stop" and not torch.isfinite(torch.tensor(mean)):
        bad_rows = (~torch.isfinite(epoch_losses)).nonzero()
        bad = int(bad_rows[0]) if len(bad_rows) else 0  # DDP: the bad batch may be on another rank
        where = state.global_step - len(epoch_losses) + bad + 1
        raise TrainingError(
            f"The training loss became non-finite ({epoch_losses[bad].item()}) at epoch {state.epoch + 1}, "
            f"batch {bad + 1} (global step {where}). The weights after it are not usable and were not saved. "
            "Common causes: a learning rate that is too high, unscaled inputs, or log(0) in a custom loss. "
            f"{ctx.failure_hint()}"
        )
    return mean


_LOSS_CHUNK = 256


def stack_losses(losses: list) -> torch.Tensor:
    """The epoch's batch losses as one 1-D tensor (entries are scalars or folded chunks)."""
    return torch.cat([t.reshape(-1) for t in losses])


def _length(source) -> int | None:
    try:
        return len(source)
    except TypeError:
        return None


def _window_scales(n, batch_size, drop_last, k, n_batches):
    """Per-batch loss scale under accumulation, so a window equals one batch of its total size."""
    if k == 1 or n_batches is None:
        return lambda i: 1.0 / k
    sizes = [batch_size] * n_batches
    if not drop_last and n_batches * batch_size > n:
        sizes[-1] = n - (n_batches - 1) * batch_size

    def scale(i: int) -> float:
        w = i // k
        return sizes[i] / sum(sizes[w * k : (w + 1) * k])

    return scale


@torch.no_grad()
def evaluate_source(ctx: LoopContext, source, *, batch_size: int, prefix: str = "") -> dict:
    """Loss and metrics over a whole dataset, in eval mode with no autograd graph."""
    step, metrics = ctx.step, ctx.metrics
    view = step.eval_view(ctx.dist.eval_model(step.model))  # DDP: the bare module, buffers from rank 0
    was_training = view.model.training
    view.model.eval()  # dropout off, batchnorm uses its running statistics
    metrics.reset()
    total, count = None, 0
    try:
        order = ctx.dist.eval_order(source)  # DDP: this rank's disjoint share; metrics sync in compute()
        for batch in source.batches(batch_size, order, **ctx.batch_kwargs(source)):
            output, loss = view.eval_step(batch)
            target = batch[1]
            if loss is not None:
                n = len(target)
                total = loss.detach().float() * n if total is None else total + loss.detach().float() * n
                count += n
                metrics.update(output, target)
    finally:
        view.model.train(was_training)
    result = {}
    if total is not None or ctx.dist.enabled:  # DDP: every rank joins, also one with no batch
        total, count = ctx.dist.reduce_sum(total, count)
    if count:
        result[f"{prefix}loss"] = float(total) / count
    result.update({f"{prefix}{k}": v for k, v in metrics.compute().items()} if metrics and count else {})
    return result
