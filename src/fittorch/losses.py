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
from .task import LOSS_ALIASES, LOSS_TASKS


@dataclass(frozen=True)
class LossInfo:
    name: str
    factory: Callable[[], nn.Module]
    target: str  # "class_index" | "float"
    task: str  # the task it implies (fittorch.task.TASKS); binary losses on [N, C] are multilabel


_FACTORIES = {"cross_entropy": (nn.CrossEntropyLoss, "class_index"), "nll": (nn.NLLLoss, "class_index"),
              "bce": (nn.BCELoss, "float"), "bce_with_logits": (nn.BCEWithLogitsLoss, "float"),
              "mse": (nn.MSELoss, "float"), "l1": (nn.L1Loss, "float"), "smooth_l1": (nn.SmoothL1Loss, "float"),
              "huber": (nn.HuberLoss, "float")}
LOSSES: dict[str, LossInfo] = {name: LossInfo(name, factory, target, LOSS_TASKS[name])
                               for name, (factory, target) in _FACTORIES.items()}
_ALIASES = LOSS_ALIASES


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
