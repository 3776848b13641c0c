"""CSV, TensorBoard and MLflow loggers, each read back from what they wrote (no mocks)."""

from __future__ import annotations

import csv

import pytest

import fittorch as ft
from fittorch.callbacks import Callback
from fittorch.history import History


class ReadCSVEachEpoch(Callback):
    """Reads metrics.csv right after the CSV logger wrote it, each epoch."""

    order = 55

    def __init__(self, path):
        self.path, self.rows_seen = path, []

    def on_epoch_end(self, trainer, row):
        with open(self.path, newline="") as f:
            self.rows_seen.append(len(list(csv.DictReader(f))))


def test_csv_is_written_as_each_epoch_ends(tmp_path, small_clf_data, mlp_factory):
    X, y = small_clf_data
    reader = ReadCSVEachEpoch(tmp_path / "run" / "metrics.csv")
    trainer = ft.Trainer(mlp_factory(), callbacks=[ft.CSVLogger(tmp_path / "run"), reader,
                                                   ft.GradientClipping(max_norm=5.0)], progress=False)
    history = trainer.fit((X[:150], y[:150]), val=(X[150:], y[150:]), epochs=3, batch_size=50)
    assert reader.rows_seen == [1, 2, 3]
    back = History.from_csv(tmp_path / "run" / "metrics.csv")
    assert back.rows == history.rows  # floats round-trip exactly; grad_norm (added by a callback) included
    assert "grad_norm" in back.columns


def test_an_interrupted_run_keeps_its_rows(tmp_path, small_clf_data, mlp_factory):
    X, y = small_clf_data

    class Interrupt(Callback):
        def on_epoch_start(self, trainer):
            if trainer.state.epoch == 2:
                raise KeyboardInterrupt

    trainer = ft.Trainer(mlp_factory(), callbacks=[ft.CSVLogger(tmp_path / "m.csv"), Interrupt()], progress=False)
    with pytest.raises(KeyboardInterrupt):
        trainer.fit((X, y), epochs=5, batch_size=50)
    assert trainer.state.status == "interrupted"
    assert History.from_csv(tmp_path / "m.csv")["epoch"] == [1, 2]


def test_tensorboard_scalars_read_back(tmp_path, small_clf_data, mlp_factory):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    X, y = small_clf_data
    trainer = ft.Trainer(mlp_factory(), metrics=["accuracy", "f1"], progress=False,
                         callbacks=[ft.TensorBoardLogger(tmp_path / "tb"), ft.LRScheduler("step", step_size=1)])
    history = trainer.fit((X[:150], y[:150]), val=(X[150:], y[150:]), epochs=3, batch_size=50)
    acc = EventAccumulator(str(tmp_path / "tb"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train_loss", "val_loss", "val_accuracy", "val_f1", "lr", "seconds"} <= tags
    for tag in ("train_loss", "val_accuracy", "lr"):
        events = acc.Scalars(tag)
        assert [e.step for e in events] == [1, 2, 3]
        assert [e.value for e in events] == pytest.approx(history[tag], rel=1e-6)


def test_mlflow_run_reads_back_from_a_local_store(tmp_path, small_clf_data, mlp_factory):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    X, y = small_clf_data
    run_dir = tmp_path / "runs" / "exp-a"
    logger = ft.MLflowLogger(run_dir, params={"data": {"rows": 200}, "note": "test"})
    trainer = ft.Trainer(mlp_factory(), metrics=["accuracy"], lr=0.01, progress=False, callbacks=[logger])
    history = trainer.fit((X[:150], y[:150]), val=(X[150:], y[150:]), epochs=3, batch_size=50)
    assert (tmp_path / "runs" / "mlflow.db").exists()  # the default store: SQLite in the run's parent folder

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    run = client.get_run(logger.run_id)
    assert run.info.status == "FINISHED" and run.info.run_name == "exp-a"
    assert run.data.params["optimizer"] == "Adam" and run.data.params["lr"] == "0.01"
    assert run.data.params["batch_size"] == "50" and run.data.params["data.rows"] == "200"
    for key in ("train_loss", "val_loss", "val_accuracy"):
        points = client.get_metric_history(logger.run_id, key)
        assert [p.step for p in points] == [1, 2, 3]
        assert [p.value for p in points] == pytest.approx(history[key], rel=1e-6)
    artifacts = {a.path for a in client.list_artifacts(logger.run_id)}
    assert {"curves.png", "model"} <= artifacts
    model_files = {a.path for a in client.list_artifacts(logger.run_id, "model")}
    assert model_files == {"model/model.safetensors", "model/model.json"}
    local = client.download_artifacts(logger.run_id, "model", str(tmp_path / "dl"))
    reloaded = ft.load(f"{local}/model.safetensors", model=mlp_factory(seed=1))
    for a, b in zip(reloaded.state_dict().values(), trainer.model.state_dict().values()):
        assert (a == b).all()
