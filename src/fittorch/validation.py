"""Checks that run once, before any training compute is spent.

Every user mistake is caught here and reported as a fittorch exception that names the
values seen, what was expected and the fix. The loop itself never validates.
"""

from __future__ import annotations

import torch
from torch import nn

from .data import InMemoryData, LoaderData, first_tensor
from .errors import ConfigError, DataError, DataTypeError, ModelError
from .losses import LossInfo
from .metrics import OutputKind

PRECISIONS = ("fp32", "bf16", "fp16")


def check_model(model) -> None:
    if not isinstance(model, nn.Module):
        hint = " Did you pass the class instead of an instance? Call it: MyModel()." if isinstance(model, type) else ""
        raise ModelError(f"model is a {type(model).__name__}; expected a torch.nn.Module instance.{hint}")
    if not any(p.requires_grad for p in model.parameters()):
        n = sum(p.numel() for p in model.parameters())
        raise ModelError(
            f"model {type(model).__name__} has no trainable parameters ({n} parameters, none with "
            "requires_grad=True). Unfreeze some layers (p.requires_grad_(True)) before training."
        )


def check_trainer_args(*, precision: str, accumulate_steps: int, nonfinite: str) -> None:
    if precision not in PRECISIONS:
        from .errors import unknown_name

        raise unknown_name("precision", precision, PRECISIONS)
    if not isinstance(accumulate_steps, int) or accumulate_steps < 1:
        raise ConfigError(f"accumulate_steps={accumulate_steps!r}; expected an integer >= 1 (1 means no accumulation).")
    if nonfinite not in ("stop", "skip", "ignore"):
        from .errors import unknown_name

        raise unknown_name("nonfinite policy", nonfinite, ("stop", "skip", "ignore"))


def check_fit_args(*, epochs, batch_size, n_train: int | None, drop_last: bool) -> None:
    if not isinstance(epochs, int) or isinstance(epochs, bool) or epochs < 0:
        raise ConfigError(f"epochs={epochs!r}; expected a non-negative integer.")
    if not isinstance(batch_size, int) or isinstance(batch_size, bool) or batch_size <= 0:
        raise ConfigError(f"batch_size={batch_size!r}; expected a positive integer such as 32.")
    if n_train is not None and drop_last and batch_size > n_train:
        raise ConfigError(
            f"batch_size={batch_size} is larger than the {n_train} training samples and drop_last=True, "
            "so every batch would be dropped and nothing trained. Use a smaller batch_size or drop_last=False."
        )


def check_source(source, role: str) -> None:
    """Empty sets and non-finite values, on the host, before anything is moved."""
    try:
        n = len(source)
    except TypeError:
        return
    if n == 0:
        raise DataError(f"The {role} data is empty (0 samples). Pass at least one sample; check the filter or split that made it.")
    if isinstance(source, InMemoryData):
        tensors = (list(source.inputs.items()) if isinstance(source.inputs, dict) else
                   [(f"X[{i}]", t) for i, t in enumerate(source.inputs)] if isinstance(source.inputs, tuple) else
                   [("X", source.inputs)])
        if source.target is not None:
            tensors.append(("y", source.target))
        for name, t in tensors:
            if t.is_floating_point():
                bad = ~torch.isfinite(t)
                count = int(bad.sum())
                if count:
                    where = bad.nonzero()[0].tolist()
                    pos = f"row {where[0]}" + (f", column {where[1]}" if len(where) > 1 else "")
                    raise DataError(
                        f"The {role} {name} has {count} NaN/inf value(s); the first is at {pos}. "
                        "Training on them makes the loss NaN. Drop or impute those values first."
                    )


def sample_batch(source, n: int = 2):
    """A tiny ``(inputs, target)`` batch for the dry forward, or None if it can't be had cheaply."""
    if isinstance(source, InMemoryData):
        return next(source.batches(n, None))
    if isinstance(source, LoaderData) and not source.iterable:
        try:
            return next(source.batches(n, None))
        except StopIteration:
            return None
    return None


