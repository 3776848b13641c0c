"""The epoch loop and the validation pass.

``fit_loop`` is the whole of training: read it top to bottom to see every hook call.
Host syncs happen once per epoch (reading the epoch's mean loss and the metrics), never
per step.
"""

from __future__ import annotations

import time

import torch

from .callbacks.base import overrides
from .errors import TrainingError
from .metrics import scalars
from .step import eval_step, train_step


def fit_loop(trainer, train, val, *, batch_size: int, shuffle: bool, drop_last: bool) -> None:
    state, callbacks = trainer.state, trainer.callbacks
    state.status, state.should_stop, state.stop_reason = "running", False, ""
    try:
        for cb in callbacks:
            cb.on_fit_start(trainer)
        while state.epoch < state.max_epochs and not state.should_stop:
            for cb in callbacks:
                cb.on_epoch_start(trainer)
            started = time.perf_counter()
            train_loss = train_epoch(trainer, train, batch_size=batch_size, shuffle=shuffle, drop_last=drop_last)
            if train_loss is None:  # stopped mid-epoch (signal, time limit): no row for a partial epoch
                break
            row = {"epoch": state.epoch + 1, "train_loss": train_loss}
            if val is not None:
                metrics = evaluate_source(trainer, val, batch_size=trainer.eval_batch_size(batch_size), prefix="val_")
                for cb in callbacks:
                    cb.on_validation_end(trainer, metrics)
                row.update(scalars(metrics))  # a confusion matrix stays out of the row
            row["lr"] = trainer.optimizer.param_groups[0]["lr"]
            row["seconds"] = trainer.dist.max_value(time.perf_counter() - started)  # DDP: same on every rank
            state.epoch += 1
            state.batch_in_epoch = 0
            trainer.epoch_losses = []
            state.history.append(row)
            for cb in callbacks:
                cb.on_epoch_end(trainer, row)
            state.should_stop = trainer.dist.any_true(state.should_stop)  # DDP: all ranks stop together
        state.status = "stopped" if state.should_stop else "finished"
    except KeyboardInterrupt:
        state.status = "interrupted"
        raise
    except BaseException:
        state.status = "failed"
        raise
    finally:
        for cb in callbacks:
            cb.on_fit_end(trainer)


def train_epoch(trainer, train, *, batch_size: int, shuffle: bool, drop_last: bool) -> float | None:
    """One pass over the training data. Returns the mean batch loss, or None if stopped early."""
    state, parts = trainer.state, trainer.parts
    batch_end = [cb for cb in trainer.callbacks if overrides(cb, "on_train_batch_end") and cb.wants_batch_hooks()]
    k = trainer.accumulate_steps
    order = train.epoch_order(trainer.seed, state.epoch, shuffle, rank=trainer.dist.rank,
                              world_size=trainer.dist.world_size)
    n_local = len(order) if order is not None else _length(train)
    n_batches = None if n_local is None else (n_local // batch_size if drop_last else -(-n_local // batch_size))
    windows = _window_scales(n_local, batch_size, drop_last, k, n_batches)
    losses = trainer.epoch_losses  # device tensors; non-empty when resuming mid-epoch

    parts.model.train()  # dropout on, batchnorm updating its running statistics
    start = state.batch_in_epoch
    for i, (inputs, target) in enumerate(train.batches(batch_size, order, start=start, drop_last=drop_last,
                                                      **trainer.batch_kwargs(train)), start):
        last = (i % k == k - 1) or (n_batches is not None and i == n_batches - 1)
        loss = train_step(parts, trainer, inputs, target, first=(i % k == 0), last=last,
                          scale=windows(i) if k > 1 else 1.0)
        losses.append(loss)
        if len(losses) >= _LOSS_CHUNK and losses[-_LOSS_CHUNK].dim() == 0:
            # Fold the last scalars into one tensor, so a long epoch keeps no heap of tiny tensors.
            losses[-_LOSS_CHUNK:] = [torch.stack(losses[-_LOSS_CHUNK:])]
        state.batch_in_epoch = i + 1
        state.global_step += last
        for cb in batch_end:
            cb.on_train_batch_end(trainer, loss)
        if trainer.dist.check_stop(state, i + 1):  # DDP: agreed across ranks every few dozen batches
            return None
    if not losses:
        raise TrainingError(
            f"Epoch {state.epoch + 1} ran no training batch. The training data yielded nothing; "
            "check that the Dataset/DataLoader is not empty and that drop_last did not drop everything."
        )
    # The epoch's one host sync: every batch loss, read at once.
    epoch_losses = stack_losses(losses)
    if trainer.nonfinite == "skip":  # skipped steps don't count towards the epoch's loss
        epoch_losses = epoch_losses[torch.isfinite(epoch_losses)]
    mean = trainer.dist.mean_of(epoch_losses)  # DDP: over every rank's batches, so histories match
    if trainer.nonfinite == "stop" and not torch.isfinite(torch.tensor(mean)):
        bad_rows = (~torch.isfinite(epoch_losses)).nonzero()
        bad = int(bad_rows[0]) if len(bad_rows) else 0  # DDP: the bad batch may be on another rank
        step = state.global_step - len(epoch_losses) + bad + 1
        raise TrainingError(
            f"The training loss became non-finite ({epoch_losses[bad].item()}) at epoch {state.epoch + 1}, "
            f"batch {bad + 1} (global step {step}). The weights after it are not usable and were not saved. "
            "Common causes: a learning rate that is too high, unscaled inputs, or log(0) in a custom loss. "
            f"{trainer.last_good_checkpoint_hint()}"
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
def evaluate_source(trainer, source, *, batch_size: int, prefix: str = "") -> dict:
    """Loss and metrics over a whole dataset, in eval mode with no autograd graph."""
    parts, metrics = trainer.dist.eval_parts(trainer.parts), trainer.metric_set  # DDP: the bare module
    was_training = parts.model.training
    parts.model.eval()  # dropout off, batchnorm uses its running statistics
    metrics.reset()
    total, count = None, 0
    try:
        order = trainer.dist.eval_order(source)  # DDP: this rank's disjoint share; metrics sync in compute()
        for inputs, target in source.batches(batch_size, order, **trainer.batch_kwargs(source)):
            output, loss = eval_step(parts, inputs, target)
            if loss is not None:
                n = len(target)
                total = loss.detach().float() * n if total is None else total + loss.detach().float() * n
                count += n
                metrics.update(output, target)
    finally:
        parts.model.train(was_training)
    result = {}
    if total is not None or trainer.dist.enabled:  # DDP: every rank joins, also one with no batch
        total, count = trainer.dist.reduce_sum(total, count)
    if count:
        result[f"{prefix}loss"] = float(total) / count
    result.update({f"{prefix}{k}": v for k, v in metrics.compute().items()} if metrics and count else {})
    return result
