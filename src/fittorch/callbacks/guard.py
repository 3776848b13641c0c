"""NonFiniteGuard: no NaN or inf ever trains on silently, and no non-finite weights are saved.

The trainer adds it for ``nonfinite="stop"`` (the default) and ``"skip"``.

- ``stop``: the loop checks the epoch's losses at the epoch end (one host read of all of
  them), and names the first bad step. NaN/inf *gradients* behind a finite loss poison the
  weights at the optimizer step; the guard checks the weights once per epoch (one more host
  read), before any checkpoint of that epoch is written (it runs first), and stops the run
  with a :class:`~fittorch.errors.TrainingError`. With :class:`GradientClipping` on, the
  per-step gradient norms it keeps on the device name the exact step.
- ``skip`` (opt-in): before each optimizer step, the loss and the gradients are checked;
  a bad step is skipped, so the weights and the optimizer state stay bitwise unchanged.
  This costs one host sync per step, which is why it is not the default. Skipped steps are
  counted (``guard.skipped``, and ``skipped_steps`` in each epoch's row) and left out of
  the epoch's mean loss.
"""

from __future__ import annotations

import torch

from ..errors import TrainingError
from .base import Callback


def all_finite(tensors) -> bool:
    """The one weights-are-finite check (the guard, checkpoints): one host sync for all tensors.

    The max-abs norm is NaN/inf exactly when an element is (an L2 norm could overflow).
    """
    tensors = [t.detach() for t in tensors if t.is_floating_point()]
    if not tensors:
        return True
    return bool(torch.isfinite(torch.nn.utils.get_total_norm(tensors, float("inf"), foreach=True)))


class NonFiniteGuard(Callback):
    order = -100  # first: it must refuse a poisoned epoch before a checkpoint saves it

    def __init__(self):
        self.skipped = 0  # over the whole run
        self._skipped_epoch = 0
        self._params: list[torch.Tensor] = []
        self.mode = "stop"

    def on_fit_start(self, trainer) -> None:
        self.mode = trainer.nonfinite
        self._params = [p for p in trainer.model.parameters() if p.requires_grad]

    def skip_check(self, loss: torch.Tensor | None, optimizer) -> bool:
        """``nonfinite="skip"``: True (skip this optimizer's step) when the loss or its gradients
        are not finite. The step calls it before each optimizer step (one host sync)."""
        grads = [p.grad for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        # The max-abs norm is NaN/inf exactly when an element is (an L2 norm could overflow).
        bad = torch.zeros((), dtype=torch.bool) if loss is None else ~torch.isfinite(loss.detach())
        if grads:
            bad = bad.to(grads[0].device)
            bad = bad | ~torch.isfinite(torch.nn.utils.get_total_norm(grads, float("inf"), foreach=True))
        if not bool(bad):  # the opt-in per-step host sync
            return False
        self.skipped += 1
        self._skipped_epoch += 1
        return True

    def _weights_finite(self) -> bool:
        return all_finite(self._params)

    def on_epoch_end(self, trainer, row: dict) -> None:
        if self.mode == "skip":
            trainer.add_to_history(row, skipped_steps=self._skipped_epoch)
            self._skipped_epoch = 0
            return
        if self.mode != "stop" or self._weights_finite():
            return
        state = trainer.state
        where = f"during epoch {row['epoch']}"
        for cb in trainer.callbacks:
            if hasattr(cb, "first_nonfinite_step"):
                step = cb.first_nonfinite_step(trainer)
                if step is not None:
                    first = state.global_step - len(cb.read_norms()) + step
                    where = f"at epoch {row['epoch']}, step {step} of the epoch (global step {first})"
                break
        raise TrainingError(
            f"The gradients became non-finite (NaN or inf) {where}, although the loss was finite "
            f"(train_loss {row.get('train_loss', float('nan')):.4g}); the weights are now non-finite and "
            "were not saved. Common causes: a learning rate that is too high, an exploding network, "
            "sqrt/log of 0 in the model. Try GradientClipping(max_norm=1.0), a lower lr, or "
            f"Trainer(nonfinite='skip') to skip such steps. {trainer.last_good_checkpoint_hint()}".rstrip()
        )

    def state_dict(self) -> dict:
        return {"skipped": self.skipped}

    def load_state_dict(self, state: dict) -> None:
        self.skipped = int(state.get("skipped", 0))
