"""The LR range test: an exponentially increasing learning rate over ~100 steps.

The loss falls while the LR is useful and blows up once it is too large. The test
suggests the LR at the lowest (smoothed) loss divided by 10, reports where the loss
diverges, and judges the configured LR against both. ``lr_range.png`` shows the curve.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from ..callbacks.base import Callback
from ..safeio import save_figure
from .report import FAIL, PASS, WARN, CheckResult

STEPS = 100
LR_MIN, LR_MAX = 1e-6, 10.0
SMOOTH = 0.9  # EMA factor of the smoothed loss (bias-corrected)
TOO_LOW = 100.0  # configured LR below suggestion / TOO_LOW: a warning (docs/doctor.md)


class _LRSweep(Callback):
    """Sets the LR of each step from ``lrs`` and keeps the step losses."""

    def __init__(self, lrs):
        self.lrs, self.losses = lrs, []

    def _set(self, trainer, lr):
        for group in trainer.optimizer.param_groups:
            group["lr"] = lr

    def on_fit_start(self, trainer) -> None:
        self._set(trainer, float(self.lrs[0]))

    def on_train_batch_end(self, trainer, loss) -> None:
        self.losses.append(loss)
        if len(self.losses) >= len(self.lrs):
            trainer.state.should_stop = True
        else:
            self._set(trainer, float(self.lrs[len(self.losses)]))


def sweep(setup, steps: int = STEPS):
    """Run the sweep on a fresh copy of the model. Returns ``(lrs, losses)`` as numpy arrays."""
    lr_max = max(LR_MAX, 10 * setup.lr)
    lr_min = min(LR_MIN, setup.lr / 100)
    lrs = np.geomspace(lr_min, lr_max, steps)
    cb = _LRSweep(lrs)
    trainer = setup.trainer(callbacks=[cb])
    per_epoch = math.ceil(len(setup.train) / setup.batch_size)
    x = setup.train.inputs if isinstance(setup.train.inputs, dict) or len(setup.train.inputs) > 1 else setup.train.inputs[0]
    trainer.fit((x, setup.train.target), epochs=math.ceil(steps / per_epoch), batch_size=setup.batch_size)
    losses = torch.stack(cb.losses).float().cpu().numpy().astype(np.float64)
    return lrs[: len(losses)], losses


def analyse(lrs: np.ndarray, losses: np.ndarray) -> dict:
    smooth, avg = np.full_like(losses, np.nan), 0.0
    for i, value in enumerate(losses):
        if not np.isfinite(value):
            break
        avg = SMOOTH * avg + (1 - SMOOTH) * value
        smooth[i] = avg / (1 - SMOOTH ** (i + 1))
    finite = np.isfinite(smooth)
    n_ok = int(finite.sum()) if finite.all() else int(np.argmin(finite))
    s = smooth[:n_ok]
    best = int(np.nanargmin(s)) if n_ok else 0
    diverge = None
    for i in range(best, len(losses)):
        if i >= n_ok or s[i] > max(4 * s[best], s[0]):
            diverge = i
            break
    return {"smoothed": smooth, "best_index": best, "lr_at_min_loss": float(lrs[best]),
            "min_loss": float(s[best]) if n_ok else math.nan, "start_loss": float(s[0]) if n_ok else math.nan,
            "suggested_lr": float(lrs[best] / 10), "diverge_index": diverge,
            "diverge_lr": float(lrs[diverge]) if diverge is not None else None}


def check_lr_range(setup, out: str | Path | None = None) -> CheckResult:
    title = "LR range test"
    lrs, losses = sweep(setup)
    a = analyse(lrs, losses)
    lr, sug, div = setup.lr, a["suggested_lr"], a["diverge_lr"]
    ev = {"lr": lr, "suggested_lr": sug, "lr_at_min_loss": a["lr_at_min_loss"], "diverge_lr": div,
          "min_loss": a["min_loss"], "start_loss": a["start_loss"], "steps": len(losses),
          "lrs": [float(f"{v:.4g}") for v in lrs], "losses": [float(f"{v:.5g}") for v in losses]}
    if out is not None:
        ev["plot"] = str(plot(lrs, losses, a, lr, Path(out) / "lr_range.png"))
    div_text = f"the loss diverges from lr ~{div:.2g}" if div is not None else f"no divergence up to lr {lrs[-1]:.2g}"
    summary = f"suggested lr ~{sug:.2g} (lowest loss at {a['lr_at_min_loss']:.2g}); {div_text}; configured lr {lr:g}"
    if not math.isfinite(a["min_loss"]) or a["min_loss"] > 0.95 * a["start_loss"]:
        return CheckResult("lr_range", title, WARN, f"the loss did not fall at any LR from {lrs[0]:.2g} to {lrs[-1]:.2g}",
                           ev, "See gradient flow and overfit-one-batch: the model may not be learning at all.")
    if div is not None and lr >= div:
        return CheckResult("lr_range", title, FAIL, f"lr={lr:g} is past where the loss diverges (~{div:.2g}); " + summary,
                           ev, f"Use a learning rate near {sug:.2g}.")
    if lr > a["lr_at_min_loss"]:
        return CheckResult("lr_range", title, WARN, f"lr={lr:g} is above the LR of the lowest loss; " + summary, ev,
                           f"Training may be unstable: try about {sug:.2g}.")
    if lr < sug / TOO_LOW:
        return CheckResult("lr_range", title, WARN,
                           f"lr={lr:g} is {sug / lr:.0f}x below the suggestion (more than {TOO_LOW:.0f}x); " + summary,
                           ev, f"Training may crawl: try about {sug:.2g}, or at least {sug / TOO_LOW * 10:.2g}.")
    return CheckResult("lr_range", title, PASS, summary, ev)


def plot(lrs, losses, a: dict, lr: float, path: Path) -> Path:
    from ..plotting import _pyplot

    plt = _pyplot()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(7, 4.5))
    ax.plot(lrs, losses, color="0.75", linewidth=1, label="loss per step")
    ax.plot(lrs, a["smoothed"], color="C0", linewidth=2, label="smoothed loss")
    ax.axvline(a["suggested_lr"], color="C2", linestyle="--", label=f"suggested {a['suggested_lr']:.2g}")
    if a["diverge_lr"] is not None:
        ax.axvline(a["diverge_lr"], color="C3", linestyle=":", label=f"diverges {a['diverge_lr']:.2g}")
    ax.axvline(lr, color="C1", linewidth=1.5, label=f"configured {lr:g}")
    ax.set_xscale("log")
    finite = a["smoothed"][np.isfinite(a["smoothed"])]
    if len(finite):
        lo, hi = float(finite.min()), float(finite[0])
        ax.set_ylim(max(lo - 0.1 * (hi - lo), 0) if lo >= 0 else lo * 1.1, hi + 0.6 * (hi - lo) + 1e-3)
    ax.set_xlabel("learning rate (log scale)")
    ax.set_ylabel("training loss")
    ax.set_title("LR range test")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=100)
    plt.close(fig)
    return path
