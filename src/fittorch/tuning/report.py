"""What a study leaves next to its trials: ``best.yaml``, ``study.json`` and ``report.html``.

``best.yaml`` is the best completed trial's config (no ``search:`` section): ``fittorch fit
best.yaml`` trains that trial again, to the same weights. ``report.html`` is self-contained like
a run's report: the optimization history, the parameter importances and one slice plot per
parameter are PNG images embedded as ``data:`` URIs, plus a table of every trial.
"""

from __future__ import annotations

import html
import json
import math
import tempfile
import time
from pathlib import Path

from ..config import Config, dump_yaml
from ..report import _CSS, _png_data_uri, _table
from ..safeio import atomic_write
from .check import trial_config
from .claims import trial_dir
from .space import SearchConfig, decode

COLORS = {"COMPLETE": "#0969da", "PRUNED": "#bf8700", "FAIL": "#cf222e", "RUNNING": "#8c959f", "WAITING": "#8c959f"}


def trial_rows(study, study_dir: Path) -> list[dict]:
    rows = []
    for t in study.get_trials(deepcopy=False):
        rows.append({"number": t.number, "state": t.state.name, "value": t.value, "params": dict(t.params),
                     "epochs": t.user_attrs.get("epochs"), "error": t.user_attrs.get("error"),
                     "run_dir": str(trial_dir(study_dir, t.number).relative_to(study_dir)),
                     "seconds": t.duration.total_seconds() if t.duration else None})
    return rows


def best_trial(study):
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return study.best_trial if done else None


