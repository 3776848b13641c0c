"""LiveView: in a Jupyter notebook, the epoch table and the curves, redrawn in place each epoch.

It reads only the epoch rows the loop has already synced (no per-step work, no host sync),
and redraws at most once every ``interval`` seconds, and never sooner than four times the
last draw took (always after the last epoch): drawing costs at most about a fifth of the
wall time, however fast the epochs are. Outside a notebook it does nothing.

>>> trainer = ft.Trainer(model, callbacks=[ft.LiveView()])   # or progress=True in a notebook
"""

from __future__ import annotations

import base64
import io
import time

from .base import Callback


def in_notebook() -> bool:
    """True inside a Jupyter kernel (notebook, lab, nbclient, VS Code)."""
    from ..plotting import _ipython_kernel

    return _ipython_kernel() is not None


class LiveView(Callback):
    """The metrics table (the last ``max_rows`` epochs, the best one highlighted) and the loss and
    metric curves (the best epoch of the run's monitor marked), updated in place through IPython's
    display. ``force=True`` renders outside a notebook too (``.html`` holds the last view)."""

    order = 99  # before the progress bar's log line, after every callback that adds to the row

    def __init__(self, interval: float = 1.0, max_rows: int = 8, *, force: bool = False):
        self.interval = float(interval)
        self.max_rows = int(max_rows)
        self.force = force
        self.html = ""
        self.draws = 0
        self._handle = None
        self._active = False
        self._last = float("-inf")
        self._cost = 0.0  # seconds the last draw took
        self._drawn_epoch = None

    def on_fit_start(self, trainer) -> None:
        self._active = trainer.dist.is_main and (self.force or in_notebook())
        self._handle, self._last, self._drawn_epoch = None, float("-inf"), None  # the first epoch draws

    def on_epoch_end(self, trainer, row: dict) -> None:
        state = trainer.state
        final = state.epoch >= state.max_epochs or state.should_stop
        wait = max(self.interval, 4 * self._cost)
        if self._active and (final or time.perf_counter() - self._last >= wait):
            self.draw(trainer)

    def on_fit_end(self, trainer) -> None:
        if self._active and len(trainer.history) and self._drawn_epoch != trainer.state.epoch:
            self.draw(trainer)

    def draw(self, trainer) -> None:
        started = time.perf_counter()
        self.html = render(trainer.history, trainer.state, self.max_rows)
        self.draws += 1
        self._drawn_epoch = trainer.state.epoch
        if in_notebook():
            from IPython.display import HTML, display

            if self._handle is None:
                self._handle = display(HTML(self.html), display_id=True)
            else:
                self._handle.update(HTML(self.html))
        self._last = time.perf_counter()
        self._cost = self._last - started

    def state_dict(self) -> dict:
        return {}


def render(history, state, max_rows: int = 8) -> str:
    """The live view's HTML: a status line, the metrics table and the curves as an embedded PNG."""
    from ..display import history_html
    from ..plotting import _pyplot, plot_history

    fig = plot_history(history, None, best="auto")
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=72)
    _pyplot().close(fig)  # never shown by the inline backend: this view is the only display
    png = base64.b64encode(buf.getvalue()).decode("ascii")
    status = f"epoch {state.epoch} of {state.max_epochs}" + (f" &mdash; {state.stop_reason}" if state.stop_reason
                                                            else "")
    return (f"<div class='fittorch-live'><p><b>Training</b>: {status}</p>{history_html(history, max_rows)}"
            f"<img alt='loss and metric curves' style='max-width:100%' src='data:image/png;base64,{png}'></div>")
