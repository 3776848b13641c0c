"""Loggers: the epoch rows to a CSV file, TensorBoard and MLflow.

Each logger writes when an epoch ends, from the row the loop has already synced, so
logging adds no device sync. TensorBoard and MLflow are optional extras:
``pip install 'fittorch[tensorboard]'`` / ``'fittorch[mlflow]'``.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from pathlib import Path

from ..errors import ConfigError
from .base import Callback


def _scalars(row: dict) -> dict[str, float]:
    return {k: float(v) for k, v in row.items()
            if k != "epoch" and isinstance(v, (int, float)) and not isinstance(v, bool)}


def _missing_extra(what: str, extra: str) -> ConfigError:
    return ConfigError(f"{what} needs the optional package '{extra}'. Install it with: "
                       f"pip install 'fittorch[{extra}]'")


class CSVLogger(Callback):
    """Write ``metrics.csv`` (one row per epoch) as each epoch ends.

    The file is rewritten whole and atomically each epoch (the history holds every row,
    also after a resume), so an interrupted run keeps all its finished epochs and a reader
    never sees half a file.

    Args:
        path: the run directory (``metrics.csv`` is written in it) or a ``.csv`` file path.
    """

    order = 50

    def __init__(self, path: str | os.PathLike):
        p = Path(path)
        self.path = p if p.suffix == ".csv" else p / "metrics.csv"

    def on_epoch_end(self, trainer, row: dict) -> None:
        if not trainer.dist.is_main:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        trainer.state.history.to_csv(self.path)  # atomic: a temporary file renamed over it


class TensorBoardLogger(Callback):
    """Scalar event files for TensorBoard: every numeric value of each epoch's row.

    Tags are the history's names (``train_loss``, ``val_loss``, ``val_accuracy``, ``lr``,
    ...), with the epoch number as the step. View with ``tensorboard --logdir <log_dir>``.
    """

    order = 50

    def __init__(self, log_dir: str | os.PathLike):
        self.log_dir = Path(log_dir)
        self._writer = None

    def on_fit_start(self, trainer) -> None:
        if not trainer.dist.is_main:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # torch's writer needs the tensorboard package
            raise _missing_extra("TensorBoardLogger", "tensorboard") from None
        self._writer = SummaryWriter(log_dir=str(self.log_dir))

    def on_epoch_end(self, trainer, row: dict) -> None:
        if self._writer is None:
            return
        for key, value in _scalars(row).items():
            self._writer.add_scalar(key, value, global_step=int(row["epoch"]))
        self._writer.flush()

    def on_fit_end(self, trainer) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None


class MLflowLogger(Callback):
    """Log params, per-epoch metrics, the final model and the curves to MLflow.

    Args:
        run_dir: the run's directory; by default the tracking store is
            ``sqlite:///<run_dir's parent>/mlflow.db`` with artifacts in ``<parent>/mlartifacts``,
            so every run under one ``runs/`` folder shares one local store
            (view it with ``mlflow ui --backend-store-uri sqlite:///runs/mlflow.db``).
        tracking_uri: any MLflow tracking URI instead (a server, a Databricks workspace, ...).
        experiment: the experiment name.
        run_name: the MLflow run's name (default: the run directory's name).
        params: extra parameters to log (e.g. the resolved config; nested dicts are flattened).
        log_model: log the final weights (``model.safetensors`` + ``model.json``) as artifacts.

    After the fit, ``logger.run_id`` names the run.
    """

    order = 60  # after the CSV/TensorBoard loggers

    def __init__(self, run_dir: str | os.PathLike, *, tracking_uri: str | None = None, experiment: str = "fittorch",
                 run_name: str | None = None, params: dict | None = None, log_model: bool = True):
        self.run_dir = Path(run_dir)
        parent = self.run_dir.resolve().parent
        self.tracking_uri = tracking_uri or f"sqlite:///{parent / 'mlflow.db'}"
        self.artifact_root = None if tracking_uri else (parent / "mlartifacts").as_uri()
        self.experiment = experiment
        self.run_name = run_name or self.run_dir.name
        self.params = dict(params or {})
        self.log_model = log_model
        self.run_id: str | None = None
        self._client = None

    def _connect(self):
        try:
            from mlflow.tracking import MlflowClient
        except ImportError:
            raise _missing_extra("MLflowLogger", "mlflow") from None
        client = MlflowClient(tracking_uri=self.tracking_uri)
        exp = client.get_experiment_by_name(self.experiment)
        exp_id = exp.experiment_id if exp else client.create_experiment(self.experiment,
                                                                        artifact_location=self.artifact_root)
        return client, exp_id

    def on_fit_start(self, trainer) -> None:
        if not trainer.dist.is_main:
            return
        self.run_dir.mkdir(parents=True, exist_ok=True)
        self._client, exp_id = self._connect()
        if self.run_id is None:  # a resumed logger keeps logging into the same run
            self.run_id = self._client.create_run(exp_id, run_name=self.run_name).info.run_id
        else:
            self._client.update_run(self.run_id, status="RUNNING")
        from mlflow.entities import Param

        params = {**trainer_params(trainer), **_flatten(self.params)}
        existing = self._client.get_run(self.run_id).data.params
        new = [Param(k, str(v)[:6000]) for k, v in params.items() if k not in existing]
        for i in range(0, len(new), 100):
            self._client.log_batch(self.run_id, params=new[i:i + 100])

    def on_epoch_end(self, trainer, row: dict) -> None:
        if self._client is None:
            return
        from mlflow.entities import Metric

        now = int(time.time() * 1000)
        step = int(row["epoch"])
        metrics = [Metric(k, v, now, step) for k, v in _scalars(row).items() if math.isfinite(v)]
        self._client.log_batch(self.run_id, metrics=metrics)

    def on_fit_end(self, trainer) -> None:
        if self._client is None:
            return
        state = trainer.state
        status = {"finished": "FINISHED", "stopped": "FINISHED", "interrupted": "KILLED"}.get(state.status, "FAILED")
        try:
            if state.stop_reason:
                self._client.set_tag(self.run_id, "stop_reason", state.stop_reason)
            self._client.set_tag(self.run_id, "fittorch.status", state.status)
            if status == "FINISHED":
                with tempfile.TemporaryDirectory() as tmp:
                    if len(state.history):
                        curves = Path(tmp) / "curves.png"
                        state.history.plot(curves, best="auto")
                        self._client.log_artifact(self.run_id, str(curves))
                    if self.log_model:
                        model_dir = Path(tmp) / "model"
                        trainer.save(model_dir / "model.safetensors")
                        self._client.log_artifacts(self.run_id, str(model_dir), artifact_path="model")
        finally:
            self._client.set_terminated(self.run_id, status=status)
            self._client = None

    def state_dict(self) -> dict:
        return {"run_id": self.run_id}

    def load_state_dict(self, state: dict) -> None:
        self.run_id = state.get("run_id") or self.run_id


def trainer_params(trainer) -> dict:
    """The run's main settings, as flat strings for a tracking server."""
    opt = trainer.optimizer
    fit = getattr(trainer, "fit_params", {}) or {}
    return {
        "model": type(trainer.model).__name__,
        "parameters": sum(p.numel() for p in trainer.model.parameters()),
        "loss": getattr(trainer.loss_info, "name", None) or type(trainer.loss_fn).__name__,
        "optimizer": type(opt).__name__,
        "lr": opt.param_groups[0].get("initial_lr", opt.param_groups[0]["lr"]),
        "epochs": trainer.state.max_epochs,
        "batch_size": fit.get("batch_size"),
        "seed": trainer.seed,
        "precision": trainer.precision,
        "accumulate_steps": trainer.accumulate_steps,
        "device": str(trainer.device),
        "metrics": ",".join(trainer.metric_set.metrics),
    }


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out
