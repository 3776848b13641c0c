"""``History``: the single record of a run, one row per epoch.

The CSV, the plots, the progress bar and the report all read from it.
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterator
from pathlib import Path

from .safeio import MAX_JSON, atomic_writer, read_text


class History:
    """Per-epoch rows such as ``{"epoch": 3, "train_loss": 0.41, "val_loss": 0.45, ...}``."""

    def __init__(self, rows: list[dict] | None = None, monitor: str | None = None):
        self.rows: list[dict] = list(rows or [])
        # The column "best" means for this run (EarlyStopping's monitor, ...); None: val_loss, else train_loss.
        self.monitor = monitor

    # -- recording -------------------------------------------------------------------
    def append(self, row: dict) -> None:
        self.rows.append(dict(row))

    # -- reading ---------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.rows)

    def __iter__(self) -> Iterator[dict]:
        return iter(self.rows)

    def __getitem__(self, key):
        """``history["val_loss"]`` is that column as a list; ``history[-1]`` is the last row."""
        if isinstance(key, str):
            if key not in self.columns:
                from .errors import ConfigError, did_you_mean

                raise ConfigError(
                    f"History has no column '{key}'.{did_you_mean(key, self.columns)} "
                    f"Columns: {', '.join(self.columns)}."
                )
            return [row.get(key) for row in self.rows]
        return self.rows[key]

    @property
    def columns(self) -> list[str]:
        cols: list[str] = []
        for row in self.rows:
            cols.extend(k for k in row if k not in cols)
        return cols

    @property
    def last(self) -> dict:
        return self.rows[-1] if self.rows else {}

    def best(self, metric: str, mode: str | None = None) -> dict:
        """The row where ``metric`` was best (``mode`` inferred from the name if omitted)."""
        mode = mode or infer_mode(metric)
        values = [(row[metric], i) for i, row in enumerate(self.rows)
                  if isinstance(row.get(metric), (int, float)) and not math.isnan(row[metric])]
        if not values:
            return {}
        pick = min(values) if mode == "min" else max(values, key=lambda v: (v[0], -v[1]))
        return self.rows[pick[1]]

    def __repr__(self) -> str:
        last = ", ".join(f"{k}={_fmt(v)}" for k, v in self.last.items())
        return f"History({len(self)} epochs; last: {last})"

    # -- output ----------------------------------------------------------------------
    def to_csv(self, path: str | os.PathLike) -> None:
        """Write every row; columns are the union of all rows' keys."""
        cols = self.columns
        with atomic_writer(path, text=True, newline="") as f:
            writer = csv.DictWriter(f, fieldnames=cols)
            writer.writeheader()
            for row in self.rows:
                writer.writerow({k: _csv_value(row.get(k)) for k in cols})

    @classmethod
    def from_csv(cls, path: str | os.PathLike) -> History:
        import io

        rows = []  # a regular file of bounded size (a run folder may come from someone else)
        for raw in csv.DictReader(io.StringIO(read_text(path, max_bytes=MAX_JSON, root=Path(path).parent,
                                                        what="metrics file"), newline="")):
            rows.append({k: _parse(v) for k, v in raw.items()})
        return cls(rows)

    def to_dataframe(self):
        import pandas as pd

        return pd.DataFrame(self.rows, columns=self.columns)

    def plot(self, path: str | os.PathLike | None = None, *, best: str | None = "auto", **kwargs):
        """Loss and metric curves, train against validation; saved as PNG if ``path`` is given.

        The best epoch of the run's monitor is marked, as in the run's ``curves.png`` (``best``:
        another column, or None for no mark). In a notebook the figure is shown once, also when
        the call is a cell's last line. Returns the matplotlib figure.
        """
        from .plotting import plot_history, show_once

        fig = plot_history(self, path, best=best, **kwargs)
        return fig if path is not None else show_once(fig)

    def _repr_html_(self) -> str:
        from .display import history_html

        return history_html(self)

    # -- state -----------------------------------------------------------------------
    def state_dict(self) -> dict:
        return {"rows": [dict(r) for r in self.rows]}

    def load_state_dict(self, d: dict) -> None:
        self.rows = [dict(r) for r in d["rows"]]


def infer_mode(metric: str) -> str:
    """``min`` for losses and errors, ``max`` for scores such as accuracy."""
    name = metric.lower()
    for token in ("loss", "mse", "mae", "rmse", "mape", "error", "perplexity"):
        if token in name:
            return "min"
    return "max"


def _fmt(v) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _csv_value(v):
    if isinstance(v, float):
        return repr(v)  # round-trips exactly
    return "" if v is None else v


def _parse(v: str):
    if v == "":
        return None
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v
