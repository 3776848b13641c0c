"""Loss and metric curves as PNG. matplotlib is imported lazily, with the Agg backend."""

from __future__ import annotations

import os
import sys


def _pyplot():
    import matplotlib

    # Headless by default (CI, servers); a notebook that already imported pyplot, or a
    # user who set MPLBACKEND, keeps its own backend.
    if "matplotlib.pyplot" not in sys.modules and not os.environ.get("MPLBACKEND"):
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def plot_history(history, path=None, *, title: str | None = None, best: str | None = None):
    """Loss (train vs validation) beside each validation metric. Returns the figure."""
    plt = _pyplot()
    cols = history.columns
    epochs = history["epoch"] if "epoch" in cols else list(range(1, len(history) + 1))
    metric_names = sorted({c[4:] for c in cols if c.startswith("val_") and c != "val_loss"}
                          | {c[6:] for c in cols if c.startswith("train_") and c != "train_loss"})
    n_panels = 1 + len(metric_names)
    fig, axes = plt.subplots(1, n_panels, figsize=(6.5 * n_panels, 4.5), squeeze=False)
    axes = axes[0]
    panels = [("loss", "Loss")] + [(m, m.replace("_", " ").title()) for m in metric_names]
    for ax, (name, label) in zip(axes, panels):
        for split, style in (("train", "-"), ("val", "-")):
            col = f"{split}_{name}"
            if col in cols:
                ax.plot(epochs, history[col], style, label=f"{'Train' if split == 'train' else 'Validation'} {label.lower()}")
        ax.set_xlabel("Epoch")
        ax.set_ylabel(label)
        ax.set_title(label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    if best and best in cols:
        row = history.best(best)
        if row:
            for ax in axes:
                ax.axvline(row["epoch"], color="grey", linestyle="--", linewidth=1)
            axes[0].annotate(f"best {best} (epoch {row['epoch']})", xy=(row["epoch"], 1.0),
                             xycoords=("data", "axes fraction"), fontsize=8, color="grey",
                             xytext=(3, -12), textcoords="offset points")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=100)
        plt.close(fig)
    return fig
