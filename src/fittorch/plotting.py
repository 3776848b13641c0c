"""Loss and metric curves, and the confusion matrix, as PNG.

matplotlib is imported lazily, with the Agg backend unless the user chose one.
"""

from __future__ import annotations

import math
import os
import sys

from .safeio import save_figure


def _pyplot():
    import matplotlib

    # Headless by default (CI, servers); a Jupyter kernel, a script that already imported
    # pyplot, or a user who set MPLBACKEND keeps its own backend.
    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND") and _ipython_kernel() is None:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _numeric(history, col) -> bool:
    return any(isinstance(v, (int, float)) and not isinstance(v, bool) for v in history[col])


def lr_changes(history) -> list[tuple[int, float, float]]:
    """``(epoch, old_lr, new_lr)`` for each epoch whose learning rate differs from the one before."""
    if "lr" not in history.columns:
        return []
    rows = [r for r in history if isinstance(r.get("lr"), (int, float))]
    return [(b["epoch"], a["lr"], b["lr"]) for a, b in zip(rows, rows[1:])
            if not math.isclose(a["lr"], b["lr"], rel_tol=1e-9, abs_tol=0.0)]


_ACRONYMS = {"auroc": "AUROC", "f1": "F1", "mse": "MSE", "rmse": "RMSE", "mae": "MAE", "mape": "MAPE", "r2": "R²"}


def metric_label(name: str) -> str:
    """``"f1_macro"`` -> ``"F1 macro"``, ``"balanced_accuracy"`` -> ``"Balanced accuracy"``."""
    words = [_ACRONYMS.get(w, w) for w in name.split("_")]
    first = words[0] if words[0] in _ACRONYMS.values() else words[0].capitalize()
    return " ".join([first, *words[1:]])


def default_best(history) -> str | None:
    """The run's monitor when it has one, else ``val_loss``, else ``train_loss``."""
    cols = history.columns
    monitor = getattr(history, "monitor", None)
    if monitor and monitor in cols:
        return monitor
    return "val_loss" if "val_loss" in cols else ("train_loss" if "train_loss" in cols else None)


def show_once(fig):
    """In a Jupyter kernel with the inline backend: show ``fig`` now, and only once.

    pyplot forgets the figure (so the inline backend does not show it again at the cell's
    end), and the echo of the returned figure, when the call is the cell's last line, shows
    nothing during this cell. Outside a notebook the figure is returned untouched.
    """
    ip = _ipython_kernel()
    if ip is None:
        return fig
    import matplotlib
    from IPython.display import display

    if "inline" not in matplotlib.get_backend().lower():
        return fig
    display(fig)
    _pyplot().close(fig)
    fig._ipython_display_ = _shown  # instance attribute: IPython's display hook looks here first

    def forget(*_):
        fig.__dict__.pop("_ipython_display_", None)
        ip.events.unregister("post_run_cell", forget)

    ip.events.register("post_run_cell", forget)
    return fig


def _shown() -> None:
    """Already displayed in this cell."""


def _ipython_kernel():
    """The running IPython kernel shell (a Jupyter notebook or console), else None."""
    if "IPython" not in sys.modules:
        return None
    from IPython import get_ipython

    ip = get_ipython()
    if ip is None or "ipykernel" not in sys.modules:  # a terminal IPython has no kernel to display in
        return None
    from ipykernel.zmqshell import ZMQInteractiveShell

    return ip if isinstance(ip, ZMQInteractiveShell) else None  # Jupyter, Colab and VS Code subclass it


