"""One trial: a normal run directory under ``STUDY/trials/``, trained (or resumed) and scored.

The trial's config is the study's config with the sampled values set and no ``search:`` section;
it is saved as the run's ``config.yaml``, so ``fittorch evaluate/predict/report/resume/runs``
treat the folder as any other run. A trial found with a checkpoint continues from it
(``fittorch resume``'s path); a trial whose training already ended is only scored again.
"""

from __future__ import annotations

import gc
import math
import shutil
from dataclasses import dataclass
from pathlib import Path

from ..config import Config, save_config
from ..errors import FittorchError
from ..experiment import Experiment, build_trainer, prepare_data
from ..history import History
from ..rundir import RunLock
from ..runs import execute, read_run_json
from .check import trial_config
from .pruning import PRUNED, OptunaPruning
from .space import SearchConfig, decode

EXIT_INTERRUPTED = 75


@dataclass
class Outcome:
    state: str  # complete | pruned | failed | interrupted
    value: float | None = None
    epochs: int = 0
    error: str = ""


def params_of(search: SearchConfig, trial) -> dict:
    """Sample (new trial) or read back (resumed trial) every searched value, as config values."""
    values = {}
    for key, spec in search.space.items():
        kind = spec.kind
        low_high = None if kind == "choice" else spec.bounds()
        if kind == "choice":
            stored = trial.suggest_categorical(key, spec.labels())
        elif kind == "int":
            stored = trial.suggest_int(key, low_high[0], low_high[1], step=int(spec.step or 1), log=spec.log)
        else:
            stored = trial.suggest_float(key, low_high[0], low_high[1], step=spec.step,
                                         log=spec.log or kind == "loguniform")
        values[key] = decode(spec, stored)
    return values


def run_trial(base: Config, search: SearchConfig, claim, *, metric: str, direction: str, pruning: bool,
              stop_requested) -> Outcome:
    """Train the claimed trial in its run directory and return how it ended (nothing told to optuna)."""
    run_dir: Path = claim.run_dir
    cfg = trial_config(base, params_of(search, claim.trial), name=run_dir.name)
    info = read_run_json(run_dir)
    if not (info.get("status") in ("finished", "stopped") and (run_dir / "model.safetensors").exists()):
        resume = claim.resumed and _has_checkpoint(run_dir)
        if not resume and run_dir.exists():
            shutil.rmtree(run_dir)  # started but never checkpointed: start it again
        if stop_requested():
            return Outcome("interrupted")
        code = _train(cfg, run_dir, claim.trial if pruning else None, metric, resume)
        if code == EXIT_INTERRUPTED:
            return Outcome("interrupted")
    return score(run_dir, metric, direction)


def _train(cfg: Config, run_dir: Path, trial, metric: str, resume: bool) -> int:
    prep, splits = prepare_data(cfg)
    run_dir.mkdir(parents=True, exist_ok=True)
    try:
        with RunLock(run_dir):  # as fit and resume: one writer per run folder
            trainer = build_trainer(cfg, prep, run_dir=run_dir, has_val=splits.val is not None, quiet=True)
            trainer.run_config = cfg.to_dict()  # recorded in checkpoints, as fit does
            if trial is not None:
                trainer.callbacks.append(OptunaPruning(trial, monitor=metric))
            exp = Experiment(cfg, prep, splits, trainer)
            if not resume:
                save_config(cfg, run_dir / "config.yaml")
            return execute(exp, run_dir, resume=resume, quiet=True)
    finally:
        exp = trainer = prep = splits = None  # this trial's model, optimizer and data go now
        free_memory()


def free_memory() -> None:
    """Drop what the last trial left: Python cycles, and the CUDA allocator's cached blocks."""
    gc.collect()
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()


def _has_checkpoint(run_dir: Path) -> bool:
    from ..checkpoint import latest

    ckpt = run_dir / "checkpoints"
    return ckpt.is_dir() and latest(ckpt) is not None


def score(run_dir: Path, metric: str, direction: str) -> Outcome:
    """The trial's outcome from its run directory: the best ``metric`` over its epochs."""
    info = read_run_json(run_dir)
    path = run_dir / "metrics.csv"
    history = History.from_csv(path) if path.exists() else History()
    values = [float(v) for v in (r.get(metric) for r in history)
              if isinstance(v, (int, float)) and math.isfinite(float(v))]
    epochs = len(history)
    if (info.get("stop_reason") or "").startswith(PRUNED):
        return Outcome("pruned", values[-1] if values else None, epochs)
    if info.get("status") not in ("finished", "stopped") or not values:
        why = info.get("error") or f"no finite {metric} was logged"
        return Outcome("failed", None, epochs, why)
    return Outcome("complete", (min if direction == "minimize" else max)(values), epochs)


def failed(exc: FittorchError) -> Outcome:
    return Outcome("failed", error=f"{type(exc).__name__}: {exc}".splitlines()[0])
