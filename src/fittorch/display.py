"""Notebook display: HTML tables for History, evaluate results, model summaries and doctor reports.

Jupyter calls ``_repr_html_`` on the last value of a cell; these helpers build that HTML
(escaped, inline styles only). Nothing here imports IPython: it is only the markup.
"""

from __future__ import annotations

import html
import math

_STYLE = ("<style>.ft-table{border-collapse:collapse;font-size:13px}"
          ".ft-table td,.ft-table th{border:1px solid #d0d7de;padding:2px 8px;text-align:right}"
          ".ft-table th{background:#f6f8fa}.ft-table td:first-child,.ft-table th:first-child{text-align:left}"
          ".ft-best{background:#dafbe1;font-weight:600}.ft-pass{color:#1a7f37}.ft-warn{color:#9a6700}"
          ".ft-fail{color:#cf222e;font-weight:600}.ft-skip{color:#57606a}</style>")


def fmt(v) -> str:
    if isinstance(v, bool) or v is None:
        return html.escape(str(v)) if v is not None else ""
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.3e}"
    return html.escape(str(v))


def table(header, rows, *, highlight: int | None = None, caption: str = "") -> str:
    out = [_STYLE, "<table class='ft-table'>"]
    if caption:
        out.append(f"<caption style='text-align:left'>{caption}</caption>")
    out.append("<tr>" + "".join(f"<th>{html.escape(str(h))}</th>" for h in header) + "</tr>")
    for i, row in enumerate(rows):
        cls = " class='ft-best'" if i == highlight else ""
        out.append(f"<tr{cls}>" + "".join(f"<td>{fmt(c)}</td>" for c in row) + "</tr>")
    out.append("</table>")
    return "".join(out)


def history_html(history, max_rows: int = 12) -> str:
    """The last ``max_rows`` epochs (and the best one by the monitor, highlighted)."""
    from .plotting import default_best

    cols = [c for c in history.columns if c != "seconds"]
    if not len(history):
        return "<p>History: no epochs yet.</p>"
    monitor = default_best(history)
    best = history.best(monitor) if monitor else {}
    rows = list(history.rows)
    shown = rows[-max_rows:]
    if best and best not in shown:
        shown = [best] + shown
    highlight = shown.index(best) if best in shown else None
    caption = (f"History: {len(history)} epochs"
               + (f"; best {html.escape(monitor)} {fmt(best[monitor])} at epoch {best['epoch']} (highlighted)"
                  if best else "")
               + (f"; the last {max_rows} shown" if len(rows) > max_rows else ""))
    return table(cols, [[r.get(c) for c in cols] for r in shown], highlight=highlight, caption=caption)


class EvalResult(dict):
    """``Trainer.evaluate``'s result: a plain ``dict`` of floats that shows as a table in a notebook."""

    def _repr_html_(self) -> str:
        return table(("metric", "value"), [(k, v) for k, v in self.items()], caption="Evaluation")


def summary_html(summary) -> str:
    rows = summary.rows()
    show_shape = any(r[2] for r in rows)
    header = ("Layer", "Type", "Output shape", "Params") if show_shape else ("Layer", "Type", "Params")
    body = [r if show_shape else (r[0], r[1], r[3]) for r in rows]
    caption = (f"Model: {html.escape(summary.model)} &mdash; {summary.total_params:,} params "
               f"({summary.trainable_params:,} trainable), {summary.size_mb:.2f} MiB")
    return table(header, body, caption=caption)


def doctor_html(report) -> str:
    rows = []
    for c in report.checks:
        fix = f"<br><small>fix: {html.escape(c.fix)}</small>" if c.status in ("warn", "fail") and c.fix else ""
        rows.append(f"<tr><td class='ft-{c.status}'>{c.status.upper()}</td><td style='text-align:left'>{html.escape(c.title)}</td>"
                    f"<td style='text-align:left'>{html.escape(c.summary)}{fix}</td></tr>")
    n = report.counts()
    verdict = "FAILED" if n["fail"] else "OK"
    caption = (f"fittorch doctor: {verdict} &mdash; {n['pass']} passed, {n['warn']} warned, {n['fail']} failed, "
               f"{n['skip']} skipped in {report.seconds:.1f} s")
    return (_STYLE + f"<table class='ft-table'><caption style='text-align:left'>{caption}</caption>"
            "<tr><th>status</th><th style='text-align:left'>check</th><th style='text-align:left'>finding</th></tr>" + "".join(rows) + "</table>")


def fit_summary_html(trainer) -> str:
    """A trainer after ``fit`` (``ft.fit(...)`` as a cell's last line): status, epochs, best and last values."""
    from .report import STATUS_TEXT, monitor_of, weights_note

    state = trainer.state
    n_params = sum(p.numel() for p in trainer.model.parameters())
    rows = [("model", f"{type(trainer.model).__name__} ({n_params:,} params) on {trainer.device}"),
            ("status", STATUS_TEXT.get(state.status, state.status) + (f": {state.stop_reason}" if state.stop_reason
                                                                      else "")),
            ("epochs", f"{state.epoch} of {state.max_epochs}"), ("optimizer steps", state.global_step)]
    monitor = monitor_of(trainer)
    best = state.history.best(monitor) if monitor and monitor in state.history.columns else {}
    if best:
        rows.append(("best epoch", f"{best['epoch']}: {monitor} {fmt(best[monitor])}"))
    rows.append(("weights", "the model holds " + weights_note({"epochs": state.epoch,
                                                               "restored_best_epoch": getattr(state, "restored_best_epoch", None)})))
    rows += [(k, v) for k, v in state.history.last.items() if k not in ("epoch", "seconds")]
    return table(("", ""), rows, caption="fittorch Trainer")
