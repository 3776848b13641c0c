"""The dry run: before any training compute, the step runs once on a tiny sample batch.

It checks that the model accepts the batch (a keyword mismatch and a size mismatch are told
apart), that the output fits the target and the loss, that a custom loss runs, and it infers
the task (:func:`fittorch.task.check_output_target`).
"""

from __future__ import annotations

import torch
from torch import nn

from .data import InMemoryData, LoaderData, StreamData, first_tensor
from .data.checks import collate_failed
from .errors import DataError, ModelError
from .task import OutputKind, check_output_target


def sample_batch(source, n: int = 2):
    """A tiny ``(inputs, target)`` batch for the dry forward, or None if it can't be had cheaply."""
    if isinstance(source, InMemoryData):
        return next(source.batches(n, None))
    if isinstance(source, StreamData):
        return source.head(n)
    if isinstance(source, LoaderData) and not source.iterable:
        from torch.utils.data import default_collate

        from .data.loader import split_batch

        collate = (source.loader.collate_fn if source.loader is not None else source.collate_fn) or default_collate
        try:
            items = [source.dataset[i] for i in range(min(n, len(source.dataset)))]
        except (TypeError, IndexError, KeyError):  # an unusual Dataset: skip the dry forward
            return None
        try:
            return split_batch(collate(items))
        except DataError:
            raise
        except (RuntimeError, TypeError, ValueError) as exc:
            raise collate_failed(items, exc, custom=source.loader is not None) from None
    return None


def dry_forward(step, batch, loss_info, device: torch.device,
                task: str | None = None) -> OutputKind:
    """Run the step's forward (and loss) on a tiny batch (eval mode, no grad); check output against target."""
    from .data import map_structure
    from .errors import FittorchError
    from .outputs import describe, select

    inputs, target = batch
    inputs = map_structure(lambda t: t.to(device), inputs)
    target = None if target is None else target.to(device)
    batch = (inputs, target)
    model = step.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            try:
                output = step.forward(batch)
            except FittorchError:
                raise
            except (RuntimeError, TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
                raise forward_failed(model, inputs, exc, step) from None
            kind = check_output_target(select(output, step.output_key).float()
                                       if step.loss_fn is not None or step.output_key is not None
                                       else _selected_or_loss(output), target, loss_info, task)
            if target is not None and (loss_info is None or type(step).compute_loss is not _default_loss()):
                try:
                    step.compute_loss(batch, output)
                except FittorchError:
                    raise
                except (RuntimeError, TypeError, ValueError, IndexError, KeyError, AttributeError) as exc:
                    raise ModelError(
                        f"The loss failed on a sample batch (the model returned {describe(output)}; target of "
                        f"shape {tuple(target.shape)}, dtype {target.dtype}): {type(exc).__name__}: "
                        f"{str(exc).splitlines()[0] if str(exc) else ''}. Check the loss against what the model "
                        "returns (a custom loss gets the output as returned: a tuple, dict or dataclass as is)."
                    ) from None
    finally:
        model.train(was_training)
    return kind


def _default_loss():
    from .step import Step

    return Step.compute_loss


def _selected_or_loss(output):
    """loss=None: the logits when the output has them, else the model's loss (no metrics then)."""
    from .outputs import model_loss, select

    try:
        return select(output).float()
    except ModelError:
        return model_loss(output).detach().reshape(1, 1).float()


def forward_failed(model, inputs, exc: Exception, step) -> ModelError:
    """Why the model failed on a sample batch: a keyword mismatch or a size mismatch, said as such."""
    import inspect

    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    x = first_tensor(inputs)
    given = (f"keyword inputs {list(inputs)}" if isinstance(inputs, dict)
             else f"{len(inputs)} positional input(s) of shape(s) {[tuple(t.shape) for t in inputs]}")
    if step.label_key is not None:
        given += f" and the target as {step.label_key}="
    if isinstance(exc, TypeError) and ("argument" in first or "positional" in first):
        try:
            accepted = list(inspect.signature(model.forward).parameters)
        except (TypeError, ValueError):
            accepted = []
        return ModelError(
            f"{type(model).__name__}.forward could not be called with {given}: {first}. Its parameters are "
            f"{accepted}. Name the dict keys after forward's parameters, or override Step.forward(batch) to "
            "choose which keys go to the model."
        )
    expect = ""
    first_layer = next((m for m in model.modules() if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d))), None)
    shape_error = any(s in first for s in ("shape", "size", "mat1", "dimension"))
    if shape_error and isinstance(first_layer, nn.Linear):
        expect = f" The model's first Linear layer expects {first_layer.in_features} features"
        if x.ndim >= 2:
            expect += f"; the data has {x.shape[-1]}"
        expect += ". Make the model's input size match the data's features."
    return ModelError(
        f"The model failed on a sample batch ({given}; first tensor dtype {x.dtype}): "
        f"{type(exc).__name__}: {first}.{expect}"
    )