def dry_forward(parts, batch, loss_info: LossInfo | None, device: torch.device) -> OutputKind:
    """Run the model on a tiny batch (eval mode, no grad) and check output against target."""
    from .data import map_structure
    from .step import forward

    inputs, target = batch
    inputs = map_structure(lambda t: t.to(device), inputs)
    model = parts.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = forward(parts, inputs)
    except (RuntimeError, TypeError, ValueError, IndexError) as exc:
        x = first_tensor(inputs)
        first_layer = next((m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))), None)
        expect = ""
        if isinstance(first_layer, nn.Linear):
            expect = f" The model's first Linear layer expects {first_layer.in_features} features"
            if x.ndim >= 2:
                expect += f"; the data has {x.shape[-1]}"
            expect += "."
        raise ModelError(
            f"The model failed on a sample batch of shape {tuple(x.shape)} (dtype {x.dtype}): "
            f"{str(exc).splitlines()[0]}.{expect} Make the model's input size match the data's features."
        ) from None
    finally:
        model.train(was_training)
    if not isinstance(output, torch.Tensor):
        raise ModelError(f"The model returned a {type(output).__name__}; expected a tensor of outputs.")
    return check_output_target(output, target, loss_info)


def check_output_target(output: torch.Tensor, target, loss_info: LossInfo | None) -> OutputKind:
    if target is None:
        return _guess_kind(output, None, loss_info)
    target = target.to(output.device)
    if loss_info is not None and loss_info.target == "class_index":
        if target.is_floating_point():
            raise DataTypeError(
                f"The loss '{loss_info.name}' expects integer class indices as targets, but y has dtype "
                f"{target.dtype}. Pass integer labels (e.g. y.astype('int64')), or use 'mse' for regression."
            )
        if output.ndim < 2 or output.ndim != target.ndim + 1:
            raise ModelError(
                f"The model outputs shape {tuple(output.shape)} for a batch whose targets have shape "
                f"{tuple(target.shape)}, but '{loss_info.name}' expects outputs [N, num_classes] for targets [N]. "
                "End the model with nn.Linear(hidden, num_classes)."
            )
        return OutputKind("multiclass", num_classes=int(output.shape[1]))
    if loss_info is not None and loss_info.target == "float":
        if not target.is_floating_point() and loss_info.task == "regression":
            raise DataTypeError(
                f"The loss '{loss_info.name}' is a regression loss, but y holds integers (dtype {target.dtype}), "
                "which look like class labels. For classification use loss='cross_entropy'; for regression "
                "pass float targets (y.astype('float32'))."
            )
        if output.shape != target.shape:
            fix = ""
            if output.numel() == target.numel():
                fix = (f" Reshape y to match (e.g. y.reshape{tuple([-1] + list(output.shape[1:]))}), "
                       "or make the model return the target's shape (e.g. output.squeeze(-1)).")
            raise ModelError(
                f"The model outputs shape {tuple(output.shape)} but the targets have shape {tuple(target.shape)}; "
                f"'{loss_info.name}' needs them equal (torch would broadcast them silently and train on the "
                f"wrong loss).{fix}"
            )
        if loss_info.task == "binary":
            return OutputKind("binary", logits=loss_info.name == "bce_with_logits")
        return OutputKind("regression")
    return _guess_kind(output, target, loss_info)


def _guess_kind(output, target, loss_info) -> OutputKind:
    if loss_info is not None:
        if loss_info.target == "class_index":
            return OutputKind("multiclass", num_classes=int(output.shape[1]) if output.ndim > 1 else 0)
        if loss_info.task == "binary":
            return OutputKind("binary", logits=loss_info.name == "bce_with_logits")
        return OutputKind("regression")
    if target is not None and not target.is_floating_point() and output.ndim == target.ndim + 1:
        return OutputKind("multiclass", num_classes=int(output.shape[1]))
    return OutputKind("regression")


def check_class_range(source, kind: OutputKind, role: str) -> None:
    """Labels outside [0, C) would device-assert on CUDA; check them on the host first."""
    if kind.task != "multiclass" or not isinstance(source, InMemoryData) or source.target is None:
        return
    t = source.target
    if t.numel() == 0:
        return
    lo, hi = int(t.min()), int(t.max())
    if lo < 0 or hi >= kind.num_classes:
        bad = int(((t < 0) | (t >= kind.num_classes)).sum())
        raise DataError(
            f"The {role} labels range from {lo} to {hi}, but the model outputs {kind.num_classes} classes "
            f"(valid labels 0..{kind.num_classes - 1}); {bad} label(s) are out of range. Make the last layer "
            f"output {hi + 1} classes, or encode the labels as 0..C-1 (sklearn's LabelEncoder)."
        )
