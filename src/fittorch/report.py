"""The run report: one self-contained ``report.html`` per run, plus the run's plots.

The page needs no network: images are embedded as ``data:`` URIs and the styles are
inline, so it opens the same from a laptop, a CI artifact or an e-mail attachment.

>>> from fittorch.report import write_run_artifacts
>>> paths = write_run_artifacts(trainer, "runs/exp1", val=(X_val, y_val), config=cfg)
>>> paths["report"]   # runs/exp1/report.html (also curves.png, confusion_matrix.png)
"""

from __future__ import annotations

import base64
import html
import json
import math
import os
import platform
from pathlib import Path

from .safeio import atomic_write
from .task import has_class_labels

STATUS_TEXT = {
    "finished": "finished: ran every epoch",
    "stopped": "stopped early",
    "interrupted": "interrupted",
    "failed": "failed",
    "running": "running",
    "died": "died: the process ended without recording it",
    "created": "not trained",
    "loaded": "loaded weights, not trained here",
}


def threads_used(trainer) -> int:
    """The CPU intra-op threads ``fit`` trains with (``num_threads="auto"`` may pick 1 for a small model)."""
    import torch

    n = getattr(trainer, "num_threads", None)
    if n == "auto":
        from .device import auto_num_threads

        n = auto_num_threads(trainer.model, trainer.device)
    return int(n) if n is not None else torch.get_num_threads()


def system_info(trainer=None) -> dict:
    import torch

    from ._version import __version__

    info = {"fittorch": __version__, "torch": torch.__version__, "python": platform.python_version(),
            "platform": platform.platform(),
            "cpu threads (training)": threads_used(trainer) if trainer is not None else torch.get_num_threads(),
            "cpu count": os.cpu_count()}
    if trainer is not None:
        info["device"] = str(trainer.device)
        info["precision"] = trainer.precision
        if trainer.device.type == "cuda":
            info["gpu"] = torch.cuda.get_device_name(trainer.device)
    if torch.cuda.is_available():
        info["cuda"] = torch.version.cuda
    return info


def monitor_of(trainer) -> str | None:
    """The one column a run's "best" means: EarlyStopping's monitor, else the checkpoints', else
    ``val_loss`` (``train_loss`` without validation). Curves, report and summary all use it."""
    for kind in ("EarlyStopping", "ModelCheckpoint"):
        for cb in trainer.callbacks:
            if type(cb).__name__ == kind and getattr(cb, "monitor", None):
                return cb.monitor
    from .plotting import default_best

    return default_best(trainer.state.history)


def weights_note(run: dict) -> str:
    """Which weights the model (and so every test figure) holds: the best epoch's or the last one's."""
    restored = run.get("restored_best_epoch")
    if restored:
        return f"the best epoch's weights (epoch {restored}, restored by EarlyStopping)"
    return f"the last epoch's weights (epoch {run.get('epochs', '?')})"


def run_facts(trainer) -> dict:
    """The report's overview of a live trainer, under the keys ``run.json`` uses."""
    state = trainer.state
    checkpoint = getattr(trainer, "checkpoint_path", None) or getattr(trainer, "checkpoint_dir", None)
    monitor = monitor_of(trainer)
    best = state.history.best(monitor) if monitor and monitor in state.history.columns else {}
    return {"status": state.status, "stop_reason": state.stop_reason or "", "epochs": state.epoch,
            "max_epochs": state.max_epochs, "global_step": state.global_step,
            "checkpoint": str(checkpoint) if checkpoint else None,
            "restored_best_epoch": getattr(state, "restored_best_epoch", None),
            "best": {"monitor": monitor, "value": best.get(monitor), "epoch": best.get("epoch")} if best else None}


def run_status(trainer) -> tuple[str, str]:
    """``(status, why)``: e.g. ``("stopped", "early stopping: val_loss did not improve ...")``."""
    return _status_why(run_facts(trainer))


def _status_why(run: dict) -> tuple[str, str]:
    status = run.get("status") or "unknown"
    why = run.get("stop_reason") or ""
    if status == "stopped" and not why:
        why = "a callback set should_stop"
    if status == "failed" and run.get("error"):
        why = (why + "; " if why else "") + str(run["error"])
    checkpoint = run.get("checkpoint")
    if status in ("interrupted", "failed", "stopped") and checkpoint:
        why = (why + "; " if why else "") + f"resumable from {checkpoint}"
    return status, why


