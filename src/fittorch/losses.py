"""Loss functions by name.

Each name maps to a torch loss class plus what it expects of the targets, which the
data validation uses to give clear errors before training starts.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from .errors import ConfigError, unknown_name


@dataclass(frozen=True)
class LossInfo:
    name: str
    factory: Callable[[], nn.Module]
    target: str  # "class_index" | "float"
    task: str  # the task it implies (fittorch.task.TASKS); binary losses on [N, C] are multilabel


LOSSES: dict[str, LossInfo] = {
    "cross_entropy": LossInfo("cross_entropy", nn.CrossEntropyLoss, "class_index", "multiclass"),
    "nll": LossInfo("nll", nn.NLLLoss, "class_index", "multiclass"),
    "bce": LossInfo("bce", nn.BCELoss, "float", "binary"),
    "bce_with_logits": LossInfo("bce_with_logits", nn.BCEWithLogitsLoss, "float", "binary"),
    "mse": LossInfo("mse", nn.MSELoss, "float", "regression"),
    "l1": LossInfo("l1", nn.L1Loss, "float", "regression"),
    "smooth_l1": LossInfo("smooth_l1", nn.SmoothL1Loss, "float", "regression"),
    "huber": LossInfo("huber", nn.HuberLoss, "float", "regression"),
}
_ALIASES = {"ce": "cross_entropy", "crossentropy": "cross_entropy", "mae": "l1", "binary_cross_entropy": "bce"}


def resolve_loss(loss) -> tuple[Callable, LossInfo | None]:
    """Return ``(callable, info)``. ``info`` is None for a user-supplied callable.

    ``loss=None``: the model computes its own loss (``output["loss"]``/``output.loss``).
    """
    if loss is None:
        return None, None
    if isinstance(loss, str):
        key = _ALIASES.get(loss.lower(), loss.lower())
        if key not in LOSSES:
            raise unknown_name("loss", loss, LOSSES, "Or pass a torch loss module or any callable(output, target).")
        info = LOSSES[key]
        return info.factory(), info
    if isinstance(loss, nn.Module) or callable(loss):
        if isinstance(loss, type) and issubclass(loss, nn.Module):
            loss = loss()
        return loss, infer_loss_info(loss)
    raise ConfigError(
        f"loss={loss!r} is a {type(loss).__name__}; expected a loss name such as 'cross_entropy' "
        "or 'mse', a torch loss module, or a callable(output, target)."
    )


def infer_loss_info(loss) -> LossInfo | None:
    """Recognise torch's own loss modules, so validation also works for instances."""
    for info in LOSSES.values():
        if type(loss) is type(info.factory()):
            return info
    return None


def loss_name(loss) -> str:
    return loss if isinstance(loss, str) else type(loss).__name__


def target_dtype(info: LossInfo | None) -> torch.dtype | None:
    if info is None:
        return None
    return torch.long if info.target == "class_index" else torch.float32
