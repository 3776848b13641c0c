"""GradientClipping: clip by global norm or by value, and log the gradient norm per epoch."""

from __future__ import annotations

import math

import torch

from ..errors import ConfigError
from .base import Callback


class GradientClipping(Callback):
    """Clip the gradients after ``backward`` and before the optimizer step.

    Args:
        max_norm: clip the global gradient norm to this value (``clip_grad_norm_``).
        max_value: or clip every gradient element to ``[-max_value, max_value]``.
        norm_type: the norm that is clipped and logged (2 by default).

    The pre-clipping norm of every step stays on the device; at the epoch end they are
    read in one transfer and logged as ``grad_norm`` (mean over the epoch's steps) and
    ``grad_norm_max``. So clipping adds no host sync per step. Non-finite norms are
    counted; the non-finite guard uses them to name the step that went wrong.
    """

    order = -50  # adds values to the row before the loggers run

    def __init__(self, max_norm: float | None = None, max_value: float | None = None, norm_type: float = 2.0):
        if (max_norm is None) == (max_value is None):
            raise ConfigError("GradientClipping needs exactly one of max_norm (clip the global norm) "
                              "or max_value (clip each element), e.g. GradientClipping(max_norm=1.0).")
        limit = max_norm if max_norm is not None else max_value
        if not isinstance(limit, (int, float)) or not limit > 0:
            raise ConfigError(f"GradientClipping limit {limit!r}; expected a positive number such as 1.0.")
        self.max_norm, self.max_value, self.norm_type = max_norm, max_value, float(norm_type)
        self._params: list[torch.Tensor] = []
        self._norms: list[torch.Tensor] = []
        self._resumed: list[torch.Tensor] = []
        self.nonfinite_steps: list[tuple[int, int]] = []  # (epoch, batch) of steps with a non-finite norm

    def on_fit_start(self, trainer) -> None:
        self._params = {}
        device = trainer.device
        self._norms = [n.to(device) for n in self._resumed]  # a mid-epoch resume keeps the epoch's norms
        self._resumed = []

    def on_after_backward(self, trainer) -> None:
        opt = trainer.step.stepping  # the optimizer about to step: with several, each is clipped apart
        params = self._params.get(id(opt))
        if params is None:
            params = self._params[id(opt)] = [p for g in opt.param_groups for p in g["params"]]
        if self.max_norm is not None:
            norm = torch.nn.utils.clip_grad_norm_(params, self.max_norm, self.norm_type, foreach=True)
        else:
            grads = [p.grad for p in params if p.grad is not None]
            norm = torch.nn.utils.get_total_norm(grads, self.norm_type, foreach=True)
            torch.nn.utils.clip_grad_value_(params, self.max_value, foreach=True)
        self._norms.append(norm.detach())

    def read_norms(self) -> list[float]:
        """This epoch's per-step norms as floats: one host transfer (used at the epoch end)."""
        if not self._norms:
            return []
        return torch.stack(self._norms).float().cpu().tolist()

    def first_nonfinite_step(self, trainer) -> int | None:
        """The 1-based index, within the current epoch's steps, of the first non-finite norm."""
        for i, v in enumerate(self.read_norms()):
            if not math.isfinite(v):
                return i + 1
        return None

    def on_epoch_end(self, trainer, row: dict) -> None:
        norms = self.read_norms()
        self._norms = []
        if not norms:
            return
        finite = [v for v in norms if math.isfinite(v)]
        if len(finite) < len(norms):
            self.nonfinite_steps.append((int(row["epoch"]), len(norms) - len(finite)))
        trainer.add_to_history(row, grad_norm=sum(finite) / len(finite) if finite else float("nan"),
                   grad_norm_max=max(finite) if finite else float("nan"))

    def state_dict(self) -> dict:
        """The current epoch's per-step norms, so a mid-epoch resume logs the same grad_norm."""
        return {"norms": torch.stack(self._norms).detach().cpu()} if self._norms else {}

    def load_state_dict(self, state: dict) -> None:
        norms = state.get("norms")
        self._resumed = [] if norms is None else list(norms.unbind(0))