def _png_data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(Path(path).read_bytes()).decode("ascii")


def _fmt(v) -> str:
    if isinstance(v, float):
        if math.isnan(v) or math.isinf(v):
            return str(v)
        return f"{v:.6g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}"
    return html.escape(str(v))


def _table(rows, header=None, cls="") -> str:
    out = [f'<table class="{cls}">']
    if header:
        out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
    for r in rows:
        out.append("<tr>" + "".join(f"<td>{c if isinstance(c, _Raw) else _fmt(c)}</td>" for c in r) + "</tr>")
    out.append("</table>")
    return "".join(out)


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def metrics_table(history) -> list[tuple]:
    """Rows of ``(name, final, best, best epoch)`` for every numeric column but epoch/seconds."""
    from .history import infer_mode

    rows = []
    for col in history.columns:
        if col in ("epoch", "seconds"):
            continue
        values = [(r.get(col), r.get("epoch")) for r in history]
        nums = [(v, e) for v, e in values if isinstance(v, (int, float)) and not isinstance(v, bool)
                and not math.isnan(v)]
        if not nums:
            continue
        final = history.last.get(col)
        if col in ("lr", "grad_norm", "grad_norm_max", "skipped_steps"):
            rows.append((col, final, "", ""))
            continue
        pick = min if infer_mode(col) == "min" else max
        best_v, best_e = pick(nums, key=lambda t: (t[0], -t[1]) if pick is max else (t[0], t[1]))
        rows.append((col, final, best_v, best_e))
    return rows


_CSS = """
body{font-family:-apple-system,"Segoe UI",Roboto,Helvetica,Arial,sans-serif;margin:0;color:#1f2328;background:#f6f8fa}
main{max-width:1100px;margin:0 auto;padding:24px}
h1{margin:0 0 4px 0;font-size:26px} h2{font-size:18px;margin:28px 0 8px;border-bottom:1px solid #d0d7de;padding-bottom:4px}
.card{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:16px;margin-bottom:16px}
.status{display:inline-block;padding:2px 10px;border-radius:12px;font-weight:600;color:#fff}
.finished{background:#1a7f37}.stopped{background:#9a6700}.interrupted,.failed,.died{background:#cf222e}
.running,.created,.loaded{background:#57606a}
table{border-collapse:collapse;font-size:14px} td,th{border:1px solid #d0d7de;padding:4px 10px;text-align:left}
th{background:#f6f8fa} td{font-variant-numeric:tabular-nums}
img{max-width:100%;height:auto;display:block;margin:8px 0}
pre{background:#f6f8fa;border:1px solid #d0d7de;border-radius:6px;padding:10px;overflow-x:auto;font-size:13px}
.muted{color:#57606a;font-size:13px}
.banner{border-color:#cf222e;background:#fff5f5}
"""


