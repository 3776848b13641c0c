"""Compare runs: one self-contained HTML page for two or more run directories.

>>> from fittorch.compare import compare_runs
>>> compare_runs(["runs/adam", "runs/sgd"], "runs/compare.html")

The page holds the curves of every metric with the runs overlaid, the config keys that
differ, and each run's final and best figures side by side. Like ``report.html`` it needs no
network (the plot is an embedded PNG, the styles are inline). The CLI is
``fittorch runs --compare RUN_A RUN_B [...]``. torch is not imported.
"""

from __future__ import annotations

import base64
import html
import io
import os
from pathlib import Path

from .errors import ConfigError
from .history import History, infer_mode
from .report import _CSS, _fmt, _Raw, _table
from .runs import read_run_json
from .task import LEGACY, loss_task, upgrade_task

_SKIP = ("epoch", "seconds", "lr", "grad_norm", "grad_norm_max", "skipped_steps")


class RunRecord:
    """What the comparison reads from one run directory: name, run.json, config and history."""

    def __init__(self, path: Path):
        self.path = path
        self.name = path.name
        self.info = read_run_json(path)
        self.config = _read_config(path / "config.yaml")
        if self.config.get("task") == LEGACY:  # a run of fittorch 0.1/0.2: compare it under today's name
            binary = loss_task(self.config.get("loss")) == "binary"
            self.config["task"] = upgrade_task(LEGACY, binary=binary)
        self.history = History.from_csv(path / "metrics.csv") if (path / "metrics.csv").is_file() else History()


def _read_config(path: Path) -> dict:
    if not path.is_file():
        return {}
    import yaml

    if path.stat().st_size > 1_000_000:
        raise ConfigError(f"{path} is {path.stat().st_size} bytes; a run's config.yaml is expected under 1 MB.")
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def load_runs(run_dirs) -> list[RunRecord]:
    runs, seen = [], set()
    for d in run_dirs:
        p = Path(d)
        if not p.is_dir() or not ((p / "metrics.csv").is_file() or (p / "run.json").is_file()):
            raise ConfigError(f"{str(p)!r} is not a fittorch run directory (no metrics.csv or run.json). "
                              "List runs with: fittorch runs")
        if p.resolve() in seen:
            raise ConfigError(f"{p} is given twice; compare different runs.")
        seen.add(p.resolve())
        runs.append(RunRecord(p))
    if len(runs) < 2:
        raise ConfigError(f"--compare needs at least two run directories (got {len(runs)}).")
    names = [r.name for r in runs]
    for r in runs:  # same folder name under different parents: show the parent too
        if names.count(r.name) > 1:
            r.name = f"{r.path.parent.name}/{r.path.name}"
    return runs


def flatten(config: dict, prefix: str = "") -> dict:
    """``{"optimizer": {"lr": 0.01}}`` -> ``{"optimizer.lr": 0.01}`` (lists stay values).

    Torch-free, so ``fittorch runs --compare`` stays light; ``fittorch.changes`` uses it too."""
    out = {}
    for key, value in config.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


_MISSING = object()


def config_diff(runs: list[RunRecord]) -> list[tuple]:
    """``(key, value in run 1, value in run 2, ...)`` for every config key whose values differ."""
    flat = [flatten(r.config) for r in runs]
    keys = sorted(set().union(*flat))
    rows = []
    for key in keys:
        values = [f.get(key, _MISSING) for f in flat]
        if any(v != values[0] for v in values[1:]):
            rows.append((key, *["(not set)" if v is _MISSING else v for v in values]))
    return rows


def metric_names(runs: list[RunRecord]) -> list[str]:
    """The history columns to compare, in first-seen order (loss first)."""
    cols: list[str] = []
    for r in runs:
        cols.extend(c for c in r.history.columns if c not in cols and c not in _SKIP)
    return sorted(cols, key=lambda c: (c.removeprefix("train_").removeprefix("val_") != "loss", cols.index(c)))


def figures(runs: list[RunRecord]) -> list[tuple]:
    """``(metric, run 1's final, run 1's best (epoch), run 2's final, ...)`` for every metric and test figure."""
    rows = []
    for col in metric_names(runs):
        row = [col]
        for r in runs:
            values = r.history[col] if col in r.history.columns else []
            final = values[-1] if values else None
            best = r.history.best(col, infer_mode(col)) if values else {}
            row += [final if final is not None else "-",
                    f"{_fmt(best[col])} (epoch {best['epoch']})" if best else "-"]
        rows.append(tuple(row))
    tests = sorted({k for r in runs for k, v in (r.info.get("test") or {}).items() if isinstance(v, (int, float))})
    for key in tests:
        row = [f"test {key}"]
        for r in runs:
            value = (r.info.get("test") or {}).get(key)
            row += [value if value is not None else "-", ""]
        rows.append(tuple(row))
    return rows


