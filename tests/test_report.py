"""The run report: self-contained HTML, rendered in a real headless browser, and the
reference experiment's artifacts end to end."""

from __future__ import annotations

import base64
import html
import json
import re
import shutil
import subprocess

import pytest

import fittorch as ft
from fittorch.report import _fmt, write_run_artifacts

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture
def fitted(small_clf_data, mlp_factory):
    X, y = small_clf_data
    trainer = ft.Trainer(mlp_factory(), metrics=["accuracy", "f1"], lr=0.05, progress=False,
                         callbacks=[ft.EarlyStopping("val_loss", patience=2), ft.LRScheduler("step", step_size=3)])
    trainer.fit((X[:150], y[:150]), val=(X[150:], y[150:]), epochs=40, batch_size=25)
    return trainer, (X[150:], y[150:])


def test_report_is_self_contained_and_complete(tmp_path, fitted):
    trainer, val = fitted
    config = {"model": {"hidden": 16}, "lr": 0.05, "note": "<script>alert(1)</script>"}
    paths = write_run_artifacts(trainer, tmp_path / "run-7", val=val, config=config)
    assert set(paths) == {"curves", "confusion_matrix", "report"}
    page = paths["report"].read_text()
    # No network: nothing is fetched from anywhere; every image is a data URI.
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", page)
    assert "<link" not in page and "<script" not in page
    images = re.findall(r"<img [^>]*src='data:image/png;base64,([^']+)'", page)
    assert len(images) == 2
    assert base64.b64decode(images[0]) == paths["curves"].read_bytes()
    assert base64.b64decode(images[1]) == paths["confusion_matrix"].read_bytes()
    # Name, status and why, metrics, config (escaped), model summary, system info, time.
    assert "<h1>run-7</h1>" in page
    assert "stopped early" in page and html.escape(trainer.state.stop_reason) in page
    best = trainer.history.best("val_loss")
    last = trainer.history.last
    assert f"<td>val_loss</td><td>{_fmt(last['val_loss'])}</td><td>{_fmt(best['val_loss'])}</td>" \
           f"<td>{best['epoch']}</td>" in page
    assert html.escape(json.dumps(config, indent=2)) in page and "<script>alert" not in page
    assert "Total params: 195" in page and "[2, 16]" in page  # layer output shapes from a val batch
    assert f"<td>torch</td><td>{ft.__version__ and __import__('torch').__version__}</td>" in page
    assert "total time" in page