def render_report(history, run: dict, *, name: str, images: dict[str, Path] | None = None, config=None,
                  summary=None, system: dict | None = None, total_seconds: float | None = None,
                  test: dict | None = None) -> str:
    """The report's HTML as a string: a pure function of the run's records (see :func:`write_report`).

    ``run`` holds what ``run.json`` holds (status, stop_reason, epochs, max_epochs, global_step,
    best, ended, ...), so ``fittorch report RUN_DIR`` rebuilds the same page from the files alone.
    """
    status, why = _status_why(run)
    images = {k: v for k, v in (images or {}).items() if v is not None and Path(v).exists()}
    timing = "wall clock"
    if total_seconds is None:
        total_seconds = sum(r.get("seconds", 0.0) or 0.0 for r in history)
        timing = "sum of the epoch times"
    overview = [
        ("status", _Raw(f'<span class="status {html.escape(status)}">{html.escape(STATUS_TEXT.get(status, status))}'
                        "</span>" + (f" &mdash; {html.escape(why)}" if why else ""))),
        ("epochs", f"{run.get('epochs', 0)} of {run.get('max_epochs', 0)}"),
        ("optimizer steps", run.get("global_step", 0)),
        ("total time", f"{total_seconds:.2f} s ({timing})"),
    ]
    best = run.get("best") or {}
    if best.get("value") is not None:
        overview.append(("best epoch", f"{best['epoch']}: {best['monitor']} {_fmt(best['value'])} "
                                       f"(the monitor; the curves mark this epoch)"))
    overview.append(("weights", "the model holds " + weights_note(run)))
    when = f", run ended {html.escape(str(run['ended']))}" if run.get("ended") else ""
    parts = [f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
             f"<meta name='viewport' content='width=device-width, initial-scale=1'>"
             f"<title>{html.escape(name)} — fittorch report</title><style>{_CSS}</style></head><body><main>",
             f"<h1>{html.escape(name)}</h1><p class='muted'>fittorch run report{when}</p>"]
    if status in ("interrupted", "failed", "running", "died"):
        parts.append(f"<div class='card banner {html.escape(status)}'><strong>This run did not finish</strong>: "
                     f"{html.escape(STATUS_TEXT.get(status, status))} after epoch {run.get('epochs', 0)} of "
                     f"{run.get('max_epochs', 0)}. The figures below cover the epochs it completed."
                     + (" Continue it with <code>fittorch resume RUN_DIR</code>." if run.get("checkpoint") else "")
                     + "</div>")
    parts.append("<div class='card'>" + _table(overview, cls="overview") + "</div>")
    if len(history):
        parts.append("<h2>Metrics</h2><div class='card'>"
                     + _table(metrics_table(history), header=("metric", "final", "best", "best epoch"),
                              cls="metrics") + "</div>")
    if test:
        rows = [(k, v) for k, v in test.items() if isinstance(v, (int, float))]
        parts.append(f"<h2>Test</h2><div class='card'><p class='muted weights'>computed with "
                     f"{html.escape(weights_note(run))}</p>" + _table(rows, header=("metric", "test"), cls="test")
                     + "</div>")
    if "curves" in images:
        parts.append("<h2>Curves</h2><div class='card'>"
                     f"<img id='curves' alt='loss and metric curves' src='{_png_data_uri(images['curves'])}'></div>")
    if "confusion_matrix" in images:
        parts.append("<h2>Confusion matrix</h2><div class='card'><img id='confusion_matrix' "
                     f"alt='confusion matrix on the validation set' "
                     f"src='{_png_data_uri(images['confusion_matrix'])}' style='max-width:560px'></div>")
    if config is not None:
        text = config if isinstance(config, str) else json.dumps(_jsonable(config), indent=2, default=str)
        parts.append(f"<h2>Config</h2><pre class='config'>{html.escape(text)}</pre>")
    if summary is not None:
        parts.append(f"<h2>Model</h2><pre class='summary'>{html.escape(str(summary))}</pre>")
    if system:
        parts.append("<h2>System</h2><div class='card'>" + _table(list(system.items()), cls="system") + "</div>")
    parts.append("</main></body></html>")
    return "\n".join(parts)


def _jsonable(config):
    if hasattr(config, "model_dump"):  # pydantic
        return config.model_dump(mode="json")
    if hasattr(config, "__dataclass_fields__"):
        from dataclasses import asdict

        return asdict(config)
    return config


