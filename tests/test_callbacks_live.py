"""LiveView: the live table and curves; drawn from epoch rows only, throttled, off outside notebooks."""

from __future__ import annotations

import base64
import re

import fittorch as ft
from fittorch.callbacks.live import in_notebook


def test_live_view_renders_table_and_curves_and_is_throttled(small_clf_data, mlp_factory):
    X, y = small_clf_data
    live = ft.LiveView(interval=3600, max_rows=4, force=True)  # one draw per hour at most... and the last
    trainer = ft.Trainer(mlp_factory(), progress=False, callbacks=[live, ft.EarlyStopping("val_loss", patience=50)])
    trainer.fit((X[:150], y[:150]), val=(X[150:], y[150:]), epochs=6, batch_size=50)
    assert live.draws == 2  # the first epoch, then the final one: never more than the interval allows
    best = trainer.history.best("val_loss")
    assert "epoch 6 of 6" in live.html and f"best val_loss {ft.display.fmt(best['val_loss'])}" in live.html
    assert live.html.count("<tr") == 1 + 4 + (best["epoch"] <= 2)  # header, last 4 rows (+ the best one)
    (png,) = re.findall(r"src='data:image/png;base64,([^']+)'", live.html)
    assert base64.b64decode(png)[:4] == b"\x89PNG"


def test_live_view_does_nothing_outside_a_notebook(small_clf_data, mlp_factory):
    assert not in_notebook()
    X, y = small_clf_data
    live = ft.LiveView()
    ft.Trainer(mlp_factory(), progress=False, callbacks=[live]).fit((X, y), epochs=2)
    assert live.draws == 0 and live.html == ""
    assert not live.wants_batch_hooks() or type(live).on_train_batch_end is ft.Callback.on_train_batch_end