def write_study_files(study, cfg: Config, search: SearchConfig, study_dir: Path, *, metric: str,
                      direction: str, storage: str) -> dict:
    """best.yaml, study.json and report.html; returns the study.json content."""
    rows = trial_rows(study, study_dir)
    best = best_trial(study)
    summary = {"name": study.study_name, "storage": storage, "metric": metric, "direction": direction,
               "counts": {s: sum(r["state"] == s for r in rows) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")},
               "best": None, "trials": rows, "written": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if best is not None:
        values = {k: decode(search.space[k], v) for k, v in best.params.items() if k in search.space}
        best_cfg = trial_config(cfg, values, name=f"{cfg.name}-best")
        atomic_write(study_dir / "best.yaml", f"# best trial {best.number} of study {study.study_name}: "
                                              f"{metric} {best.value:.6g}\n" + dump_yaml(best_cfg))
        summary["best"] = {"number": best.number, "value": best.value, "params": values,
                           "run_dir": str(trial_dir(study_dir, best.number).relative_to(study_dir))}
    atomic_write(study_dir / "study.json", json.dumps(summary, indent=2, default=str))
    with tempfile.TemporaryDirectory(dir=study_dir, prefix=".plots-") as tmp:  # workers may write at once
        images = plot_study(study, rows, search, Path(tmp), metric, direction)
        atomic_write(study_dir / "report.html", render(summary, images, rows, search))
    return summary


def plot_study(study, rows, search: SearchConfig, folder: Path, metric: str, direction: str) -> dict:
    from ..plotting import _pyplot

    plt = _pyplot()
    images = {}
    scored = [r for r in rows if r["value"] is not None and math.isfinite(r["value"])]
    fig, ax = plt.subplots(figsize=(7, 3.6))
    for state, color in COLORS.items():
        pts = [r for r in scored if r["state"] == state]
        if pts:
            ax.scatter([r["number"] for r in pts], [r["value"] for r in pts], c=color, s=22, label=state.lower())
    done = sorted((r["number"], r["value"]) for r in scored if r["state"] == "COMPLETE")
    if done:
        pick, best, xs, ys = (min if direction == "minimize" else max), None, [], []
        for n, v in done:
            best = v if best is None else pick(best, v)
            xs.append(n)
            ys.append(best)
        ax.step(xs, ys, where="post", color="#1a7f37", label="best so far")
    ax.set_xlabel("trial")
    ax.set_ylabel(metric + " (pruned: last reported)")
    ax.set_title("Optimization history")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=8)
    images["history"] = _save(fig, plt, folder / "history.png")
    importances = param_importances(study)
    if importances:
        fig, ax = plt.subplots(figsize=(7, 0.5 + 0.45 * len(importances)))
        names = list(importances)[::-1]
        ax.barh(names, [importances[n] for n in names], color="#0969da")
        ax.set_xlabel(f"importance for {metric} (optuna.importance, normalized to sum 1)")
        ax.set_title("Parameter importances")
        images["importances"] = _save(fig, plt, folder / "importances.png")
    keys = list(search.space)
    fig, axes = plt.subplots(1, len(keys), figsize=(3.4 * len(keys), 3.2), squeeze=False)
    for ax, key in zip(axes[0], keys):
        spec = search.space[key]
        pts = [r for r in scored if key in r["params"] and r["state"] in ("COMPLETE", "PRUNED")]
        xs = [r["params"][key] for r in pts]
        if spec.kind == "choice":
            labels = [str(v) for v in spec.labels()]
            xs = [labels.index(str(x)) if str(x) in labels else -1 for x in xs]
            ax.set_xticks(range(len(labels)), labels, rotation=30, fontsize=8)
        elif spec.log or spec.kind == "loguniform":
            ax.set_xscale("log")
        ax.scatter(xs, [r["value"] for r in pts], c=[COLORS[r["state"]] for r in pts], s=20)
        ax.set_title(key, fontsize=10)
        ax.set_ylabel(metric, fontsize=8)
    fig.suptitle("Slices (blue: complete, yellow: pruned)", fontsize=10)
    images["slices"] = _save(fig, plt, folder / "slices.png")
    return images


def param_importances(study) -> dict:
    """Optuna's parameter importances over the completed trials; {} when there are too few to say."""
    from optuna.trial import TrialState

    done = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    if len(done) < 3 or not any(len({str(t.params.get(k)) for t in done}) > 1 for k in done[0].params):
        return {}
    import optuna

    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "importances will be equal" for a flat study: the plot says it
            return dict(optuna.importance.get_param_importances(study))
    except (ValueError, RuntimeError):
        return {}


def _save(fig, plt, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def render(summary: dict, images: dict, rows: list[dict], search: SearchConfig) -> str:
    name = summary["name"]
    best = summary["best"]
    c = summary["counts"]
    overview = [("metric", f"{summary['metric']} ({summary['direction']})"),
                ("trials", f"{c['COMPLETE']} complete, {c['PRUNED']} pruned, {c['FAIL']} failed, "
                           f"{c['RUNNING']} running"),
                ("sampler / pruner", f"{search.sampler} / {search.pruner}"),
                ("storage", summary["storage"])]
    if best:
        overview.append(("best", f"trial {best['number']}: {best['value']:.6g} with "
                                 + ", ".join(f"{k}={v}" for k, v in best["params"].items())))
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(name)} — "
             f"fittorch study</title><style>{_CSS}</style></head><body><main>",
             f"<h1>{html.escape(name)}</h1><p class='muted'>fittorch study report, written {summary['written']}; "
             "best config: best.yaml</p>", "<div class='card'>" + _table(overview, cls="overview") + "</div>"]
    for key, title in (("history", "Optimization history"), ("importances", "Parameter importances"),
                       ("slices", "Slices")):
        if key in images:
            parts.append(f"<h2>{title}</h2><div class='card'><img id='{key}' alt='{title}' "
                         f"src='{_png_data_uri(images[key])}'></div>")
    table = [(r["number"], r["state"].lower(), "" if r["value"] is None else r["value"], r["epochs"] or "",
              ", ".join(f"{k}={v}" for k, v in r["params"].items()), r["run_dir"]) for r in rows]
    parts.append("<h2>Trials</h2><div class='card'>"
                 + _table(table, header=("trial", "state", summary["metric"], "epochs", "params", "run dir"))
                 + "</div></main></body></html>")
    return "\n".join(parts)
