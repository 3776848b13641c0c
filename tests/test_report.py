"""The run report: self-contained HTML, rendered in a real headless browser, and the
reference experiment's artifacts end to end."""

from __future__ import annotations

import base64
import html
import json
import re
import browser_helpers as browser
import pytest

import fittorch as ft
from fittorch.report import _fmt, write_run_artifacts

CHROMIUM = browser.CHROMIUM


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
    _, images = browser.probe(paths["report"].read_text(), tmp_path, "1200,2400")
    assert set(images) == {"curves", "confusion_matrix"}
    for complete, w, h in images.values():  # decoded: complete, with the PNG's real size
        assert complete and w > 300 and h > 300, images
    img = browser.screenshot(paths["report"], tmp_path, "1200,2400")
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


def _cli_run(tmp_path, callbacks=(), **extra):
    from fittorch.config import save_config, validate
    from fittorch.experiment import build_experiment
    from fittorch.runs import next_run_dir

    cfg = validate({"name": "iris", "data": {"source": "sklearn:iris", "test_split": 0.2},
                    "train": {"epochs": 6, "batch_size": 16}, "optimizer": {"lr": 0.01}, **extra})
    run_dir = next_run_dir(tmp_path, cfg.name)
    exp = build_experiment(cfg, run_dir, quiet=True)
    exp.trainer.callbacks.extend(callbacks)
    run_dir.mkdir(parents=True)
    save_config(cfg, run_dir / "config.yaml")
    return exp, run_dir


def test_fittorch_report_rebuilds_the_identical_report(tmp_path, capsys):
    """The bug: `fittorch report RUN_DIR` wrote "epochs 0 of 0", "optimizer steps 0"."""
    from fittorch.cli import main
    from fittorch.runs import execute

    exp, run_dir = _cli_run(tmp_path, callbacks=[ft.EarlyStopping("val_loss", patience=2, restore_best=True)],
                            train={"epochs": 30, "batch_size": 16})
    assert execute(exp, run_dir, quiet=True) == 0
    written = {n: (run_dir / n).read_bytes() for n in ("report.html", "curves.png", "confusion_matrix.png")}
    page = written["report.html"].decode()
    state = exp.trainer.state
    assert f"<td>epochs</td><td>{state.epoch} of {state.max_epochs}</td>" in page and state.epoch > 0
    assert f"<td>optimizer steps</td><td>{state.global_step}</td>" in page
    for name in written:
        (run_dir / name).unlink()
    assert main(["report", str(run_dir)]) == 0
    for name, data in written.items():
        assert (run_dir / name).read_bytes() == data, name
    # The test figures say which weights they come from, in the report and in the summary line.
    info = json.loads((run_dir / "run.json").read_text())
    restored = info["restored_best_epoch"]
    assert restored == info["best"]["epoch"]
    assert f"computed with the best epoch&#x27;s weights (epoch {restored}" in page
    from fittorch.runs import summary_line

    assert f"tested with the best weights (epoch {restored})" in summary_line(run_dir, info)


def test_interrupted_run_gets_a_report_that_says_so(tmp_path, capsys):
    """A real SIGINT mid-run: fit writes report.html saying "interrupted"; `fittorch report` rebuilds it."""
    import os
    import signal

    from fittorch.cli import main
    from fittorch.runs import execute

    class CtrlC(ft.Callback):
        def on_epoch_end(self, trainer, row):
            if row["epoch"] == 3:
                os.kill(os.getpid(), signal.SIGINT)

    exp, run_dir = _cli_run(tmp_path, callbacks=[CtrlC()])
    assert execute(exp, run_dir, quiet=True) == 75
    # execute leaves a quiet exit-at-once handler for a second signal: put the default back for pytest
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    page = (run_dir / "report.html").read_text()
    assert "This run did not finish" in page and "interrupted" in page
    assert "<td>epochs</td><td>3 of 6</td>" in page and "SIGINT received" in page
    assert not (run_dir / "confusion_matrix.png").exists()  # partial weights: no confusion matrix
    (run_dir / "report.html").unlink()
    assert main(["report", str(run_dir)]) == 0
    assert (run_dir / "report.html").read_text() == page


def test_system_table_shows_the_threads_training_used(tmp_path, fitted):
    import torch

    trainer, val = fitted
    trainer.num_threads = 1  # what "auto" picks for a small model
    torch.set_num_threads(2)
    page = write_run_artifacts(trainer, tmp_path / "r", val=val)["report"].read_text()
    assert "<td>cpu threads (training)</td><td>1</td>" in page


def test_one_monitor_marks_the_best_epoch_everywhere(tmp_path, fitted):
    trainer, val = fitted  # EarlyStopping("val_loss")
    paths = write_run_artifacts(trainer, tmp_path / "r", val=val)
    best = trainer.history.best("val_loss")
    page = paths["report"].read_text()
    assert f"<td>best epoch</td><td>{best['epoch']}: val_loss" in page
    fig = trainer.history.plot()
    labels = fig.axes[0].get_legend_handles_labels()[1]
    assert f"best val_loss (epoch {best['epoch']})" in labels