def write_report(trainer, path: str | os.PathLike, *, name: str | None = None, images: dict | None = None,
                 config=None, summary=None, total_seconds: float | None = None, run: dict | None = None,
                 history=None) -> Path:
    """Write the self-contained ``report.html`` (images embedded) and return its path.

    ``run``: the run's records (``run.json``); without it they are read from ``trainer``.
    ``trainer`` may be None when ``run`` and ``history`` are given (a run without a final model).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    run = dict(run) if run is not None else run_facts(trainer)
    history = history if history is not None else trainer.state.history
    system = run.get("system") or (system_info(trainer) if trainer is not None else None)
    page = render_report(history, run, name=name or path.parent.name, images=images, config=config,
                         summary=summary if summary is not None else run.get("model_summary"), system=system,
                         total_seconds=total_seconds, test=run.get("test"))
    atomic_write(path, page)
    return path


def summary_text(trainer, val=None) -> str:
    """The model summary, with output shapes from two rows of ``val`` when it is an ``(X, y)`` pair."""
    from .summary import model_summary

    example = None
    if isinstance(val, (tuple, list)) and len(val) == 2:
        import torch

        x = val[0]
        example = torch.as_tensor(x[:2]) if not isinstance(x, (dict, tuple)) else None
        if example is not None and example.dtype == torch.float64:
            example = example.float()
    try:
        return str(model_summary(trainer.model, example))
    except Exception:  # noqa: BLE001 - an exotic input: the summary without output shapes
        return str(model_summary(trainer.model))


def confusion_matrix_on(trainer, data, *, batch_size: int = 1024):
    """The confusion matrix ``[true][predicted]`` of a classifier on ``data`` (an ``(X, y)`` pair, ...)."""
    import numpy as np
    import torch

    from .data import InMemoryData, make_source
    from .losses import target_dtype
    from .outputs import select

    kind = trainer.output_kind
    src = make_source(data, target_dtype=target_dtype(trainer.loss_info), role="validation")
    if isinstance(src, InMemoryData):
        src = src.to(trainer.device)
    n = 2 if kind.task == "binary" else kind.num_classes
    matrix = torch.zeros(n * n, dtype=torch.long, device=trainer.device)
    model = trainer.step.model
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for inputs, target in src.batches(batch_size, None, **trainer.batch_kwargs(src)):
                out = select(trainer.step.predict_step((inputs, None)), trainer.output_key).float()
                if kind.task == "binary":
                    p = out.reshape(-1)
                    pred = ((torch.sigmoid(p) if kind.logits else p) >= 0.5).long()
                else:
                    pred = out.argmax(dim=1).reshape(-1)
                y = target.reshape(-1).long().to(pred.device)
                matrix += torch.bincount(y * n + pred, minlength=n * n)
    finally:
        model.train(was_training)
    return matrix.reshape(n, n).cpu().numpy().astype(np.int64)


def write_run_artifacts(trainer, run_dir: str | os.PathLike, *, val=None, config=None, name: str | None = None,
                        labels=None, total_seconds: float | None = None, best: str | None = "auto",
                        run: dict | None = None, history=None) -> dict[str, Path]:
    """Write the run's ``curves.png``, ``confusion_matrix.png`` (classifiers, on ``val``) and ``report.html``.

    Args:
        trainer: a fitted :class:`~fittorch.Trainer` (None for a run without a model, with ``run``
            and ``history`` given: curves and report only).
        run_dir: the run's directory (created if missing).
        val: the validation data, an ``(X, y)`` pair (or Dataset/DataLoader); needed for the
            confusion matrix and for the output shapes in the model summary.
        config: the resolved config (dict, pydantic model or dataclass), shown in the report.
        name: the run's name (default: the directory's name).
        labels: class names for the confusion matrix axes.
        total_seconds: the run's wall-clock time (default: the sum of the epoch times).
        best: the column whose best epoch the curves mark (``"auto"``: the run's monitor, the same
            one the report names: EarlyStopping's, else ``val_loss``, else ``train_loss``).
        run: the run's records as in ``run.json`` (status, epochs, best, test, ...); default: read
            from ``trainer``.

    Returns ``{"curves": ..., "confusion_matrix": ..., "report": ...}`` (only what was written).
    """
    from .plotting import plot_confusion_matrix

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    run = dict(run) if run is not None else run_facts(trainer)
    history = history if history is not None else trainer.state.history
    written: dict[str, Path] = {}
    if best == "auto":
        best = (run.get("best") or {}).get("monitor") or "auto"
    if len(history):
        written["curves"] = run_dir / "curves.png"
        history.plot(written["curves"], title=name or run_dir.name, best=best)
    kind = trainer.output_kind if trainer is not None else None
    finished = run.get("status") in ("finished", "stopped", "loaded")
    if val is not None and finished and kind is not None and has_class_labels(kind.task) and len(history):
        matrix = confusion_matrix_on(trainer, val)
        written["confusion_matrix"] = run_dir / "confusion_matrix.png"
        plot_confusion_matrix(matrix, written["confusion_matrix"], labels=labels)
    summary = run.get("model_summary")
    if summary is None and trainer is not None:
        summary = summary_text(trainer, val)
    written["report"] = write_report(trainer, run_dir / "report.html", name=name or run_dir.name,
                                     images=written, config=config, summary=summary, total_seconds=total_seconds,
                                     run=run, history=history)
    return written