def plot_compare(runs: list[RunRecord]):
    """One panel per metric (loss, accuracy, ...); each run one colour, validation solid, train dashed."""
    from .plotting import _pyplot, metric_label

    plt = _pyplot()
    bases = []
    for col in metric_names(runs):
        base = col.removeprefix("train_").removeprefix("val_")
        if base not in bases:
            bases.append(base)
    bases = bases or ["loss"]
    ncols = min(len(bases), 3)
    nrows = -(-len(bases) // ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(6.0 * ncols, 4.2 * nrows), squeeze=False)
    axes = list(axes.ravel())
    for ax in axes[len(bases):]:
        ax.set_visible(False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, base in zip(axes, bases):
        label = metric_label(base)
        for i, r in enumerate(runs):
            colour = colours[i % len(colours)]
            epochs = r.history["epoch"] if "epoch" in r.history.columns else list(range(1, len(r.history) + 1))
            for split, style in (("val", "-"), ("train", "--")):
                col = f"{split}_{base}"
                if col in r.history.columns:
                    ax.plot(epochs, r.history[col], style, color=colour, linewidth=1.6 if split == "val" else 1.0,
                            label=f"{r.name} ({'validation' if split == 'val' else 'train'})")
        ax.set_title(label)
        ax.set_xlabel("Epoch")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=8)
    fig.tight_layout()
    return fig


def render_compare(runs: list[RunRecord]) -> str:
    """The comparison page's HTML."""
    plt_fig = plot_compare(runs)
    buf = io.BytesIO()
    plt_fig.savefig(buf, format="png", dpi=100)
    from .plotting import _pyplot

    _pyplot().close(plt_fig)
    png = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")
    names = [r.name for r in runs]
    title = " vs ".join(names)
    overview = []
    for r in runs:
        info = r.info
        best = info.get("best") or {}
        overview.append((r.name, _Raw(f"<span class='status {html.escape(str(info.get('status', 'unknown')))}'>"
                                      f"{html.escape(str(info.get('status', 'unknown')))}</span>"),
                         f"{info.get('epochs', len(r.history))} of {info.get('max_epochs', '-')}",
                         f"{best['monitor']} {_fmt(best['value'])} (epoch {best['epoch']})"
                         if best.get("value") is not None else "-",
                         f"{info['seconds']:.1f} s" if isinstance(info.get("seconds"), (int, float)) else "-",
                         str(r.path)))
    diff = config_diff(runs)
    fig_header = ["metric"] + [f"{n} {what}" for n in names for what in ("final", "best")]
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>{html.escape(title)} — fittorch comparison</title><style>{_CSS}"
             ".figures td:nth-child(2n+2){border-left:2px solid #8c959f}</style></head><body><main>",
             f"<h1>{html.escape(title)}</h1><p class='muted'>fittorch run comparison of {len(runs)} runs</p>",
             "<div class='card'>" + _table(overview, header=("run", "status", "epochs", "best (monitor)", "time",
                                                               "folder"), cls="runs") + "</div>",
             "<h2>Curves</h2><div class='card'><p class='muted'>one colour per run; validation solid, train "
             f"dashed</p><img id='curves' alt='curves of every run, overlaid' src='{png}'></div>",
             "<h2>Final and best figures</h2><div class='card'>"
             + _table(figures(runs), header=fig_header, cls="figures") + "</div>",
             "<h2>Config differences</h2><div class='card'>"
             + (_table(diff, header=["key", *names], cls="config-diff") if diff else
                "<p class='config-diff'>The configs are identical.</p>") + "</div>",
             "</main></body></html>"]
    return "\n".join(parts)


def compare_runs(run_dirs, path: str | os.PathLike | None = None) -> Path:
    """Write the comparison page of ``run_dirs`` (default: ``compare.html`` beside the first run)."""
    runs = load_runs(run_dirs)
    path = Path(path) if path is not None else runs[0].path.parent / "compare.html"
    page = render_compare(runs)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(page)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    return path