def plot_history(history, path=None, *, title: str | None = None, best: str | None = None, max_lr_marks: int = 8):
    """Loss (train vs validation) beside each metric. Returns the figure.

    ``best``: the column whose best epoch is marked (``"auto"``: the history's monitor, else
    ``val_loss`` if present, else ``train_loss``; ``None``, the default: no mark). When the learning rate changes during the run,
    a learning-rate panel is added, and up to ``max_lr_marks`` changes are marked with
    dotted lines on every panel (a schedule that changes it every epoch gets the panel only).
    """
    plt = _pyplot()
    cols = history.columns
    epochs = history["epoch"] if "epoch" in cols else list(range(1, len(history) + 1))
    metric_names = sorted({c[4:] for c in cols if c.startswith("val_") and c != "val_loss" and _numeric(history, c)}
                          | {c[6:] for c in cols if c.startswith("train_") and c != "train_loss"
                             and _numeric(history, c)})
    changes = lr_changes(history)
    panels = [("loss", "Loss")] + [(m, metric_label(m)) for m in metric_names]
    if changes:
        panels.append(("lr", "Learning rate"))
    n_panels = len(panels)
    ncols = min(n_panels, 3)
    nrows = -(-n_panels // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.0 * ncols, 4.2 * nrows), squeeze=False)
    axes = list(axes.ravel())
    for ax in axes[n_panels:]:
        ax.set_visible(False)
    axes = axes[:n_panels]
    for ax, (name, label) in zip(axes, panels):
        if name == "lr":
            ax.plot(epochs, history["lr"], "-", color="tab:purple", label="Learning rate")
            ax.set_yscale("log" if min(history["lr"]) > 0 else "linear")
        for split in ("train", "val"):
            col = f"{split}_{name}"
            if col in cols:
                ax.plot(epochs, history[col], "-", marker="." if len(epochs) < 30 else None,
                        label=f"{'Train' if split == 'train' else 'Validation'} {label if label.isupper() else label.lower()}")
        ax.set_xlabel("Epoch")
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(alpha=0.3)
    # Mark the changes of a stepped schedule; a smooth one (changing most epochs) has its panel.
    if changes and len(changes) <= max_lr_marks and len(changes) <= max(1, len(history) // 3):
        for i, (epoch, _old, new) in enumerate(changes):
            for ax in axes:
                ax.axvline(epoch - 0.5, color="tab:purple", linestyle=":", linewidth=1,
                           label="LR change" if (i == 0 and ax is axes[0]) else None)
            axes[0].annotate(f"lr {new:.2g}", xy=(epoch - 0.5, 0.02), xycoords=("data", "axes fraction"),
                             fontsize=7, color="tab:purple", rotation=90, xytext=(2, 0), textcoords="offset points")
    best = default_best(history) if best == "auto" else best
    if best and best in cols:
        row = history.best(best)
        if row:
            for ax in axes:
                ax.axvline(row["epoch"], color="grey", linestyle="--", linewidth=1,
                           label=f"best {best} (epoch {row['epoch']})" if ax is axes[0] else None)
            for ax, (name, _) in zip(axes, panels):
                col = best if best.endswith(f"_{name}") else None
                if col:
                    ax.plot([row["epoch"]], [row[col]], marker="*", markersize=12, color="black", linestyle="none")
    for ax in axes:
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path, dpi=100)
        plt.close(fig)
    return fig


def plot_confusion_matrix(matrix, path=None, *, labels=None, title: str = "Confusion matrix (validation)",
                          normalize: bool = False):
    """A heat map of ``matrix[true][predicted]`` with the counts written in each cell."""
    import numpy as np

    plt = _pyplot()
    m = np.asarray(matrix, dtype=float)
    shown = m / np.maximum(m.sum(axis=1, keepdims=True), 1) if normalize else m
    n = m.shape[0]
    labels = [str(x) for x in (labels if labels is not None else range(n))]
    size = max(4.0, min(12.0, 0.6 * n + 3))
    fig, ax = plt.subplots(figsize=(size, size * 0.85))
    im = ax.imshow(shown, cmap="Blues")
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    ax.set_xticks(range(n), labels=labels)
    ax.set_yticks(range(n), labels=labels)
    ax.set_xlabel("Predicted")
    ax.set_ylabel("True")
    ax.set_title(title)
    if n <= 30:
        threshold = shown.max() / 2 if shown.size else 0
        for i in range(n):
            for j in range(n):
                text = f"{shown[i, j]:.2f}" if normalize else f"{int(m[i, j])}"
                ax.text(j, i, text, ha="center", va="center", fontsize=9,
                        color="white" if shown[i, j] > threshold else "black")
    fig.tight_layout()
    if path is not None:
        save_figure(fig, path, dpi=100)
        plt.close(fig)
    return fig