def test_report_of_an_interrupted_regression_run(tmp_path, small_reg_data):
    X, y = small_reg_data

    class Interrupt(ft.Callback):
        def on_epoch_start(self, trainer):
            if trainer.state.epoch == 2:
                raise KeyboardInterrupt

    trainer = ft.Trainer(ft.MLP(5, [8], 1), loss="mse", metrics=["mae"], progress=False, callbacks=[Interrupt()])
    with pytest.raises(KeyboardInterrupt):
        trainer.fit((X, y.reshape(-1, 1)), val=(X, y.reshape(-1, 1)), epochs=5, batch_size=50)
    paths = write_run_artifacts(trainer, tmp_path / "reg", val=(X, y.reshape(-1, 1)))
    assert set(paths) == {"curves", "report"}  # no confusion matrix for a regressor
    page = paths["report"].read_text()
    assert "interrupted" in page and "<td>val_mae</td>" in page


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (CI installs it: apt-get install chromium)")
def test_report_renders_in_headless_chromium(tmp_path, fitted):
    trainer, val = fitted
    paths = write_run_artifacts(trainer, tmp_path / "run", val=val, config={"lr": 0.05})
    page = paths["report"].read_text()
    # A copy with a probe script: after load, it writes each image's decoded size into the DOM.
    probe = ("<script>window.addEventListener('load', function () {"
             "var r = Array.from(document.images).map(function (i) {"
             "return i.id + ':' + i.complete + ':' + i.naturalWidth + 'x' + i.naturalHeight; });"
             "var d = document.createElement('div'); d.id = 'render-probe'; d.textContent = r.join(';');"
             "document.body.appendChild(d); });</script>")
    probed = tmp_path / "run" / "probed.html"
    probed.write_text(page.replace("</body>", probe + "</body>"))
    flags = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
             "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
             f"--user-data-dir={tmp_path / 'profile'}", "--enable-logging=stderr", "--v=0",
             "--window-size=1200,2400", "--virtual-time-budget=3000"]
    dom = subprocess.run(flags + ["--dump-dom", probed.as_uri()], capture_output=True, text=True, timeout=120)
    assert dom.returncode == 0, dom.stderr[-2000:]
    match = re.search(r'<div id="render-probe">([^<]*)</div>', dom.stdout)
    assert match, dom.stdout[-2000:]
    images = dict(item.split(":", 1) for item in match.group(1).split(";"))
    assert set(images) == {"curves", "confusion_matrix"}
    for spec in images.values():  # decoded: complete, with the PNG's real size
        complete, size = spec.split(":")
        w, h = map(int, size.split("x"))
        assert complete == "true" and w > 300 and h > 300, images
    console = [ln for ln in dom.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln]
    assert console == [], console

    shot = tmp_path / "report.png"
    run = subprocess.run(flags + [f"--screenshot={shot}", paths["report"].as_uri()], capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0 and shot.exists(), run.stderr[-2000:]
    assert [ln for ln in run.stderr.splitlines() if "CONSOLE" in ln or "Uncaught" in ln] == []
    from PIL import Image

    img = Image.open(shot).convert("RGB")
    assert img.size == (1200, 2400)
    colours = img.resize((60, 120)).getcolors(maxcolors=100_000)
    assert len(colours) > 50  # a rendered page (text, plots), not a blank one


@pytest.mark.slow
def test_reference_experiment_produces_every_artifact(tmp_path, ref_data):
    """Done means: EarlyStopping + cosine schedule + all three loggers -> six artifacts, each read back."""
    pytest.importorskip("tensorboard")
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (X_train, y_train), (X_test, y_test) = ref_data
    run_dir = tmp_path / "runs" / "reference"
    ft.seed_everything(42)
    mlflow_logger = ft.MLflowLogger(run_dir)
    trainer = ft.Trainer(ft.MLP(20, [64], 2), loss="cross_entropy", optimizer="adam", lr=1e-3,
                         metrics=["accuracy", "f1", "auroc"], seed=42, progress=False,
                         callbacks=[ft.EarlyStopping("val_loss", patience=5, restore_best=True),
                                    ft.LRScheduler("cosine", warmup_epochs=1), ft.CSVLogger(run_dir),
                                    ft.TensorBoardLogger(run_dir), mlflow_logger])
    history = trainer.fit((X_train, y_train), val=(X_test, y_test), epochs=60, batch_size=32)
    paths = write_run_artifacts(trainer, run_dir, val=(X_test, y_test), config={"epochs": 60, "lr": 1e-3})

    assert ft.History.from_csv(run_dir / "metrics.csv").rows == history.rows
    events = EventAccumulator(str(run_dir))
    events.Reload()
    assert [e.value for e in events.Scalars("val_loss")] == pytest.approx(history["val_loss"], rel=1e-6)
    run = MlflowClient(f"sqlite:///{run_dir.parent / 'mlflow.db'}").get_run(mlflow_logger.run_id)
    assert run.info.status == "FINISHED" and run.data.metrics["val_accuracy"] == pytest.approx(history.last["val_accuracy"])
    for name in ("curves", "confusion_matrix"):
        with Image.open(paths[name]) as img:
            assert img.format == "PNG" and min(img.size) >= 300
    page = paths["report"].read_text()
    assert page.count("data:image/png;base64,") == 2 and "reference" in page
    assert trainer.state.status in ("stopped", "finished")
    assert trainer.evaluate((X_test, y_test))["accuracy"] > 0.8
